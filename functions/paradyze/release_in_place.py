"""The switch of a release for an agent that is one of its owner's shared ElizaOS server's agents.

There the agent's memory is not a folder in its home that green can start from a copy of: it is the
agent's rows in its owner's database, keyed by the agent's id. Green (the twin, a second agent in the
same server) is smoke-tested as for any release, without that memory; the switch then restarts the
agent itself on the new version, in place, in the same server (an agent start there takes 0.1 s, not
a server boot), so the agent keeps every memory. Messages arriving meanwhile find it `waking` and wait
for it on its lock, as a wake-on-message does; messages in flight finish on the old version first.
There is no blue to keep: a rollback is the same restart on the earlier version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import db, release_store, repository, slots
from .agents import Agent
from .auth import SYSTEM
from .errors import ParadyzeError
from .instances import crash_point, forget_memory, start_instance, transition
from .release_models import ReleasePublic
from .runtimes import get_runtime
from .settings import get_settings

Row = dict[str, Any]


def applies(agent: Agent) -> bool:
    """Whether the agent runs in its owner's shared server, so its release switches in place."""
    return bool(agent.runtime_handle and get_runtime(agent.runtime).shares_server(agent.runtime_handle))


def switch(agent: Agent, rec: Row, *, version: int, green_handle: str, smoke: list[dict[str, Any]],
           kind: str, actor: str) -> ReleasePublic:
    """After green passed its smoke test: restart the agent on version, in place (the caller holds the
    agent's lock). A crash from here on leaves the agent waking on the new version, which reconcile
    starts, and the release switched, which it closes."""
    runtime = get_runtime(agent.runtime)
    settings = get_settings()
    runtime.stop(green_handle, grace=settings.agent_stop_grace)
    forget_memory(agent, slots.twin(agent.id))  # the twin served only the smoke test
    reason = f"{kind} to version {version}: restarting in place in the owner's server, memory kept"
    with db.transaction(SYSTEM) as conn:
        release_store.set_current(conn, agent.character_id, version)
        current = repository.get_agent(conn, agent.id)
        assert current is not None
        agent = transition(conn, current, "waking", actor=actor, reason=reason)
        rec = release_store.update(conn, str(rec["id"]), status="switched", serving="green", smoke=smoke,
                                   keep_until=datetime.now(UTC), reason=reason)
        release_store.record(conn, rec, f"{kind} switched to version {version} in place")
    crash_point("release:switched")
    db.drain_messages(agent.id)
    if agent.runtime_handle:
        runtime.stop(agent.runtime_handle, grace=settings.agent_stop_grace)
    try:
        start_instance(agent, actor=actor, reason=f"running version {version} after the {kind}")
    except ParadyzeError as exc:  # the agent is in error, saying why; the release says so too
        outcome, why = "failed", f"the agent did not start again on version {version}: {exc.message}"
    else:
        outcome, why = "done", f"version {version} serves, restarted in place with its memory"
    with db.transaction(SYSTEM) as conn:
        rec = release_store.update(conn, str(rec["id"]), status=outcome, serving="green", reason=why)
        release_store.record(conn, rec, f"release {outcome}: {why}", actor=actor)
    return ReleasePublic.from_row(rec)
