"""Reads of agents for their owner or the admin: one agent, the list, versions, events, logs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import db, repository
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


def list_all(caller: Caller, *, status: str | None, q: str | None, limit: int) -> list[AgentPublic]:
    with db.transaction(caller) as conn:
        agents = repository.list_agents(conn, status=status, q=q, limit=limit)
        schedules = _schedules_by_agent(conn, [a.id for a in agents])
        return [AgentPublic.of(a, schedules.get(a.id, [])) for a in agents]


def public(conn: Conn, agent: Agent) -> AgentPublic:
    """The public view of an agent the caller already holds, with its schedules read in conn."""
    return AgentPublic.of(agent, _schedules_by_agent(conn, [agent.id]).get(agent.id, []))


def _schedules_by_agent(conn: Conn, agent_ids: list[str]) -> dict[str, list[SchedulePublic]]:
    now = datetime.now(UTC)
    out: dict[str, list[SchedulePublic]] = {}
    for s in repository.list_schedules(conn, agent_ids) if agent_ids else []:
        out.setdefault(str(s["agent_id"]), []).append(SchedulePublic(
            id=str(s["id"]), action=s["action"], cron=s["cron"], timezone=s["timezone"], enabled=s["enabled"],
            next_run_at=next_fire(s["cron"], s["timezone"], now) if s["enabled"] else None,
        ))
    return out


def versions(caller: Caller, agent_id: str) -> list[dict[str, Any]]:
    with db.transaction(caller) as conn:
        agent = require_agent(conn, agent_id)
        return [{"version": v["version"], "sha256": v["sha256"], "created_at": v["created_at"],
                 "character": v["config"]} for v in repository.list_versions(conn, agent.character_id)]


def events(caller: Caller, agent_id: str | None, limit: int) -> list[dict[str, Any]]:
    with db.transaction(caller) as conn:
        if agent_id is None and not caller.is_admin:
            raise NotFound("agent_id is required", details=[{"loc": ["agent_id"], "msg": "field required"}])
        if agent_id is not None:
            require_agent(conn, agent_id)
        return [{**e, "id": e["id"], "agent_id": str(e["agent_id"]), "user_id": str(e["user_id"])}
                for e in repository.list_events(conn, agent_id, limit)]


def logs(caller: Caller, agent_id: str, tail: int) -> list[str]:
    agent = read(caller, agent_id)
    if not agent.runtime_handle:
        return []
    return get_runtime(agent.runtime).logs(agent.runtime_handle, tail=tail)
