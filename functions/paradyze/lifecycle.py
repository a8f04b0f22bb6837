"""Agent lifecycle services: create, hibernate, wake, delete, restart; every transition recorded.

Each operation on an agent holds that agent's lock (db.agent_lock) and writes its progress in short
committed steps: the transitional status first, then the runtime action, then the result. A crash
between two steps leaves a row that says what was under way, and reconcile() finishes it.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from . import agent_client, agent_databases, agent_env, db, eliza_character, limits, repository, vault
from .agents import AgentCreate, AgentPublic, CharacterUpdate, SchedulePublic, check_transition
from .auth import PLATFORM_OWNER, SYSTEM, Caller
from .characters import Secrets, canonical_bytes, merge_secrets, sha256_hex, split_secrets
from .db import Conn
from .errors import AgentStartFailed, Conflict, Forbidden, NotFound, ParadyzeError, RuntimeUnavailable
from .runtimes import get_runtime
from .runtimes.base import AgentSpec
from .settings import get_settings
from .storage import get_store

log = logging.getLogger(__name__)
Row = dict[str, Any]


def crash_point(step: str) -> None:
    """Fault injection: exit at once, as a crash would, after the named step (tests only)."""
    if get_settings().crash_after == step:
        log.warning("crash point %s reached: exiting", step)
        os._exit(137)


# --- reads -----------------------------------------------------------------------------------

def get(caller: Caller, agent_id: str) -> AgentPublic:
    """Raises NotFound when the agent does not exist or is not the caller's."""
    with db.transaction(caller) as conn:
        return _public(conn, require_row(conn, agent_id))


def list_all(caller: Caller, *, status: str | None, q: str | None, limit: int) -> list[AgentPublic]:
    with db.transaction(caller) as conn:
        rows = repository.list_agents(conn, status=status, q=q, limit=limit)
        schedules = _schedules_by_agent(conn, [str(r["id"]) for r in rows])
        return [AgentPublic.from_row(r, schedules.get(str(r["id"]), [])) for r in rows]


def require_row(conn: Conn, agent_id: str, *, for_update: bool = False) -> Row:
    row = repository.get_agent(conn, agent_id, for_update=for_update)
    if row is None:
        raise NotFound(f"agent {agent_id} not found", details=[{"loc": ["agent_id"], "msg": "no such agent"}])
    return row


def _public(conn: Conn, row: Row) -> AgentPublic:
    return AgentPublic.from_row(row, _schedules_by_agent(conn, [str(row["id"])]).get(str(row["id"]), []))


def _schedules_by_agent(conn: Conn, agent_ids: list[str]) -> dict[str, list[SchedulePublic]]:
    from .schedules import next_fire

    now = datetime.now(UTC)
    out: dict[str, list[SchedulePublic]] = {}
    for s in repository.list_schedules(conn, agent_ids) if agent_ids else []:
        out.setdefault(str(s["agent_id"]), []).append(SchedulePublic(
            id=str(s["id"]), action=s["action"], cron=s["cron"], timezone=s["timezone"], enabled=s["enabled"],
            next_run_at=next_fire(s["cron"], s["timezone"], now) if s["enabled"] else None,
        ))
    return out


# --- create ----------------------------------------------------------------------------------

