"""Reconcile: make what runs match what the rows want, after a restart, a crash or a stuck step."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import agent_client, db, release_store, repository, slots
from .agents import STOPPED, Agent, AgentChange
from .auth import SYSTEM
from .errors import ParadyzeError, RuntimeUnavailable, ValidationFailed
from .instances import finish_delete, start_instance, step, stop_instance
from .runtimes import get_runtime
from .runtimes.base import Owned
from .settings import get_settings

log = logging.getLogger(__name__)
_NO_OWNER = str(uuid.UUID(int=0))


@dataclass
class Report:
    adopted: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    removed_orphans: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    errored: list[str] = field(default_factory=list)
    skipped_runtimes: list[str] = field(default_factory=list)


def reconcile_all(actor: str = "reconcile") -> Report:
    """Adopt live agents, restart those that should run, remove orphans; every action an event."""
    report = Report()
    with db.transaction(SYSTEM) as conn:
        rows = {a.id: a for a in repository.list_agents(conn, limit=1_000_000)}
    kinds: set[str] = {a.runtime for a in rows.values()} | {get_settings().runtime}
    owned: dict[str, list[Owned]] = {}
    for kind in sorted(kinds):
        try:
            instances = get_runtime(kind).list_owned()
        except (RuntimeUnavailable, ValidationFailed, ImportError) as exc:
            report.skipped_runtimes.append(f"{kind}: {exc}")
            continue
        for inst in instances:
            row = rows.get(slots.agent_of(inst.agent_id))  # an agent's twin is the agent
            if row is None or row.runtime != kind:
                # Started, but its row never committed (or is gone): nothing will ever use it.
                get_runtime(kind).stop(inst.handle, grace=get_settings().agent_stop_grace)
                _record_event(inst.agent_id, _NO_OWNER, actor, "orphan removed: no agent row", {"handle": inst.handle})
                report.removed_orphans.append(inst.agent_id)
            else:
                owned.setdefault(slots.agent_of(inst.agent_id), []).append(inst)
    for agent_id in rows:
        if kinds_skipped(report, rows[agent_id].runtime):
            continue
        try:
            with db.agent_lock(agent_id):
                release_store.finish(agent_id, actor=actor)  # a release a crash interrupted
                _reconcile_row(agent_id, owned.get(agent_id, []), actor, report)
        except ParadyzeError as exc:
            log.warning("reconcile of agent %s failed: %s", agent_id, exc.message)
            report.errored.append(agent_id)
    return report


def kinds_skipped(report: Report, kind: str) -> bool:
    return any(s.startswith(f"{kind}:") for s in report.skipped_runtimes)


def reconcile_one(agent_id: str, actor: str = "reconcile") -> None:
    with db.agent_lock(agent_id):
        with db.transaction(SYSTEM) as conn:
            agent = repository.get_agent(conn, agent_id)
        if agent is not None:
            reconcile_locked(agent, actor)


def reconcile_locked(agent: Agent, actor: str = "reconcile") -> None:
    """reconcile_one for a caller that holds the agent's lock and has just read its row."""
    release_store.finish(agent.id, actor=actor)  # an interrupted release ends first (it never moves the row)
    instances = [i for i in get_runtime(agent.runtime).list_owned() if slots.agent_of(i.agent_id) == agent.id]
    _reconcile(agent, instances, actor, Report())


def _reconcile_row(agent_id: str, instances: list[Owned], actor: str, report: Report) -> None:
    with db.transaction(SYSTEM) as conn:
        agent = repository.get_agent(conn, agent_id)
    if agent is not None:
        _reconcile(agent, instances, actor, report)


def _reconcile(agent: Agent, instances: list[Owned], actor: str, report: Report) -> None:
    agent_id = agent.id
    runtime = get_runtime(agent.runtime)
    extras = [i for i in instances if i.handle != agent.runtime_handle and i.url != agent.url
              and not release_store.is_kept(agent_id, i.url)]

    if agent.desired_state == "deleted":
        for inst in extras:
            runtime.stop(inst.handle, grace=1.0)
        finish_delete(agent, actor=actor)
        report.finished.append(agent_id)
        return

    if agent.desired_state == "hibernated":
        for inst in extras:
            runtime.stop(inst.handle, grace=1.0)
        if agent.status != "hibernated":
            stop_instance(agent)
            if agent.status == "running":
                agent = step(agent, "hibernating", actor=actor, reason="finishing hibernate")
            step(agent, "hibernated", actor=actor, reason="hibernate finished by reconcile", change=STOPPED)
            report.finished.append(agent_id)
        return

    # desired running
    alive = bool(agent.runtime_handle) and runtime.alive(agent.runtime_handle or "")
    if not alive and extras:
        # Started before a crash that came ahead of recording its handle: adopt the newest.
        adopt, extras = extras[-1], extras[:-1]
        with db.transaction(SYSTEM) as conn:
            agent = repository.update_agent(conn, agent_id, AgentChange(runtime_handle=adopt.handle, url=adopt.url))
        _record_event(agent.id, agent.user_id, actor, "adopted a running instance", {"url": adopt.url})
        alive = True
        report.adopted.append(agent_id)
    for inst in extras:
        runtime.stop(inst.handle, grace=1.0)
        _record_event(agent.id, agent.user_id, actor, "duplicate instance removed", {"url": inst.url})

    if agent.status == "error":
        return  # needs a person (or a wake) to try again
    if alive:
        if agent.status != "running" and agent.url and agent_client.get_client().is_healthy(agent.url, agent_id):
            step(agent, "running", actor=actor, reason="found healthy by reconcile",
                 change=AgentChange(transition_started_at=None, running_version=agent.current_version,
                                    started_at=agent.started_at or datetime.now(UTC)))
            report.adopted.append(agent_id)
        return
    _restart_dead(agent, actor, report)


def _restart_dead(agent: Agent, actor: str, report: Report) -> None:
    settings = get_settings()
    agent_id = agent.id
    now = datetime.now(UTC)
    if agent.status == "running":  # it crashed
        window = [t for t in agent.crash_times if t > now - timedelta(seconds=settings.restart_window)]
        if window and (now - window[-1]).total_seconds() < _backoff(len(window)):
            return  # restart later; the next sweep comes back to it
        window.append(now)
        change = AgentChange(crash_times=window, restart_count=agent.restart_count + 1, runtime_handle=None, url=None)
        if len(window) > settings.max_restarts:
            step(agent, "error", actor=actor, change=change,
                 reason=f"crashed {len(window)} times within {int(settings.restart_window)} s;"
                        " not restarting (wake it to try again)")
            report.errored.append(agent_id)
            return
        agent = step(agent, "waking", actor=actor, change=change,
                     reason=f"restarting after a crash ({len(window)} in the window)")
    elif agent.status == "hibernated":
        agent = step(agent, "waking", actor=actor, reason="platform restarted; should be running")
    try:
        start_instance(agent, actor=actor, reason="restarted by reconcile")
        report.restarted.append(agent_id)
    except ParadyzeError as exc:
        log.warning("restart of agent %s failed: %s", agent_id, exc.message)
        report.errored.append(agent_id)


def _backoff(crashes: int) -> float:
    return float(min(2 ** (crashes - 1), 60))


def _record_event(agent_id: str, user_id: str, actor: str, reason: str, details: dict[str, Any]) -> None:
    with db.transaction(SYSTEM) as conn:
        repository.insert_event(conn, agent_id=agent_id, user_id=user_id, from_status=None, to_status=None,
                                actor=actor, reason=reason, details=details)
