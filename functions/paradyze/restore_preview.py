"""What a backup holds beside what exists now: the preview of a restore, and one agent's character
at the backup's version (for rolling that agent back with update_character)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from . import db, repository
from .auth import Caller
from .backup import open_backup
from .errors import NotFound


def contents(caller: Caller, backup_id: uuid.UUID, agent_id: str | None = None) -> dict[str, Any]:
    """Each agent and character of the backup, whether it exists now, and what a restore would add.

    A restore adds back characters that no longer exist, with their versions and agents; anything
    whose character still exists is left as it is (backup.restore). With agent_id, the answer also
    carries that agent's character as the backup has it. Raises NotFound (backup, or agent_id not in
    it), BadRequest (the archive is missing or changed).
    """
    manifest, files = open_backup(caller, backup_id)
    with db.transaction(caller) as conn:
        characters_now = {str(c["id"]): c for c in repository.all_characters(conn)}
        agents_now = {a.id: a for a in repository.list_agents(conn, limit=1_000_000)}
    versions_of: dict[str, list[dict[str, Any]]] = {}
    for entry in manifest["versions"]:
        versions_of.setdefault(entry["character_id"], []).append(entry)
    backed_version = {c["id"]: c["current_version"] for c in manifest["characters"]}
    added = {"characters": 0, "versions": 0, "agents": 0}
    present = {"characters": 0, "versions": 0, "agents": 0}
    for c in manifest["characters"]:
        side = present if c["id"] in characters_now else added
        side["characters"] += 1
        side["versions"] += len(versions_of.get(c["id"], []))
    agents = []
    for a in manifest["agents"]:
        now = agents_now.get(a["id"])
        comes_back = a["character_id"] not in characters_now
        if comes_back:
            added["agents"] += 1
        elif now is not None:
            present["agents"] += 1
        agents.append({
            "id": a["id"], "name": a["name"], "owner": a["user_id"], "character_id": a["character_id"],
            "version": backed_version.get(a["character_id"]),
            "exists": now is not None, "current_version": now.current_version if now else None,
            "status": now.status if now else None,
            "on_restore": "comes back" if comes_back else ("already here" if now else "not restored: its"
                                                            " character still exists"),
        })
    answer: dict[str, Any] = {"backup_id": str(backup_id), "agents": agents, "restore_adds": added,
                              "already_present": present, "character": None}
    if agent_id is not None:
        agent = next((a for a in manifest["agents"] if a["id"] == agent_id), None)
        if agent is None:
            raise NotFound(f"agent {agent_id} is not in backup {backup_id}",
                           details=[{"loc": ["agent_id"], "msg": "not in this backup"}])
        version = backed_version.get(agent["character_id"])
        entry = next(e for e in versions_of[agent["character_id"]] if e["version"] == version)
        answer["character"] = json.loads(files[entry["path"]])
    return answer