def create(caller: Caller, cmd: AgentCreate, idempotency_key: str | None = None) -> tuple[AgentPublic, bool]:
    """Store version 1, insert the rows, start the agent and wait until it answers health.

    Returns (agent, created): a retry with the same Idempotency-Key returns the first agent and
    False. Raises Conflict (key reused with another body), RateLimited, QuotaExceeded,
    AgentStartFailed, RuntimeUnavailable.
    """
    limits.check_rate(caller, "create_agent")
    settings = get_settings()
    user_id = _owner_of(caller, cmd)
    runtime_kind = cmd.runtime or settings.runtime
    get_runtime(runtime_kind)  # an unknown or unavailable backend fails before anything is written
    request_sha = _request_fingerprint(cmd) if idempotency_key else None
    if idempotency_key:
        existing = _existing_for_key(caller, user_id, idempotency_key, request_sha)
        if existing is not None:
            return existing, False

    split = split_secrets(cmd.character)
    eliza_character.check(split.config, split.secrets)  # a 422 before anything is written
    data = canonical_bytes(split.config)
    agent_id, character_id = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        # Nothing to own yet: the owner is the caller (_owner_of), and the platform writes the rows.
        with db.transaction(caller) as conn, db.as_service_role(conn):
            limits.reserve_new_agent(conn, user_id)
            repository.insert_character_with_id(conn, character_id, user_id, split.config["name"])
            uri = get_store().put(character_id, 1, data)
            repository.insert_version(conn, character_id=character_id, version=1, user_id=user_id,
                                      config=split.config, sha256=sha256_hex(data), storage_uri=uri)
            if merge_secrets({}, split.secrets):
                _put_secrets(conn, character_id, user_id, {}, split.secrets)
            repository.insert_agent(
                conn, agent_id=agent_id, user_id=user_id, character_id=character_id, name=split.config["name"],
                runtime=runtime_kind, idle_timeout_minutes=cmd.policy.idle_timeout_minutes,
                auto_hibernate=cmd.policy.auto_hibernate, idempotency_key=idempotency_key,
                request_sha256=request_sha,
            )
            if cmd.policy.schedules:
                repository.replace_schedules(conn, agent_id, user_id,
                                             [s.model_dump() for s in cmd.policy.schedules])
            repository.insert_event(conn, agent_id=agent_id, user_id=user_id, from_status=None,
                                    to_status="provisioning", actor=caller.actor, reason="created",
                                    details={"version": 1, "runtime": runtime_kind})
    except psycopg.errors.UniqueViolation:
        # The same key raced us: the other request created the agent.
        existing = _existing_for_key(caller, user_id, idempotency_key or "", request_sha)
        if existing is None:
            raise
        return existing, False
    crash_point("create:rows")
    if cmd.policy.schedules:
        _sync_schedules(agent_id)
    with db.agent_lock(agent_id):
        _start_if_provisioning(agent_id, actor=caller.actor, after_crash=False)
    return get(caller, agent_id), True


def _existing_for_key(caller: Caller, user_id: str, key: str, request_sha: str | None) -> AgentPublic | None:
    with db.transaction(caller) as conn:
        row = repository.find_by_idempotency_key(conn, user_id, key)
    if row is None:
        return None
    if row["request_sha256"] != request_sha:
        raise Conflict("this Idempotency-Key was used for a different request",
                       details=[{"loc": ["headers", "Idempotency-Key"], "msg": "reused with another body"}])
    # The first request may still be starting the agent: wait for it, then answer as it did. If
    # it died before the agent ran, whoever holds the lock first finishes the start.
    with db.agent_lock(str(row["id"])):
        _start_if_provisioning(str(row["id"]), actor=caller.actor, after_crash=True)
    agent = get(caller, str(row["id"]))
    if agent.status == "error" and agent.started_at is None:
        # The first try created it but could not start it (a dependency was down): the retry
        # is the caller asking again, so try the start again rather than answer the old error.
        agent = wake(caller, agent.id, reason="create retried")
    return agent


def _start_if_provisioning(agent_id: str, *, actor: str, after_crash: bool) -> None:
    """Under the agent's lock: start a freshly created agent unless someone already did.

    after_crash: the request that created the row may have died after launching the agent, so
    reconcile (which looks for that instance in the runtime and adopts it) instead of starting
    blind. The request that just inserted the row skips that scan: it costs tens of ms.
    """
    with db.transaction(SYSTEM) as conn:
        row = require_row(conn, agent_id)
    if row["status"] != "provisioning":
        return
    if after_crash:
        from .reconcile import reconcile_locked  # reconcile builds on this module

        reconcile_locked(agent_id, actor=actor)
    else:
        start_instance(agent_id, actor=actor, reason="created")


def _request_fingerprint(cmd: AgentCreate) -> str:
    body = json.dumps(cmd.model_dump(mode="json", exclude_unset=True), sort_keys=True).encode()
    # Keyed, because the body holds secrets: the stored fingerprint must not let anyone test guesses.
    return hmac.new(get_settings().secrets_key_value().encode(), body, "sha256").hexdigest()


def _owner_of(caller: Caller, cmd: AgentCreate) -> str:
    """The agent's owner: the calling user, or whom the admin names (the platform's own id if none).

    Raises Forbidden when a user names an owner.
    """
    if caller.user_id:
        if cmd.owner is not None and str(cmd.owner) != caller.user_id:
            raise Forbidden("only the admin can create an agent for another user",
                            details=[{"loc": ["owner"], "msg": "must be omitted or your own id"}])
        return caller.user_id
    return str(cmd.owner or PLATFORM_OWNER)


