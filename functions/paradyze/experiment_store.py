"""The experiments table, and the end of an experiment whose request died (its test agents deleted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from .db import Conn

Row = dict[str, Any]
# A request runs for an hour at most (Cloud Run functions' limit): one still running past that died.
ABANDONED_AFTER = timedelta(hours=1)


def insert(conn: Conn, *, user_id: str, name: str, base: dict[str, Any], variants: dict[str, Any],
           test_cases: list[dict[str, Any]], actor: str) -> Row:
    row = conn.execute(
        "insert into public.experiments (user_id, name, status, base, variants, test_cases, actor)"
        " values (%s, %s, 'running', %s, %s, %s, %s) returning *",
        (user_id, name, Jsonb(base), Jsonb(variants), Jsonb(test_cases), actor),
    ).fetchone()
    assert row is not None
    return row


def add_agent(conn: Conn, experiment_id: str, agent_id: str) -> None:
    conn.execute("update public.experiments set agent_ids = agent_ids || %s::uuid where id = %s",
                 (agent_id, experiment_id))


def finish(conn: Conn, experiment_id: str, *, results: list[dict[str, Any]], best: str | None,
           error: str | None) -> Row:
    row = conn.execute(
        "update public.experiments set status = %s, results = %s, best = %s, error = %s, finished_at = now()"
        " where id = %s returning *",
        ("failed" if error else "done", Jsonb(results), best, error, experiment_id),
    ).fetchone()
    assert row is not None
    return row


def get(conn: Conn, experiment_id: str) -> Row | None:
    return conn.execute("select * from public.experiments where id = %s", (experiment_id,)).fetchone()


def list_recent(conn: Conn, limit: int) -> list[Row]:
    return conn.execute("select * from public.experiments order by created_at desc limit %s", (limit,)).fetchall()


def abandoned(conn: Conn, now: datetime | None = None) -> list[Row]:
    return conn.execute(
        "select * from public.experiments where status = 'running' and created_at < %s",
        ((now or datetime.now(UTC)) - ABANDONED_AFTER,),
    ).fetchall()
