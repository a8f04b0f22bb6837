"""Reads of agents for their owner or the admin: one agent, the list, versions, events, logs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import db, pages, repository
from .agents import Agent, AgentPublic, SchedulePublic
from .auth import Caller
from .db import Conn
from .errors import NotFound
from .instances import require_agent
from .runtimes import get_runtime
from .scheduler.cron import next_fire


def get(caller: Caller, agent_id: str) -> AgentPublic:
    """Raises NotFound when the agent does not exist or is not the caller's."""
    with db.transaction(caller) as conn:
        return public(conn, require_agent(conn, agent_id))


def read(caller: Caller, agent_id: str) -> Agent:
    """The stored agent, read as the caller. Raises NotFound when it does not exist or is not theirs."""
    with db.transaction(caller) as conn:
        return require_agent(conn, agent_id)


def list_all(caller: Caller, *, status: str | None, q: str | None, limit: int,
             cursor: str | None = None) -> tuple[list[AgentPublic], str | None]:
    """One page of the caller's agents, oldest first, and the cursor of the next page (None on the last).

    Raises ValidationFailed for a cursor this platform did not issue for this list and these filters.
    """
    filters = {"status": status, "q": q}
    position = pages.decode(cursor, "agents", filters)
    after = (datetime.fromisoformat(position[0]), str(position[1])) if position else None
    with db.transaction(caller) as conn:
        rows, more = pages.split(repository.list_public_agents(conn, status=status, q=q, limit=limit + 1,
                                                               after=after), limit)
    now = datetime.now(UTC)
    agents = [AgentPublic.model_validate({**row, "policy": {
        "idle_timeout_minutes": row["idle_timeout_minutes"], "auto_hibernate": row["auto_hibernate"],
        "schedules": [_schedule(s, now) for s in sorted(row["schedules"] or [], key=lambda s: s["action"])],
    }}) for row in rows]
    last = agents[-1] if agents and more else None
    next_cursor = pages.encode("agents", filters, [last.created_at.isoformat(), last.id]) if last else None
    return agents, next_cursor


def public(conn: Conn, agent: Agent) -> AgentPublic:
    """The public view of an agent the caller already holds, with its schedules read in conn."""
    now = datetime.now(UTC)
    return AgentPublic.of(agent, [SchedulePublic.model_validate(_schedule(s, now))
                                  for s in repository.list_schedules(conn, [agent.id])])


def _schedule(s: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A stored schedule as SchedulePublic reads it: with when it fires next, if enabled."""
    return {"id": str(s["id"]), "action": s["action"], "cron": s["cron"], "timezone": s["timezone"],
            "enabled": s["enabled"], "next_run_at": next_fire(s["cron"], s["timezone"], now) if s["enabled"] else None}


def versions(caller: Caller, agent_id: str, *, limit: int,
             cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the agent's character versions, oldest first, and the next page's cursor."""
    position = pages.decode(cursor, "versions", {"agent_id": agent_id})
    with db.transaction(caller) as conn:
        agent = require_agent(conn, agent_id)
        found = repository.list_versions(conn, agent.character_id, limit=limit + 1,
                                         after=int(position[0]) if position else None)
    found, more = pages.split(found, limit)
    next_cursor = pages.encode("versions", {"agent_id": agent_id}, [found[-1]["version"]]) if more else None
    return [{"version": v["version"], "semver": v["semver"], "change": v["change"],
             "current": v["version"] == agent.current_version, "sha256": v["sha256"],
             "created_at": v["created_at"], "character": v["config"]} for v in found], next_cursor


def events(caller: Caller, agent_id: str | None, limit: int,
           cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of events, newest first, and the next page's cursor. Raises NotFound without an
    agent_id for a user, ValidationFailed for a cursor not issued for this list."""
    position = pages.decode(cursor, "events", {"agent_id": agent_id})
    before = (datetime.fromisoformat(position[0]), int(position[1])) if position else None
    with db.transaction(caller) as conn:
        if agent_id is None and not caller.is_admin:
            raise NotFound("agent_id is required", details=[{"loc": ["agent_id"], "msg": "field required"}])
        if agent_id is not None:
            require_agent(conn, agent_id)
        found, more = pages.split(repository.list_events(conn, agent_id, limit + 1, before), limit)
    last = found[-1] if found and more else None
    next_cursor = pages.encode("events", {"agent_id": agent_id}, [last["at"].isoformat(), last["id"]]) if last else None
    return [{**e, "agent_id": str(e["agent_id"]), "user_id": str(e["user_id"])} for e in found], next_cursor


def logs(caller: Caller, agent_id: str, tail: int) -> list[str]:
    agent = read(caller, agent_id)
    if not agent.runtime_handle:
        return []
    return get_runtime(agent.runtime).logs(agent.runtime_handle, tail=tail)