def _put_secrets(conn: Conn, character_id: str, user_id: str, stored: dict[str, str], sent: Secrets) -> None:
    """The stored secrets with the sent ones applied; the caller writes as service_role."""
    secrets = merge_secrets(stored, sent)
    repository.put_secrets(conn, character_id, user_id, sorted(secrets), vault.seal(secrets))


def _stored_secrets(conn: Conn, character_id: str) -> dict[str, str]:
    row = repository.get_secrets(conn, character_id)
    return vault.unseal(row["ciphertext"]) if row else {}


# --- start / stop, under the agent's lock ------------------------------------------------------

def start_instance(agent_id: str, *, actor: str, reason: str) -> Row:
    """Start the current version and wait for health; the row ends running, or error with why.

    The caller holds the agent's lock. Raises AgentStartFailed, RuntimeUnavailable.
    """
    settings = get_settings()
    with db.transaction(SYSTEM) as conn:
        row = require_row(conn, agent_id)
        version = repository.get_version(conn, str(row["character_id"]), row["current_version"])
        secrets_row = repository.get_secrets(conn, str(row["character_id"]))
    assert version is not None
    runtime = get_runtime(row["runtime"])
    began = time.monotonic()
    try:
        spec = _spec(agent_id, version, vault.unseal(secrets_row["ciphertext"]) if secrets_row else {})
        started = runtime.start(spec)
    except ParadyzeError as exc:
        transition(agent_id, "error", actor=actor, reason=f"start failed: {exc.message}",
                    fields={"runtime_handle": None, "url": None})
        raise
    crash_point("start:launched")
    with db.transaction(SYSTEM) as conn:
        repository.update_agent(conn, agent_id, runtime_handle=started.handle, url=started.url)
    crash_point("start:recorded")
    try:
        client = agent_client.get_client()
        client.wait_healthy(started.url, agent_id, settings.agent_start_timeout,
                            is_alive=lambda: runtime.alive(started.handle))
        info = client.agent_info(started.url, agent_id)
    except ParadyzeError as exc:
        tail = runtime.logs(started.handle, tail=20)
        runtime.stop(started.handle, grace=1.0)
        transition(agent_id, "error", actor=actor, reason=f"did not become healthy: {exc.message}",
                    fields={"runtime_handle": None, "url": None}, details={"log_tail": tail})
        raise AgentStartFailed(f"agent {agent_id} did not become healthy: {exc.message}",
                               details=[{"loc": ["agent"], "msg": line} for line in tail[-5:]]) from exc
    return transition(
        agent_id, "running", actor=actor, reason=reason, duration_ms=int((time.monotonic() - began) * 1000),
        fields={"eliza_agent_id": info.get("id"), "running_version": version["version"],
                "started_at": datetime.now(UTC), "status_reason": None, "inflight_messages": 0,
                "transition_started_at": None, "last_activity_at": datetime.now(UTC)},
    )


def _spec(agent_id: str, version: Row, secrets: dict[str, str]) -> AgentSpec:
    """The agent's environment (agent_env) and its runtime character, written to its own folder.

    Raises ValidationFailed when a stored secret name or the character cannot run (both were
    checked when stored; this catches what was stored before those checks, never dropping it).
    """
    config = version["config"]
    env = agent_env.build(get_settings().model_env(), secrets, config.get("settings") or {}, config["name"])
    path = eliza_character.write_runtime(agent_id, eliza_character.for_runtime(config, env.model_keys))
    return AgentSpec(agent_id=agent_id, character_path=path, character_version=version["version"], env=env.env)


def _drain(agent_id: str) -> None:
    """Wait, for a bounded time, for messages in flight to finish; new ones see `hibernating`."""
    deadline = time.monotonic() + get_settings().drain_timeout
    while time.monotonic() < deadline:
        with db.transaction(SYSTEM) as conn:
            if repository.inflight(conn, agent_id) == 0:
                return
        time.sleep(0.05)
    log.warning("agent %s: messages still in flight after the drain timeout; stopping anyway", agent_id)


