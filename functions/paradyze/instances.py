"""The steps that run under an agent's lock: transition, start and stop an instance, finish a delete.

The operation that holds the lock reads the agent once (authorised) and hands that row from step to
step: each step writes and gets the row back from its write, never reading it again. Each writes its
progress in a short committed transaction, so a crash between two leaves a row that says what was
under way; crash_point lets the tests stop at each step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import DictRow

from . import (
    agent_client,
    agent_databases,
    agent_env,
    db,
    eliza_character,
    release_store,
    repository,
    slots,
    telemetry,
    vault,
)
from .agents import TRANSITIONAL, Agent, AgentChange, Status, check_transition
from .auth import SYSTEM, Caller
from .db import Conn
from .errors import AgentBusy, AgentStartFailed, NotFound, ParadyzeError, RuntimeUnavailable
from .runtimes import get_runtime
from .runtimes.base import AgentRuntime, AgentSpec
from .scheduler.sync import sync_stored_agent
from .settings import get_settings
from .storage import get_store

log = logging.getLogger(__name__)


def crash_point(step: str) -> None:
    """Fault injection: exit at once, as a crash would, after the named step (tests only)."""
    if get_settings().crash_after == step:
        log.warning("crash point %s reached: exiting", step)
        os._exit(137)


def require_agent(conn: Conn, agent_id: str) -> Agent:
    """The agent as the transaction's role sees it. Raises NotFound (missing, or not the caller's)."""
    agent = repository.get_agent(conn, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found", details=[{"loc": ["agent_id"], "msg": "no such agent"}])
    return agent


@contextlib.contextmanager
def authorised(caller: Caller, agent_id: str) -> Iterator[tuple[Conn, Agent]]:
    """The one way a caller's operation writes to an agent: one transaction that reads the row as the
    caller, so row-level security decides whether it is theirs, then writes as service_role.

    Users hold no write privilege on the platform's columns (see db.as_service_role); the steps an
    operation takes afterwards, under the agent's lock, are the platform's own. Raises NotFound.
    """
    with db.transaction(caller) as conn:
        agent = require_agent(conn, agent_id)
        with db.as_service_role(conn):
            yield conn, agent


def transition(conn: Conn, agent: Agent, status: Status, *, actor: str, reason: str,
               duration_ms: int | None = None, change: AgentChange | None = None,
               details: dict[str, Any] | None = None,
               guard: Callable[[Conn, Agent], None] | None = None) -> Agent:
    """In the caller's transaction: move the agent (the row the caller holds, under the agent's
    lock) to status, checked against the transition table, and record the event.

    guard runs first, in the same transaction (a quota check). Raises InvalidTransition.
    """
    if agent.status != status:
        check_transition(agent.id, agent.status, status)
    if guard is not None:
        guard(conn, agent)
    change = (change or AgentChange()).model_copy()  # setting a field below marks it to be written
    if status in TRANSITIONAL and "transition_started_at" not in change.model_fields_set:
        change.transition_started_at = datetime.now(UTC)
    if status == "error" and "status_reason" not in change.model_fields_set:
        change.status_reason = reason
    updated = repository.update_agent(conn, agent.id, change, status=status)
    repository.insert_event(conn, agent_id=agent.id, user_id=agent.user_id, from_status=agent.status,
                            to_status=status, actor=actor, reason=reason, duration_ms=duration_ms, details=details)
    telemetry.transitioned(agent.id, agent.status, status, reason=reason, duration_ms=duration_ms,
                           fields=change.columns())
    return updated


def step(agent: Agent, status: Status, **how: Any) -> Agent:
    """transition() as a step of its own: one committed transaction, as the platform."""
    with db.transaction(SYSTEM) as conn:
        return transition(conn, agent, status, **how)


@telemetry.traced("agent.start")
def start_instance(agent: Agent, *, actor: str, reason: str, deadline: float | None = None) -> Agent:
    """Start the agent's current version and wait for health; the row ends running, or error with why.

    The caller holds the agent's lock. deadline (time.monotonic()) cuts the wait short for a caller
    that cannot wait longer: the agent is left waking, to be finished by the next wake or by
    reconcile. Raises AgentStartFailed, RuntimeUnavailable, AgentBusy (cut short by deadline).
    """
    with db.transaction(SYSTEM) as conn:
        version = repository.get_version(conn, agent.character_id, agent.current_version)
        secrets_row = repository.get_secrets(conn, agent.character_id)
    assert version is not None
    runtime = get_runtime(agent.runtime)
    began = time.monotonic()
    try:
        spec = _spec(slots.serving(agent), version, vault.unseal(secrets_row["ciphertext"]) if secrets_row else {})
        spec = replace(spec, tenant=agent.user_id)
        started = telemetry.traced("runtime.start")(runtime.start)(spec)
    except ParadyzeError as exc:
        step(agent, "error", actor=actor, reason=f"start failed: {exc.message}",
             change=AgentChange(runtime_handle=None, url=None))
        raise
    crash_point("start:launched")
    with db.transaction(SYSTEM) as conn:
        agent = repository.update_agent(conn, agent.id, AgentChange(runtime_handle=started.handle, url=started.url))
    crash_point("start:recorded")
    return await_running(agent, runtime, actor=actor, reason=reason, began=began, deadline=deadline)


def await_running(agent: Agent, runtime: AgentRuntime, *, actor: str, reason: str, began: float,
                  deadline: float | None = None) -> Agent:
    """Wait for the agent's recorded instance to answer health, then mark it running (see start_instance)."""
    assert agent.runtime_handle is not None and agent.url is not None
    handle, url = agent.runtime_handle, agent.url
    wait = get_settings().agent_start_timeout
    cut_short = deadline is not None and deadline - time.monotonic() < wait
    if deadline is not None:
        wait = min(wait, max(0.0, deadline - time.monotonic()))
    try:
        client = agent_client.get_client()
        client.wait_healthy(url, agent.id, wait, is_alive=lambda: runtime.alive(handle))
        info = client.agent_info(url, agent.id)
    except ParadyzeError as exc:
        if cut_short and runtime.alive(handle):
            raise AgentBusy(f"agent {agent.id} is still starting") from exc
        tail = runtime.logs(handle, tail=20)
        runtime.stop(handle, grace=1.0)
        step(agent, "error", actor=actor, reason=f"did not become healthy: {exc.message}",
             change=AgentChange(runtime_handle=None, url=None), details={"log_tail": tail})
        raise AgentStartFailed(f"agent {agent.id} did not become healthy: {exc.message}",
                               details=[{"loc": ["agent"], "msg": line} for line in tail[-5:]]) from exc
    now = datetime.now(UTC)
    return step(agent, "running", actor=actor, reason=reason, duration_ms=int((time.monotonic() - began) * 1000),
                change=AgentChange(eliza_agent_id=info.get("id"), running_version=agent.current_version,
                                   started_at=now, status_reason=None, transition_started_at=None,
                                   last_activity_at=now))


