"""The SQL of per-user limits and admin token generations. Parameterised; services own the transactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .db import AS_CALLER, Conn

# Agents that hold compute or are getting it; hibernating ones are on their way out.
_RUNNING = ("provisioning", "running", "waking")


@dataclass(frozen=True)
class AgentCounts:
    total: int
    running: int


def lock_user(conn: Conn, user_id: str) -> None:
    """Serialise one user's quota and in-flight bookkeeping until this transaction ends."""
    conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"paradyze.user:{user_id}",))


def agent_counts(conn: Conn, user_id: str, *, excluding: str | None = None) -> AgentCounts:
    """The user's agents (those being deleted aside), and how many of them run; `excluding` is not counted."""
    row = conn.execute(
        "select count(*) as total, count(*) filter (where status = any(%s)) as running"
        "  from public.agents where user_id = %s and status <> 'deleting' and id is distinct from %s",
        (list(_RUNNING), user_id, excluding),
    ).fetchone()
    assert row is not None
    return AgentCounts(total=int(row["total"]), running=int(row["running"]))


def take_rate_slot(conn: Conn, user_id: str, action: str, limit: int, period: timedelta) -> float | None:
    """Count one call against the user's rate: None when admitted, else seconds until a call would be."""
    step = period / limit
    admitted = conn.execute(
        "insert into public.user_rate_limits as r (user_id, action, tat)"
        " values (%(user)s, %(action)s, now() + %(step)s)"
        " on conflict (user_id, action) do update set tat = greatest(r.tat, now()) + %(step)s"
        "  where greatest(r.tat, now()) + %(step)s <= now() + %(period)s"
        " returning tat",
        {"user": user_id, "action": action, "step": step, "period": period},
    ).fetchone()
    if admitted is not None:
        return None
    row = conn.execute(
        "select extract(epoch from (tat + %s - %s - now()))::float8 as wait"
        "  from public.user_rate_limits where user_id = %s and action = %s",
        (step, period, user_id, action),
    ).fetchone()
    return max(0.0, float(row["wait"])) if row else 0.0


@dataclass(frozen=True)
class Admission:
    """What begin_operation decided: a slot's id, or why not (the slots in flight, the rate's wait)."""

    operation_id: str | None
    in_flight: int
    rate_wait: float | None


def begin_operation(conn: Conn, user_id: str, *, concurrency: int, lease: timedelta,
                    rate: tuple[str, int, timedelta] | None = None,
                    then_as: dict[str, str] | None = None) -> Admission:
    """Take one of the user's request slots and, for rate = (action, limit, period), count one call
    against that rate; nothing is taken when either refuses. One statement (the migration's
    public.begin_user_operation, under the user's lock).

    then_as (db.as_caller_params): the same statement then sets the transaction's role and JWT claims
    (db.AS_CALLER, as db.act_as does), after the function has run as the role the transaction had.
    """
    action, limit, period = rate if rate is not None else (None, None, None)
    # A function in FROM runs to its end before the select list is evaluated, once for its one row.
    row = conn.execute(
        "select operation_id, in_flight, rate_wait" + (", " + AS_CALLER if then_as else "")
        + " from public.begin_user_operation(%(user)s, %(concurrency)s, %(lease)s, %(action)s, %(limit)s,"
        " %(period)s)",
        {"user": user_id, "concurrency": concurrency, "lease": lease, "action": action, "limit": limit,
         "period": period, **(then_as or {})},
    ).fetchone()
    assert row is not None
    return Admission(operation_id=str(row["operation_id"]) if row["operation_id"] else None,
                     in_flight=int(row["in_flight"]), rate_wait=row["rate_wait"])


def end_operation(conn: Conn, operation_id: str) -> None:
    conn.execute("delete from public.user_operations where id = %s", (operation_id,))


def admin_token_generation(conn: Conn) -> int:
    row = conn.execute("select generation from public.admin_token_generation").fetchone()
    return int(row["generation"]) if row else 1


def next_admin_token_generation(conn: Conn) -> int:
    row = conn.execute(
        "update public.admin_token_generation set generation = generation + 1, revoked_at = now()"
        " returning generation"
    ).fetchone()
    assert row is not None
    return int(row["generation"])