def stop_instance(row: Row) -> None:
    """Stop the row's runtime instance, if it has one (the caller holds the agent's lock)."""
    if row["runtime_handle"]:
        get_runtime(row["runtime"]).stop(row["runtime_handle"], grace=get_settings().agent_stop_grace)


def transition(agent_id: str, status: str, *, actor: str, reason: str, duration_ms: int | None = None,
                fields: dict[str, Any] | None = None, details: dict[str, Any] | None = None,
                guard: Callable[[Conn, Row], None] | None = None) -> Row:
    """Move the agent to status (checked against the transition table) and record the event.

    guard runs in the same transaction, on the locked row, before the change (a quota check).
    """
    with db.transaction(SYSTEM) as conn:
        row = require_row(conn, agent_id, for_update=True)
        if row["status"] != status:
            check_transition(agent_id, row["status"], status)
        if guard is not None:
            guard(conn, row)
        extra = dict(fields or {})
        if status in ("provisioning", "hibernating", "waking", "deleting"):
            extra.setdefault("transition_started_at", datetime.now(UTC))
        if status == "error":
            extra.setdefault("status_reason", reason)
        updated = repository.update_agent(conn, agent_id, status=status, **extra)
        repository.insert_event(conn, agent_id=agent_id, user_id=str(row["user_id"]), from_status=row["status"],
                                to_status=status, actor=actor, reason=reason, duration_ms=duration_ms,
                                details=details)
        return updated


# --- hibernate / wake / delete ------------------------------------------------------------------

def hibernate(caller: Caller, agent_id: str, *, reason: str = "requested",
              idle_since: datetime | None = None) -> AgentPublic:
    """Stop the agent's compute and keep everything else. Idempotent. Raises NotFound.

    idle_since: hibernate only if the agent has had no activity since then, checked under the
    lock, so a message that arrived after the idle sweep looked keeps the agent awake.
    """
    get(caller, agent_id)  # ownership, through RLS
    with db.agent_lock(agent_id):
        with db.transaction(SYSTEM) as conn:
            row = require_row(conn, agent_id)
        if idle_since is not None and row["last_activity_at"] >= idle_since:
            return get(caller, agent_id)
        if row["status"] != "hibernated":
            began = time.monotonic()
            if row["status"] != "hibernating":
                check_transition(agent_id, row["status"], "hibernating")
                transition(agent_id, "hibernating", actor=caller.actor, reason=reason,
                            fields={"desired_state": "hibernated"})
            crash_point("hibernate:marked")
            _drain(agent_id)
            stop_instance(row)
            crash_point("hibernate:stopped")
            transition(agent_id, "hibernated", actor=caller.actor, reason=reason,
                        duration_ms=int((time.monotonic() - began) * 1000),
                        fields={"runtime_handle": None, "url": None, "running_version": None,
                                "transition_started_at": None, "desired_state": "hibernated"})
    return get(caller, agent_id)


def wake(caller: Caller, agent_id: str, *, reason: str = "requested") -> AgentPublic:
    """Start the agent again from its current version; returns once it answers. Idempotent.

    Raises NotFound, InvalidTransition, QuotaExceeded (the owner runs as many agents as allowed),
    AgentStartFailed, RuntimeUnavailable.
    """
    get(caller, agent_id)
    with db.agent_lock(agent_id):
        with db.transaction(SYSTEM) as conn:
            row = require_row(conn, agent_id)
        if row["status"] == "running" and _alive(row):
            return get(caller, agent_id)
        if row["status"] != "waking":
            check_transition(agent_id, row["status"], "waking")
            transition(agent_id, "waking", actor=caller.actor, reason=reason, fields={"desired_state": "running"},
                       guard=limits.reserve_running_slot)
        crash_point("wake:marked")
        stop_instance(row)  # a dead or stale instance left from before
        start_instance(agent_id, actor=caller.actor, reason=reason)
    return get(caller, agent_id)


def delete(caller: Caller, agent_id: str) -> AgentPublic:
    """Stop the agent and remove its rows, versions and schedules. Raises NotFound."""
    before = get(caller, agent_id)
    with db.agent_lock(agent_id):
        row = transition(agent_id, "deleting", actor=caller.actor, reason="deleted",
                          fields={"desired_state": "deleted"})
        crash_point("delete:marked")
        finish_delete(row, actor=caller.actor)
    return before.model_copy(update={"status": "deleted", "url": None})


