"""The steps that run under an agent's lock: transition, start and stop an instance, finish a delete.

Each writes its progress in short committed steps, so a crash between two leaves a row that says
what was under way; crash_point lets the tests stop at each step.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from . import agent_client, agent_databases, agent_env, db, eliza_character, repository, vault
from .agents import check_transition
from .auth import SYSTEM
from .db import Conn
from .errors import AgentStartFailed, NotFound, ParadyzeError, RuntimeUnavailable
from .runtimes import get_runtime
from .runtimes.base import AgentSpec
from .scheduler.sync import sync_stored_agent
from .settings import get_settings
from .storage import get_store

log = logging.getLogger(__name__)
Row = dict[str, Any]


def crash_point(step: str) -> None:
    """Fault injection: exit at once, as a crash would, after the named step (tests only)."""
    if get_settings().crash_after == step:
        log.warning("crash point %s reached: exiting", step)
        os._exit(137)


def require_row(conn: Conn, agent_id: str, *, for_update: bool = False) -> Row:
    row = repository.get_agent(conn, agent_id, for_update=for_update)
    if row is None:
        raise NotFound(f"agent {agent_id} not found", details=[{"loc": ["agent_id"], "msg": "no such agent"}])
    return row


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
        spec = replace(spec, tenant=str(row["user_id"]))
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


def drain(agent_id: str) -> None:
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


def finish_delete(row: Row, *, actor: str) -> None:
    """Stop the agent, drop its jobs, rows and files; the row says `deleting` (the caller holds the lock)."""
    agent_id = str(row["id"])
    forget = getattr(get_runtime(row["runtime"]), "forget", None)
    if forget is not None:  # memory kept outside the agent's home (its owner's server): first, while it runs
        forget(agent_id, str(row["user_id"]))
    stop_instance(row)
    agent_databases.drop(get_settings(), agent_id)  # first: if it fails, the row says deleting, to retry
    sync_stored_agent(agent_id, removed=True)
    with db.transaction(SYSTEM) as conn:
        repository.delete_character(conn, str(row["character_id"]))
        repository.insert_event(conn, agent_id=agent_id, user_id=str(row["user_id"]), from_status="deleting",
                                to_status=None, actor=actor, reason="deleted: compute, rows and files removed")
    get_store().delete_character(str(row["character_id"]))
    # The agent's memory (its ElizaOS database) lives in its home (process, docker), or in a
    # database of its own (Cloud Run, dropped above): deleting the agent deletes it.
    shutil.rmtree(get_settings().agent_home(agent_id), ignore_errors=True)


def alive(row: Row) -> bool:
    """Whether the row's runtime instance is up; False when it has none or its runtime cannot answer."""
    if not row["runtime_handle"]:
        return False
    try:
        return get_runtime(row["runtime"]).alive(row["runtime_handle"])
    except RuntimeUnavailable:
        return False
