"""Backups: one tar.gz archive of every character version, with a manifest that checks it; restore."""

from __future__ import annotations

import errno
import io
import json
import os
import tarfile
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict

from . import db, pages, repository
from .auth import Caller
from .characters import canonical_bytes, sha256_hex
from .errors import BadRequest, NotFound, StoreUnavailable
from .settings import get_settings
from .storage import get_store
from .storage.base import version_key

MANIFEST = "manifest.json"
FORMAT = "paradyze-backup/1"


class BackupRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backup_id: uuid.UUID


def backup(caller: Caller) -> dict[str, Any]:
    """Write one archive to the backup folder and record it. Admin only (checked by the caller)."""
    with db.transaction(caller) as conn:
        characters = repository.all_characters(conn)
        versions = repository.all_versions(conn)
        agents = repository.list_agents(conn, limit=1_000_000)
        secrets = repository.all_secrets(conn)
    files: dict[str, bytes] = {}
    entries = []
    for v in versions:
        data = canonical_bytes(v["config"])
        path = "character-files/" + version_key(str(v["character_id"]), v["version"])
        files[path] = data
        entries.append({"character_id": str(v["character_id"]), "version": v["version"], "path": path,
                        "sha256": sha256_hex(data), "created_at": v["created_at"].isoformat()})
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "counts": {"characters": len(characters), "versions": len(versions), "agents": len(agents)},
        "characters": [{"id": str(c["id"]), "user_id": str(c["user_id"]), "name": c["name"],
                        "current_version": c["current_version"], "created_at": c["created_at"].isoformat()}
                       for c in characters],
        "versions": entries,
        "agents": [{"id": a.id, "user_id": a.user_id, "character_id": a.character_id, "name": a.name,
                    "runtime": a.runtime, "idle_timeout_minutes": a.idle_timeout_minutes,
                    "auto_hibernate": a.auto_hibernate, "created_at": a.created_at.isoformat()}
                   for a in agents],
        # Ciphertext only (sealed with the platform's key); the values never leave the vault in clear.
        "sealed_secrets": [{"character_id": str(s["character_id"]), "user_id": str(s["user_id"]),
                            "names": s["names"], "ciphertext": s["ciphertext"]} for s in secrets],
    }
    target_dir = get_settings().backups_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    name = f"paradyze-backup-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.tar.gz"
    archive = _write_archive(target_dir / name, manifest, files)
    data = archive.read_bytes()
    location = _publish(archive, name)
    with db.transaction(caller) as conn:
        row = repository.insert_backup(
            conn, location=location, sha256=sha256_hex(data), size_bytes=len(data),
            characters=len(characters), versions=len(versions), agents=len(agents),
            manifest={"format": FORMAT, "counts": manifest["counts"]}, created_by=caller.actor,
        )
    return public(row)


def _publish(archive: Path, name: str) -> str:
    """The archive's final location: where it was written, or uploaded to PARADYZE_BACKUP_URI."""
    settings = get_settings()
    if not settings.backup_uri:
        return archive.as_uri()
    from .storage.gcs import GcsArchives

    location = GcsArchives(settings, settings.backup_uri).put(name, archive)
    archive.unlink()  # the bucket holds it now; a function instance's disk is not kept
    return location


def _archive_bytes(location: str) -> bytes:
    if location.startswith("gs://"):
        from .storage.gcs import GcsArchives

        return GcsArchives(get_settings(), location).get(location)
    path = Path(unquote(urlparse(location).path))
    if not path.is_file():
        raise BadRequest(f"the archive {path.name} is missing")
    return path.read_bytes()


def remove_archive(location: str) -> None:
    """Removes an archive from where it is stored; one already gone is fine. Raises StoreUnavailable."""
    if location.startswith("gs://"):
        from .storage.gcs import GcsArchives

        GcsArchives(get_settings(), location).delete(location)
        return
    path = Path(unquote(urlparse(location).path))
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot remove the archive {path.name}: {exc.strerror}") from exc


