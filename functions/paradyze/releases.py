"""Blue/green releases: start the new version (green) beside the serving one (blue), smoke-test it,
switch messages to it at once, keep blue for a grace period, then stop it; rollback the same way.

Every step runs under the agent's lock and is committed in agent_releases before the next, so a
crash at any step leaves a record that release_store.finish closes with exactly one instance
serving. The switch itself is one transaction: the agent's url, handle and serving identity, its
current version and the release's status change together. Messages read the agent's url when
they are admitted, so each goes to blue or to green, never both; those already on blue finish there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import agent_client, agent_env, db, eliza_character, queries, release_store, repository, slots, vault
from .agents import Agent, AgentChange
from .auth import SYSTEM, Caller
from .characters import canonical_bytes, merge_secrets, sha256_hex, split_secrets
from .conversations import CaseResult, TestCases, run_case
from .errors import AgentStartFailed, InvalidTransition, NotFound, ParadyzeError
from .instances import crash_point, require_agent
from .release_models import ReleasePublic, ReleaseRequest, RollbackRequest
from .runtimes import get_runtime
from .runtimes.base import AgentSpec
from .settings import get_settings
from .storage import get_store

log = logging.getLogger(__name__)
Row = dict[str, Any]
_SMOKE_USER = "paradyze-smoke-test"


def release(caller: Caller, cmd: ReleaseRequest) -> ReleasePublic:
    """Release a version (a new character, a stored version, or the newest) blue/green.

    A hibernated or failed agent just switches version and runs it from its next wake. Raises
    NotFound, InvalidTransition (the agent is starting or stopping, or runs on cloud_run),
    ValidationFailed (a character that cannot run).
    """
    queries.get(caller, cmd.agent_id)  # ownership, through RLS
    with db.agent_lock(cmd.agent_id):
        release_store.finish(cmd.agent_id, actor=caller.actor, end_grace=True)
        stored = _store_version(caller, cmd) if cmd.character is not None else None
        with db.transaction(SYSTEM) as conn:
            row = require_agent(conn, cmd.agent_id)
            newest = repository.next_version(conn, row.character_id) - 1
        version = stored or cmd.version or newest
        return _release_locked(caller, row, version, "release", cmd.test_cases, cmd.grace_seconds)


def rollback(caller: Caller, cmd: RollbackRequest) -> ReleasePublic:
    """Return to an earlier version: at once to a blue still kept from the last release, else blue/green.

    Raises NotFound, InvalidTransition (not an earlier version, or the agent is starting or stopping).
    """
    agent = queries.get(caller, cmd.agent_id)
    if cmd.version >= agent.character_version:
        raise InvalidTransition(f"version {cmd.version} is not earlier than the current {agent.character_version}",
                                details=[{"loc": ["version"], "msg": "must be earlier than the current version"}])
    with db.agent_lock(cmd.agent_id):
        with db.transaction(SYSTEM) as conn:
            row = require_agent(conn, cmd.agent_id)
            open_release = release_store.open_release(conn, cmd.agent_id)
        if (open_release is not None and open_release["status"] == "switched"
                and open_release["from_version"] == cmd.version and open_release["blue_handle"]
                and get_runtime(row.runtime).alive(open_release["blue_handle"])):
            return _switch_back(caller, row, open_release, cmd.grace_seconds)
        release_store.finish(cmd.agent_id, actor=caller.actor, end_grace=True)
        with db.transaction(SYSTEM) as conn:
            row = require_agent(conn, cmd.agent_id)
        return _release_locked(caller, row, cmd.version, "rollback", cmd.test_cases, cmd.grace_seconds)


def list_releases(caller: Caller, agent_id: str, limit: int) -> list[ReleasePublic]:
    with db.transaction(caller) as conn:
        require_agent(conn, agent_id)
        return [ReleasePublic.from_row(r) for r in release_store.list_for(conn, agent_id, limit)]


# --- the steps ------------------------------------------------------------------------------------

def _release_locked(caller: Caller, row: Agent, version: int, kind: str, cases: TestCases,
                    grace: int) -> ReleasePublic:
    agent_id = row.id
    with db.transaction(SYSTEM) as conn:
        stored = repository.get_version(conn, row.character_id, version)
        if stored is None:
            raise NotFound(f"agent {agent_id} has no version {version}",
                           details=[{"loc": ["version"], "msg": "no such version"}])
        if row.status in ("hibernated", "error"):
            release_store.set_current(conn, row.character_id, version)
            done = release_store.insert(
                conn, agent_id=agent_id, user_id=row.user_id, kind=kind, from_version=row.current_version,
                to_version=version, status="done", serving="green", grace_seconds=grace, actor=caller.actor,
                reason=f"the agent is {row.status}: it runs version {version} from its next start")
            release_store.record(conn, done, f"{kind} to version {version} while {row.status}")
            return ReleasePublic.from_row(done)
    if row.status != "running":
        raise InvalidTransition(f"agent {agent_id} is {row.status}; release when it runs or is hibernated",
                                details=[{"loc": ["agent_id"], "msg": f"agent is {row.status}"}])
    if row.runtime == "cloud_run":
        raise InvalidTransition("blue/green releases run on the process and docker runtimes; on cloud_run,"
                                " update_character restarts the agent on the new version",
                                details=[{"loc": ["agent_id"], "msg": "runtime is cloud_run"}])
    blue, green = slots.serving(row), slots.other(row)
    with db.transaction(SYSTEM) as conn:
        rec = release_store.insert(
            conn, agent_id=agent_id, user_id=row.user_id, kind=kind, from_version=row.running_version,
            to_version=version, status="starting", serving="blue", grace_seconds=grace, actor=caller.actor,
            blue_instance=blue, blue_handle=row.runtime_handle, blue_url=row.url, green_instance=green)
        release_store.record(conn, rec, f"{kind} to version {version}: starting green beside blue")
    crash_point("release:recorded")
    runtime = get_runtime(row.runtime)
    try:
        _copy_memory(blue, green)
        started = runtime.start(_spec(green, stored, row))
    except ParadyzeError as exc:
        return _end(rec, "failed", f"green did not start: {exc.message}")
    crash_point("release:green_started")
    with db.transaction(SYSTEM) as conn:
        rec = release_store.update(conn, str(rec["id"]), status="testing", green_handle=started.handle,
                                   green_url=started.url)
    crash_point("release:green_recorded")
    results, info, why = _smoke(agent_id, started.url, cases, lambda: runtime.alive(started.handle))
    if why is not None:
        runtime.stop(started.handle, grace=get_settings().agent_stop_grace)
        return _end(rec, "failed", f"smoke test failed: {why}; blue kept serving", smoke=results)
    crash_point("release:tested")
    keep_until = datetime.now(UTC) + timedelta(seconds=grace)
    with db.transaction(SYSTEM) as conn:
        repository.update_agent(conn, agent_id, AgentChange(
            runtime_handle=started.handle, url=started.url, running_version=version,
            eliza_agent_id=info.get("id"), last_activity_at=datetime.now(UTC)))
        release_store.set_instance(conn, agent_id, green)
        release_store.set_current(conn, row.character_id, version)
        rec = release_store.update(conn, str(rec["id"]), status="switched", serving="green", keep_until=keep_until,
                                   smoke=[r.model_dump(mode="json") for r in results],
                                   reason=f"green serves version {version}; blue kept until {keep_until:%H:%M:%S} UTC")
        release_store.record(conn, rec, f"{kind} switched to version {version}")
    crash_point("release:switched")
    if grace == 0:
        rec = release_store.finish(agent_id, actor=caller.actor, end_grace=True) or rec
    return ReleasePublic.from_row(rec)


def _switch_back(caller: Caller, row: Agent, previous: Row, grace: int) -> ReleasePublic:
    """Instant rollback: the blue kept from the last release serves again, and green is kept in turn."""
    agent_id = row.id
    keep_until = datetime.now(UTC) + timedelta(seconds=grace)
    with db.transaction(SYSTEM) as conn:
        release_store.update(conn, str(previous["id"]), status="rolled_back", serving="blue",
                             reason=f"rolled back to version {previous['from_version']} during the grace period")
        rec = release_store.insert(
            conn, agent_id=agent_id, user_id=row.user_id, kind="rollback", from_version=previous["to_version"],
            to_version=previous["from_version"], status="switched", serving="green", grace_seconds=grace,
            actor=caller.actor, blue_instance=str(previous["green_instance"]), blue_handle=previous["green_handle"],
            blue_url=previous["green_url"], green_instance=str(previous["blue_instance"]))
        rec = release_store.update(conn, str(rec["id"]), green_handle=previous["blue_handle"],
                                   green_url=previous["blue_url"], keep_until=keep_until,
                                   reason="the instance kept from the last release serves again")
        repository.update_agent(conn, agent_id, AgentChange(
            runtime_handle=previous["blue_handle"], url=previous["blue_url"], running_version=previous["from_version"]))
        release_store.set_instance(conn, agent_id, str(previous["blue_instance"]))
        release_store.set_current(conn, row.character_id, previous["from_version"])
        release_store.record(conn, rec, f"rolled back to version {previous['from_version']} at once")
    if grace == 0:
        rec = release_store.finish(agent_id, actor=caller.actor, end_grace=True) or rec
    return ReleasePublic.from_row(rec)


def _smoke(agent_id: str, url: str, cases: TestCases,
           is_alive: Any) -> tuple[list[CaseResult], dict[str, Any], str | None]:
    """Health, then each scripted conversation; returns (results, the agent's info, why it failed)."""
    client = agent_client.get_client()
    try:
        client.wait_healthy(url, agent_id, get_settings().agent_start_timeout, is_alive=is_alive)
        info = client.agent_info(url, agent_id)
    except ParadyzeError as exc:
        return [], {}, f"green did not become healthy ({exc.message})"

    def send(user: str, text: str) -> list[str]:
        replies = client.send_message(url, agent_id, text, user_id=user, eliza_agent_id=info.get("id"))
        return [str(r.get("text") or "") for r in replies]

    results = [run_case(send, case, scope=f"{_SMOKE_USER}:{agent_id}") for case in cases]
    failed = [r for r in results if not r.passed]
    if failed:
        first = failed[0]
        broken = next((c.check for t in first.turns for c in t.checks if c.passed is False), first.error or "")
        return results, info, f"case {first.name!r}: {broken}"
    return results, info, None


def _end(rec: Row, status: str, reason: str, smoke: list[CaseResult] | None = None) -> ReleasePublic:
    with db.transaction(SYSTEM) as conn:
        ended = release_store.update(conn, str(rec["id"]), status=status, serving="blue", reason=reason,
                                     smoke=[r.model_dump(mode="json") for r in smoke or []])
        release_store.record(conn, ended, f"release {status}: {reason}")
    return ReleasePublic.from_row(ended)


def _store_version(caller: Caller, cmd: ReleaseRequest) -> int:
    """Store the request's character as a new version, not yet current (the switch makes it so)."""
    assert cmd.character is not None
    split = split_secrets(cmd.character)
    eliza_character.check(split.config, split.secrets)
    data = canonical_bytes(split.config)
    with db.transaction(caller) as conn:
        row = require_agent(conn, cmd.agent_id)
        character_id, user_id = row.character_id, row.user_id
        with db.as_service_role(conn):
            version = repository.next_version(conn, character_id)
            uri = get_store().put(character_id, version, data)
            repository.insert_version(conn, character_id=character_id, version=version, user_id=user_id,
                                      config=split.config, sha256=sha256_hex(data), storage_uri=uri,
                                      change=cmd.change)
            release_store.set_current(conn, row.character_id, row.current_version)
            if split.secrets:
                secrets_row = repository.get_secrets(conn, character_id)
                merged = merge_secrets(vault.unseal(secrets_row["ciphertext"]) if secrets_row else {}, split.secrets)
                repository.put_secrets(conn, character_id, user_id, sorted(merged), vault.seal(merged))
    return version


def _spec(instance_id: str, version: Row, row: Agent) -> AgentSpec:
    with db.transaction(SYSTEM) as conn:
        secrets_row = repository.get_secrets(conn, row.character_id)
    secrets = vault.unseal(secrets_row["ciphertext"]) if secrets_row else {}
    config = version["config"]
    env = agent_env.build(get_settings().model_env(), secrets, config.get("settings") or {}, config["name"])
    path = eliza_character.write_runtime(instance_id, eliza_character.for_runtime(config, env.model_keys))
    return AgentSpec(agent_id=instance_id, character_path=path, character_version=version["version"], env=env.env)


def _copy_memory(blue: str, green: str) -> None:
    """Green's home starts empty but for a copy of blue's memory (its PGlite folder) as it is now.

    A copy of a PGlite folder taken while its server writes does not open (measured: PGlite
    aborts), but the folder as it stands between two writes does, as after a kill -9. So the copy
    is brought up to date pass after pass, as rsync would, each pass copying only the files that
    changed since they were copied, until a pass finds nothing changed while it ran: the copy then
    is the folder as it stood at one moment. Raises AgentStartFailed when blue never stood still
    that long within the drain timeout.
    """
    settings = get_settings()
    source, home = settings.agent_home(blue) / "elizadb", settings.agent_home(green)
    target = home / "elizadb"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700, parents=True)
    if not source.is_dir():
        return
    copied: dict[Path, tuple[int, int]] = {}
    deadline = time.monotonic() + settings.drain_timeout
    while True:
        before = _listing(source)
        for root, dirs, _names in os.walk(source):  # empty folders too: Postgres needs pg_notify, pg_tblspc...
            for name in dirs:
                (target / (Path(root) / name).relative_to(source)).mkdir(parents=True, exist_ok=True)
        for path in [p for p in copied if p not in before]:
            (target / path.relative_to(source)).unlink(missing_ok=True)
            del copied[path]
        for path, stat in before.items():
            if copied.get(path) != stat:
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile: the listings differ
                    shutil.copy2(path, target / path.relative_to(source))
                copied[path] = stat
        after = _listing(source)
        if after == before:
            return
        if time.monotonic() > deadline:
            changed = sorted(str(p.relative_to(source)) for p in {*before, *after} if before.get(p) != after.get(p))
            raise AgentStartFailed("blue's memory kept changing while it was copied; release again when the"
                                   f" agent is less busy (changed: {', '.join(changed[:5])})")


def _listing(folder: Path) -> dict[Path, tuple[int, int]]:
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                found[path] = (stat.st_size, stat.st_mtime_ns)
    return found