def _spec(agent_id: str, version: DictRow, secrets: dict[str, str]) -> AgentSpec:
    """The agent's environment (agent_env) and its runtime character, written to its own folder.

    Raises ValidationFailed when a stored secret name or the character cannot run (both were
    checked when stored; this catches what was stored before those checks, never dropping it).
    """
    config = version["config"]
    env = agent_env.build(get_settings().model_env(), secrets, config.get("settings") or {}, config["name"])
    path = eliza_character.write_runtime(agent_id, eliza_character.for_runtime(config, env.model_keys))
    return AgentSpec(agent_id=agent_id, character_path=path, character_version=version["version"], env=env.env)


@telemetry.traced("agent.stop")
def stop_instance(agent: Agent, *, kept_blue: bool = True) -> None:
    """Stop the agent's runtime instance, if it has one (the caller holds the agent's lock).

    kept_blue=False: the caller has looked (for a whole batch at once) and the agent keeps no blue.
    """
    if agent.runtime_handle:
        get_runtime(agent.runtime).stop(agent.runtime_handle, grace=get_settings().agent_stop_grace)
    if kept_blue:
        release_store.stop_kept(agent)  # a blue kept after a release stops with the agent


def forget_memory(agent: Agent, instance_id: str) -> None:
    """Delete what the agent's runtime keeps of one of its identities outside its home: its rows in
    its owner's shared server (the process runtime's ElizaOS servers); nothing for other runtimes."""
    get_runtime(agent.runtime).forget(instance_id, agent.user_id)


def finish_delete(agent: Agent, *, actor: str) -> None:
    """Stop the agent, drop its jobs, rows and files; the row says `deleting` (the caller holds the lock)."""
    forget_memory(agent, agent.id)  # first, while its owner's server still runs
    stop_instance(agent)
    agent_databases.drop(get_settings(), agent.id)  # first: if it fails, the row says deleting, to retry
    sync_stored_agent(agent.id, removed=True)
    with db.transaction(SYSTEM) as conn:
        repository.delete_character(conn, agent.character_id)
        repository.insert_event(conn, agent_id=agent.id, user_id=agent.user_id, from_status="deleting",
                                to_status=None, actor=actor, reason="deleted: compute, rows and files removed")
    get_store().delete_character(agent.character_id)
    # The agent's memory (its ElizaOS database) lives in its home (process, docker), or in a
    # database of its own (Cloud Run, dropped above): deleting the agent deletes it.
    shutil.rmtree(get_settings().agent_home(agent.id), ignore_errors=True)
    shutil.rmtree(get_settings().agent_home(slots.twin(agent.id)), ignore_errors=True)


def alive(agent: Agent) -> bool:
    """Whether the agent's runtime instance is up; False when it has none or its runtime cannot answer."""
    if not agent.runtime_handle:
        return False
    try:
        return get_runtime(agent.runtime).alive(agent.runtime_handle)
    except RuntimeUnavailable:
        return False