def _write_archive(path: Path, manifest: dict[str, Any], files: dict[str, bytes]) -> Path:
    """Raises StoreUnavailable when the backup folder is full: nothing partial is left behind."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".tar.gz")
    except OSError as exc:
        raise _unwritable(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add(tar, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
            for member, data in files.items():
                _add(tar, member, data)
        os.replace(tmp, path)  # the archive appears whole or not at all
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _unwritable(path, exc) from exc
        raise
    return path


def _unwritable(path: Path, exc: OSError) -> StoreUnavailable:
    why = "is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else f"cannot be written ({exc.strerror})"
    return StoreUnavailable(f"the backup folder {why}; nothing was written; free space and run the backup again",
                            details=[{"loc": ["backup"], "msg": f"{path.parent.name} {why}"}])


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    info.mode = 0o444
    tar.addfile(info, io.BytesIO(data))


def read_archive(source: io.BytesIO, *, name: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files of an archive, every file checked against the manifest's sha256."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=source, mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            extracted = tar.extractfile(member)
            assert extracted is not None
            files[member.name] = extracted.read()
    if MANIFEST not in files:
        raise BadRequest(f"{name} has no {MANIFEST}")
    manifest = json.loads(files.pop(MANIFEST))
    for entry in manifest["versions"]:
        data = files.get(entry["path"])
        if data is None or sha256_hex(data) != entry["sha256"]:
            raise BadRequest(f"{name}: {entry['path']} is missing or does not match its sha256")
    return manifest, files


def list_backups(caller: Caller, *, limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of backups, newest first, and the next page's cursor. Raises ValidationFailed for a
    cursor not issued for this list."""
    position = pages.decode(cursor, "backups", {})
    before = (datetime.fromisoformat(position[0]), str(position[1])) if position else None
    with db.transaction(caller) as conn:
        rows, more = pages.split(repository.list_backups(conn, limit=limit + 1, before=before), limit)
    last = rows[-1] if rows and more else None
    next_cursor = pages.encode("backups", {}, [last["created_at"].isoformat(), str(last["id"])]) if last else None
    return [public(r) for r in rows], next_cursor


def open_backup(caller: Caller, backup_id: uuid.UUID) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and files of a recorded backup, checked. Raises NotFound, BadRequest (changed or
    missing archive)."""
    with db.transaction(caller) as conn:
        row = repository.get_backup(conn, str(backup_id))
    if row is None:
        raise NotFound(f"backup {backup_id} not found", details=[{"loc": ["backup_id"], "msg": "no such backup"}])
    data = _archive_bytes(row["location"])
    if sha256_hex(data) != row["sha256"]:
        raise BadRequest(f"the archive {row['location']} was changed since the backup")
    return read_archive(io.BytesIO(data), name=row["location"])


def restore(caller: Caller, backup_id: uuid.UUID) -> dict[str, Any]:
    """Bring back what the archive has and the database lacks; restored agents come back hibernated.

    Existing characters, versions and agents are left as they are, so a restore can be repeated.
    """
    manifest, files = open_backup(caller, backup_id)
    counts = {"characters": 0, "versions": 0, "agents": 0}
    store = get_store()
    with db.transaction(caller) as conn:
        known = {str(c["id"]) for c in repository.all_characters(conn)}
        for c in manifest["characters"]:
            if c["id"] in known:
                continue
            repository.insert_character_with_id(conn, c["id"], c["user_id"], c["name"])
            for entry in (e for e in manifest["versions"] if e["character_id"] == c["id"]):
                data = files[entry["path"]]
                uri = store.put(c["id"], entry["version"], data)
                repository.insert_version(conn, character_id=c["id"], version=entry["version"],
                                          user_id=c["user_id"], config=json.loads(data),
                                          sha256=entry["sha256"], storage_uri=uri)
                counts["versions"] += 1
            for s in (s for s in manifest["sealed_secrets"] if s["character_id"] == c["id"]):
                repository.put_secrets(conn, c["id"], s["user_id"], s["names"], s["ciphertext"])
            for a in (a for a in manifest["agents"] if a["character_id"] == c["id"]):
                repository.insert_agent(conn, agent_id=a["id"], user_id=a["user_id"], character_id=c["id"],
                                        name=a["name"], runtime=a["runtime"], status="hibernated",
                                        desired_state="hibernated", idle_timeout_minutes=a["idle_timeout_minutes"],
                                        auto_hibernate=a["auto_hibernate"], idempotency_key=None,
                                        request_sha256=None)
                repository.insert_event(conn, agent_id=a["id"], user_id=a["user_id"], from_status=None,
                                        to_status="hibernated", actor=caller.actor,
                                        reason=f"restored from backup {backup_id}")
                counts["agents"] += 1
            counts["characters"] += 1
    return {"backup_id": str(backup_id), **counts}


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "location": row["location"], "sha256": row["sha256"],
            "size_bytes": row["size_bytes"], "characters": row["characters"], "versions": row["versions"],
            "agents": row["agents"], "created_by": row["created_by"], "created_at": row["created_at"]}