def finish_delete(row: Row, *, actor: str) -> None:
    """Stop the agent, drop its jobs, rows and files; the row says `deleting` (the caller holds the lock)."""
    agent_id = str(row["id"])
    stop_instance(row)
    agent_databases.drop(get_settings(), agent_id)  # first: if it fails, the row says deleting, to retry
    _sync_schedules(agent_id, removed=True)
    with db.transaction(SYSTEM) as conn:
        repository.delete_character(conn, str(row["character_id"]))
        repository.insert_event(conn, agent_id=agent_id, user_id=str(row["user_id"]), from_status="deleting",
                                to_status=None, actor=actor, reason="deleted: compute, rows and files removed")
    get_store().delete_character(str(row["character_id"]))
    # The agent's memory (its ElizaOS database) lives in its home (process, docker), or in a
    # database of its own (Cloud Run, dropped above): deleting the agent deletes it.
    shutil.rmtree(get_settings().agent_home(agent_id), ignore_errors=True)


def _alive(row: Row) -> bool:
    if not row["runtime_handle"]:
        return False
    try:
        return get_runtime(row["runtime"]).alive(row["runtime_handle"])
    except RuntimeUnavailable:
        return False


# --- character updates -------------------------------------------------------------------------

def update_character(caller: Caller, cmd: CharacterUpdate) -> AgentPublic:
    """Store a new immutable version; a running agent restarts on it. Raises NotFound."""
    split = split_secrets(cmd.character)
    eliza_character.check(split.config, split.secrets)  # a 422 before anything is written
    data = canonical_bytes(split.config)
    with db.agent_lock(cmd.agent_id):
        with db.transaction(caller) as conn:
            row = require_row(conn, cmd.agent_id)  # ownership, through RLS
            character_id = str(row["character_id"])
            with db.as_service_role(conn):
                version = repository.next_version(conn, character_id)
                uri = get_store().put(character_id, version, data)
                repository.insert_version(conn, character_id=character_id, version=version,
                                          user_id=str(row["user_id"]), config=split.config,
                                          sha256=sha256_hex(data), storage_uri=uri)
                if split.secrets:  # none sent: the stored secrets stay as they are
                    _put_secrets(conn, character_id, str(row["user_id"]), _stored_secrets(conn, character_id),
                                 split.secrets)
                repository.insert_event(conn, agent_id=cmd.agent_id, user_id=str(row["user_id"]),
                                        from_status=row["status"], to_status=row["status"], actor=caller.actor,
                                        reason=f"character updated to version {version}",
                                        details={"version": version})
        if row["status"] == "running":
            transition(cmd.agent_id, "waking", actor=caller.actor, reason=f"restart on version {version}")
            stop_instance(row)
            start_instance(cmd.agent_id, actor=caller.actor, reason=f"running version {version}")
    return get(caller, cmd.agent_id)


def versions(caller: Caller, agent_id: str) -> list[dict[str, Any]]:
    with db.transaction(caller) as conn:
        row = require_row(conn, agent_id)
        return [{"version": v["version"], "sha256": v["sha256"], "created_at": v["created_at"],
                 "character": v["config"]} for v in repository.list_versions(conn, str(row["character_id"]))]


def events(caller: Caller, agent_id: str | None, limit: int) -> list[dict[str, Any]]:
    with db.transaction(caller) as conn:
        if agent_id is None and not caller.is_admin:
            raise NotFound("agent_id is required", details=[{"loc": ["agent_id"], "msg": "field required"}])
        if agent_id is not None:
            require_row(conn, agent_id)
        return [{**e, "id": e["id"], "agent_id": str(e["agent_id"]), "user_id": str(e["user_id"])}
                for e in repository.list_events(conn, agent_id, limit)]


def logs(caller: Caller, agent_id: str, tail: int) -> list[str]:
    with db.transaction(caller) as conn:
        row = require_row(conn, agent_id)
    if not row["runtime_handle"]:
        return []
    return get_runtime(row["runtime"]).logs(row["runtime_handle"], tail=tail)


# --- schedules: stored here, synced to the scheduler by schedules_service ----------------------

def _sync_schedules(agent_id: str, *, removed: bool = False) -> None:
    from . import schedules_service  # it builds on this module

    schedules_service.sync_agent(agent_id, removed=removed)

