"""Scheduled sweeps: hibernate idle agents, and finish operations stuck in a transitional state."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import (
    agent_client,
    agent_locks,
    db,
    experiments,
    idle_repository,
    reconcile,
    release_store,
    repository,
    telemetry,
)
from .agents import STOPPED, Agent, check_transition
from .auth import Caller
from .db import Conn
from .errors import ParadyzeError
from .idle_repository import IdleAgent
from .instances import crash_point, stop_instance

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=5)
IDLE_REASON = "idle past its policy"
_FLUSH_AT = 200  # stopped agents written (and their locks given back) together ...
_FLUSH_S = 0.2  # ... or after this long, so that slow stops never hold the finished ones back


@dataclass
class _Outcome:
    hibernated: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)  # idle by our count, but the agent is in use
    checked: int = 0


@telemetry.sweep("idle")
def hibernate_idle(caller: Caller, *, batch: int = 200, budget_s: float = 50.0, workers: int = 16) -> dict[str, Any]:
    """Hibernate running agents idle past their policy, a batch at a time, bounded in time.

    Each batch: one indexed query; the agents' own activity asked of those with a URL (in
    parallel); one transaction that claims the agents still idle, under their locks, and marks
    them hibernating; their runtimes stopped in parallel (at most `workers` at once); one write
    that marks the stopped ones hibernated (one per _FLUSH_S while stops are slow). The sweep
    holds the claimed agents' locks on a connection of its own until each is hibernated, so a
    wake or a message waits for it, as for any hibernate. An agent whose lock is held (another
    sweep, an operation) or that a message is being delivered to is left as it is. A stop that
    fails, or a crash, leaves the agent hibernating, which finish_stuck (reconcile) completes.
    """
    began = time.monotonic()
    outcome = _Outcome()
    left: set[str] = set()
    with db.own_connection() as session, concurrent.futures.ThreadPoolExecutor(workers) as pool:
        while time.monotonic() - began < budget_s:
            with db.transaction_on(session, caller) as conn:
                rows = idle_repository.idle_agents(conn, batch, exclude=sorted(left))
            if not rows:
                break
            outcome.checked += len(rows)
            quiet = _without_own_activity(session, caller, rows, pool, outcome)
            claimed, kept = _claim(session, caller, quiet, outcome)
            # The next batch's query passes over those left running (the others are not idle any more).
            left.update(r.id for r in rows)
            left.difference_update(a.id for a in claimed)
            crash_point("idle:claimed")
            _stop_and_finish(session, caller, claimed, kept, pool, outcome)
    return {"hibernated": sorted(outcome.hibernated), "failed": sorted(outcome.failed),
            "active": sorted(outcome.active), "checked": outcome.checked,
            "elapsed_ms": int((time.monotonic() - began) * 1000),
            "complete": time.monotonic() - began < budget_s}


def _without_own_activity(session: Conn, caller: Caller, rows: list[IdleAgent],
                          pool: concurrent.futures.Executor, outcome: _Outcome) -> list[str]:
    """The agents of rows with no activity of their own since their idle cutoff; the others' is recorded.

    Messages may reach an agent without us (its own Twitter or Discord client): its last memory
    counts. That is one HTTP call per agent with a URL, made in parallel.
    """
    asked = [r for r in rows if r.url]
    if not asked:
        return [r.id for r in rows]
    client = agent_client.get_client()
    beats = pool.map(lambda r: client.last_activity(r.url or "", r.id, r.eliza_agent_id), asked)
    now = datetime.now(UTC)
    busy = {r.id: beat for r, beat in zip(asked, beats, strict=True)
            if beat is not None and beat > now - timedelta(minutes=r.idle_timeout_minutes)}
    if busy:
        with db.transaction_on(session, caller) as conn:
            idle_repository.record_activities(conn, busy)
        outcome.active.extend(busy)
    return [r.id for r in rows if r.id not in busy]


def _claim(session: Conn, caller: Caller, ids: list[str], outcome: _Outcome) -> tuple[list[Agent], set[str]]:
    """Mark hibernating, in one transaction, the agents of ids still idle whose lock this session
    takes and to which no message is being delivered; returns them, and those with a release open.

    The locks stay with the session after the commit. A message that starts after it reads
    `hibernating` and wakes the agent, waiting for its lock: no drain is needed.
    """
    if not ids:
        return [], set()
    with db.transaction_on(session, caller) as conn:
        free, in_use = idle_repository.lock_idle(
            conn, {i: (agent_locks.operation_key(i), agent_locks.messages_key(i)) for i in ids})
        for agent_id in free:
            check_transition(agent_id, "running", "hibernating")
        claimed = idle_repository.mark_hibernating(conn, free, actor=caller.actor, reason=IDLE_REASON)
        kept = idle_repository.with_open_release(conn, free)
    _unlock(session, in_use)  # after the commit, as every lock below
    outcome.active.extend(in_use)
    for agent in claimed:
        telemetry.transitioned(agent.id, "running", "hibernating", reason=IDLE_REASON, duration_ms=None,
                               fields={"desired_state": "hibernated",
                                       "transition_started_at": agent.transition_started_at})
    return claimed, kept


def _stop_and_finish(session: Conn, caller: Caller, claimed: list[Agent], kept: set[str],
                     pool: concurrent.futures.Executor, outcome: _Outcome) -> None:
    """Stop the claimed agents' runtimes in parallel; mark those stopped hibernated in a few writes."""
    began = time.monotonic()
    pending = {pool.submit(stop_instance, a, kept_blue=a.id in kept): a.id for a in claimed}
    stopped: dict[str, int] = {}
    failed: list[str] = []
    flushed = time.monotonic()
    while pending:
        done, _ = concurrent.futures.wait(pending, timeout=_FLUSH_S, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            agent_id = pending.pop(future)
            try:
                future.result()
                stopped[agent_id] = int((time.monotonic() - began) * 1000)
            except ParadyzeError as exc:
                log.warning("idle hibernate of %s failed: %s", agent_id, exc.message)
                failed.append(agent_id)  # left hibernating, its lock given back: finish_stuck finishes it
        if not pending or len(stopped) + len(failed) >= _FLUSH_AT or time.monotonic() - flushed >= _FLUSH_S:
            _finish(session, caller, stopped, failed, outcome)
            stopped, failed, flushed = {}, [], time.monotonic()


def _finish(session: Conn, caller: Caller, stopped: dict[str, int], failed: list[str], outcome: _Outcome) -> None:
    if stopped:
        crash_point("idle:stopped")
        with db.transaction_on(session, caller) as conn:
            moved = idle_repository.mark_hibernated(conn, stopped, actor=caller.actor, reason=IDLE_REASON)
        if len(moved) < len(stopped):
            log.warning("idle hibernate: %d agents were no longer hibernating", len(stopped) - len(moved))
        for agent_id in moved:
            telemetry.transitioned(agent_id, "hibernating", "hibernated", reason=IDLE_REASON,
                                   duration_ms=stopped[agent_id],
                                   fields={"desired_state": "hibernated", **STOPPED.columns()})
        outcome.hibernated.extend(moved)
    _unlock(session, [*stopped, *failed])
    outcome.failed.extend(failed)


def _unlock(session: Conn, ids: list[str]) -> None:
    if ids:
        idle_repository.release_session_locks(session, [agent_locks.operation_key(i) for i in ids])


@telemetry.sweep("stuck")
def finish_stuck(caller: Caller, *, older_than: timedelta = STUCK_AFTER) -> list[str]:
    """Roll forward or back every agent whose transition began longer ago than older_than."""
    with db.transaction(caller) as conn:
        rows = repository.stuck_agents(conn, datetime.now(UTC) - older_than)
    for row in rows:
        try:
            reconcile.reconcile_one(row.id, actor="sweep")
        except ParadyzeError as exc:
            log.warning("sweep of %s failed: %s", row.id, exc.message)
    release_store.finish_due(actor="sweep", stuck_after=older_than)  # blue past its grace period, stuck releases
    experiments.clean_up_abandoned(caller)  # test agents of experiments whose request died
    return [r.id for r in rows]
