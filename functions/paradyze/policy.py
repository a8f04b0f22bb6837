"""Policy edits: idle timeout, opt-out, and schedules (whose jobs the scheduler then follows)."""

from __future__ import annotations

from . import repository
from .agents import AgentChange, AgentPublic, PolicyUpdate
from .auth import Caller
from .instances import authorised
from .queries import public
from .scheduler.sync import sync_stored_agent


def update_policy(caller: Caller, cmd: PolicyUpdate) -> AgentPublic:
    """Change what was given; schedules, when given, replace the agent's schedules. Raises NotFound."""
    change = AgentChange()  # only the fields set here are written
    if cmd.idle_timeout_minutes is not None:
        change.idle_timeout_minutes = cmd.idle_timeout_minutes
    if cmd.auto_hibernate is not None:
        change.auto_hibernate = cmd.auto_hibernate
    schedules = [s.model_dump() for s in cmd.schedules] if cmd.schedules is not None else None
    with authorised(caller, cmd.agent_id) as (conn, agent):
        if change.model_fields_set:
            agent = repository.update_agent(conn, agent.id, change)
        if schedules is not None:
            repository.replace_schedules(conn, agent.id, agent.user_id, schedules)
        repository.insert_event(conn, agent_id=agent.id, user_id=agent.user_id, from_status=agent.status,
                                to_status=agent.status, actor=caller.actor, reason="policy updated",
                                details={**change.columns(), "schedules": schedules or []})
        answer = public(conn, agent)
    if schedules is not None:
        sync_stored_agent(cmd.agent_id)
    return answer
