"""The idle sweep's SQL: idle agents, and a batch of them claimed and finished in a few statements each.

Functions take a connection and never commit: the sweep (sweeps.py) owns the transactions.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from psycopg.rows import class_row
from pydantic import BaseModel

from . import release_store
from .agents import Agent, Id, OptionalId
from .db import Conn
from .repository import CURRENT_VERSION


class IdleAgent(BaseModel):
    """An agent the idle sweep looks at: enough to ask it about its own activity."""

    id: Id
    url: str | None
    eliza_agent_id: OptionalId
    idle_timeout_minutes: int


# Idle by the platform's count: running, opted in, no activity for longer than its own policy.
_IDLE = ("a.status = 'running' and a.auto_hibernate and a.desired_state = 'running'"
         " and a.last_activity_at < now() - make_interval(mins => a.idle_timeout_minutes)")


def idle_agents(conn: Conn, limit: int, exclude: list[str]) -> list[IdleAgent]:
    """Running agents idle past their own policy, oldest first, but those in exclude; served by
    agents_idle_sweep_idx."""
    return conn.cursor(row_factory=class_row(IdleAgent)).execute(
        "select a.id, a.url, a.eliza_agent_id, a.idle_timeout_minutes from public.agents a where " + _IDLE +
        " and not (a.id = any(%(exclude)s::uuid[])) order by a.last_activity_at limit %(limit)s",
        {"limit": limit, "exclude": exclude},
    ).fetchall()


def record_activities(conn: Conn, seen: dict[str, datetime]) -> None:
    """Activity the agents report themselves, in one write; it only ever moves last_activity_at forward."""
    conn.execute(
        "update public.agents a set last_activity_at = greatest(a.last_activity_at, t.at)"
        " from unnest(%s::uuid[], %s::timestamptz[]) as t(id, at) where a.id = t.id",
        (list(seen), list(seen.values())),
    )


class Claim(NamedTuple):
    free: list[str]  # still idle, their lock now this session's, no message in flight
    in_use: list[str]  # still idle, their lock this session's, but a message is being delivered


def lock_idle(conn: Conn, keys: dict[str, tuple[int, int]]) -> Claim:
    """Of the agents (id -> its operation and messages keys), lock those still idle, in one statement.

    Each row is locked until the transaction ends; a row another transaction holds (another sweep,
    a message's write) is skipped, never waited for. Then the agent's operation lock is taken for
    this session, if free: it outlives the transaction (and a rollback) until pg_advisory_unlock or
    the connection's end. Then its messages key alone, until the transaction ends (see
    db.messages_in_flight), if no message is being delivered: none can start before the commit.
    """
    # The CTEs call volatile functions, so each is evaluated once, and each lock tried once per row;
    # CASE tries the messages key only where the operation lock was taken.
    rows = conn.execute(
        "with idle as ("
        "  select t.id, t.op, t.msg from unnest(%s::uuid[], %s::bigint[], %s::bigint[]) as t(id, op, msg)"
        "  join public.agents a on a.id = t.id where " + _IDLE + " for update of a skip locked"
        "), ours as (select id, msg, pg_try_advisory_lock(op) as ours from idle)"
        " select id, ours, case when ours then pg_try_advisory_xact_lock(msg) else false end as free from ours",
        (list(keys), [k[0] for k in keys.values()], [k[1] for k in keys.values()])).fetchall()
    return Claim(free=[str(r["id"]) for r in rows if r["free"]],
                 in_use=[str(r["id"]) for r in rows if r["ours"] and not r["free"]])


def release_session_locks(conn: Conn, keys: list[int]) -> None:
    conn.execute("select pg_advisory_unlock(k) from unnest(%s::bigint[]) as k", (keys,))


def mark_hibernating(conn: Conn, ids: list[str], *, actor: str, reason: str) -> list[Agent]:
    """running -> hibernating for the agents (their rows locked by lock_idle), one event each,
    in one statement; returns the rows as they are now."""
    return conn.cursor(row_factory=class_row(Agent)).execute(
        "with moved as ("
        "  update public.agents a set status = 'hibernating', desired_state = 'hibernated',"
        "   transition_started_at = now(), updated_at = now()"
        "  from public.characters c where a.id = any(%(ids)s::uuid[]) and c.id = a.character_id"
        "  returning a.*, " + CURRENT_VERSION +
        "), logged as ("
        "  insert into public.agent_events (agent_id, user_id, from_status, to_status, actor, reason)"
        "  select id, user_id, 'running', 'hibernating', %(actor)s, %(reason)s from moved"
        ") select * from moved",
        {"ids": ids, "actor": actor, "reason": reason},
    ).fetchall()


def with_open_release(conn: Conn, ids: list[str]) -> set[str]:
    """Of ids, the agents with a release under way or a blue kept (release_store.stop_kept's business)."""
    rows = conn.execute("select agent_id from public.agent_releases where agent_id = any(%s::uuid[])"
                        " and status = any(%s)", (ids, list(release_store.OPEN))).fetchall()
    return {str(r["agent_id"]) for r in rows}


def mark_hibernated(conn: Conn, durations_ms: dict[str, int], *, actor: str, reason: str) -> list[str]:
    """hibernating -> hibernated for the agents, their instance fields cleared, one event each with
    its duration, in one statement; returns the agents it moved (those still hibernating). The
    columns cleared are agents.STOPPED's."""
    rows = conn.execute(
        "with done as ("
        "  update public.agents a set status = 'hibernated', desired_state = 'hibernated',"
        "   runtime_handle = null, url = null, running_version = null, transition_started_at = null,"
        "   updated_at = now()"
        "  from unnest(%(ids)s::uuid[], %(ms)s::int[]) as t(id, ms)"
        "  where a.id = t.id and a.status = 'hibernating'"
        "  returning a.id, a.user_id, t.ms"
        ") insert into public.agent_events (agent_id, user_id, from_status, to_status, actor, reason, duration_ms)"
        " select id, user_id, 'hibernating', 'hibernated', %(actor)s, %(reason)s, ms from done returning agent_id",
        {"ids": list(durations_ms), "ms": list(durations_ms.values()), "actor": actor, "reason": reason},
    ).fetchall()
    return [str(r["agent_id"]) for r in rows]
