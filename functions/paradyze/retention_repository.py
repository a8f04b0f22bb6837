"""The SQL of retention: events pruned oldest first in batches, expired backups. Parameterised;
services own the transactions."""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import DictRow

from .db import Conn


def allow_event_pruning(conn: Conn) -> None:
    """agent_events is append-only (a trigger) except in a transaction that says it prunes."""
    conn.execute("select set_config('paradyze.retention', 'on', true)")


def delete_events_before(conn: Conn, cutoff: datetime, batch: int) -> int:
    """Deletes up to `batch` of the oldest events older than cutoff; served by agent_events_page_idx."""
    cur = conn.execute(
        "delete from public.agent_events where id in ("
        " select id from public.agent_events where at < %s order by at, id limit %s)",
        (cutoff, batch),
    )
    return cur.rowcount


def agents_with_events_since(conn: Conn, since: datetime) -> list[str]:
    """Agents with an event after `since`: only they can have gone past the count since the last sweep."""
    rows = conn.execute(
        "select distinct agent_id from public.agent_events where at > %s order by agent_id", (since,)
    ).fetchall()
    return [str(r["agent_id"]) for r in rows]


def delete_events_past_count(conn: Conn, agent_ids: list[str], keep: int, batch: int) -> int:
    """Deletes up to `batch` events of these agents beyond each one's `keep` newest, oldest first;
    served by agent_events_agent_page_idx."""
    cur = conn.execute(
        "delete from public.agent_events where id in ("
        " select old.id from unnest(%(agents)s::uuid[]) as a(id)"
        " cross join lateral (select at, id from public.agent_events where agent_id = a.id"
        "                     order by at desc, id desc offset %(keep)s limit 1) edge"
        " cross join lateral (select id from public.agent_events where agent_id = a.id"
        "                     and (at, id) <= (edge.at, edge.id) order by at, id limit %(batch)s) old"
        " limit %(batch)s)",
        {"agents": agent_ids, "keep": keep, "batch": batch},
    )
    return cur.rowcount


def expired_backups(conn: Conn, keep: int, older_than: datetime) -> list[DictRow]:
    """Backups past the `keep` newest that are also older than `older_than`, oldest first."""
    return conn.execute(
        "select id, location, created_at from ("
        " select id, location, created_at from public.backups order by created_at desc, id desc offset %s) past"
        " where created_at < %s order by created_at, id",
        (keep, older_than),
    ).fetchall()


def delete_backup(conn: Conn, backup_id: str) -> bool:
    return conn.execute("delete from public.backups where id = %s returning id", (backup_id,)).fetchone() is not None
