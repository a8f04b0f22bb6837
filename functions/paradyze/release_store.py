"""The releases table, and the end of a release a crash or the grace period left open.

A release records each step before it takes the next (releases.py). Whatever is left open is
closed here, under the agent's lock, by reconcile (at start, health check) and the sweep:
`starting` or `testing` means green never served, so green is stopped and blue serves; `switched`
past its grace period means green serves, so blue is stopped. Either way one instance serves, and
the record says which.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from . import db, repository
from .agents import Agent
from .auth import SYSTEM
from .db import Conn
from .runtimes import get_runtime
from .settings import get_settings

Row = dict[str, Any]
OPEN = ("starting", "testing", "switched")
_COLUMNS = frozenset({"status", "serving", "reason", "green_instance", "green_handle", "green_url", "smoke",
                      "keep_until", "finished_at"})


def insert(conn: Conn, *, agent_id: str, user_id: str, kind: str, from_version: int | None, to_version: int,
           status: str, serving: str, grace_seconds: int, actor: str, reason: str | None = None,
           blue_instance: str | None = None, blue_handle: str | None = None, blue_url: str | None = None,
           green_instance: str | None = None) -> Row:
    row = conn.execute(
        "insert into public.agent_releases (agent_id, user_id, kind, from_version, to_version, status, serving,"
        " grace_seconds, actor, reason, blue_instance, blue_handle, blue_url, green_instance,"
        " finished_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " case when %s in ('done', 'failed', 'rolled_back') then now() end) returning *",
        (agent_id, user_id, kind, from_version, to_version, status, serving, grace_seconds, actor, reason,
         blue_instance, blue_handle, blue_url, green_instance, status),
    ).fetchone()
    assert row is not None
    return row


def update(conn: Conn, release_id: str, **fields: Any) -> Row:
    unknown = set(fields) - _COLUMNS
    if unknown:
        raise ValueError(f"not release columns: {sorted(unknown)}")
    if "smoke" in fields:
        fields["smoke"] = Jsonb(fields["smoke"])
    if fields.get("status") in ("done", "failed", "rolled_back"):
        fields["finished_at"] = datetime.now(UTC)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in fields)
    row = conn.execute(
        sql.SQL("update public.agent_releases set {}, updated_at = now() where id = {} returning *").format(
            assignments, sql.Placeholder("release_id")),
        {**fields, "release_id": release_id},
    ).fetchone()
    assert row is not None
    return row


def open_release(conn: Conn, agent_id: str) -> Row | None:
    return conn.execute(
        "select * from public.agent_releases where agent_id = %s and status = any(%s)", (agent_id, list(OPEN))
    ).fetchone()


def get(conn: Conn, release_id: str) -> Row | None:
    return conn.execute("select * from public.agent_releases where id = %s", (release_id,)).fetchone()


def list_for(conn: Conn, agent_id: str, limit: int) -> list[Row]:
    return conn.execute(
        "select * from public.agent_releases where agent_id = %s order by created_at desc limit %s",
        (agent_id, limit),
    ).fetchall()


def record(conn: Conn, release: Row, reason: str, *, actor: str | None = None) -> None:
    """One line in the agent's events for a step of a release."""
    repository.insert_event(conn, agent_id=str(release["agent_id"]), user_id=str(release["user_id"]),
                            from_status=None, to_status=None, actor=actor or release["actor"], reason=reason,
                            details={"release_id": str(release["id"]), "to_version": release["to_version"]})


def is_kept(agent_id: str, url: str) -> bool:
    """Whether url is a blue instance kept for its grace period (reconcile must leave it running)."""
    with db.transaction(SYSTEM) as conn:
        release = open_release(conn, agent_id)
    return release is not None and release["status"] == "switched" and release["blue_url"] == url


def finish(agent_id: str, *, actor: str, now: datetime | None = None, end_grace: bool = False) -> Row | None:
    """Close the agent's open release if it is interrupted or its grace period is over (or
    end_grace: a new release begins); the caller holds the agent's lock. Returns the release as
    it ends, or None when none is open."""
    with db.transaction(SYSTEM) as conn:
        release = open_release(conn, agent_id)
        agent = repository.get_agent(conn, agent_id) if release is not None else None
    if release is None or agent is None:
        return None
    runtime = get_runtime(agent.runtime)
    grace = get_settings().agent_stop_grace
    if release["status"] in ("starting", "testing"):
        if release["green_handle"]:
            runtime.stop(release["green_handle"], grace=grace)
        else:  # launched, perhaps, before its handle was recorded: find it by its identity
            for inst in runtime.list_owned():
                if inst.agent_id == str(release["green_instance"]):
                    runtime.stop(inst.handle, grace=grace)
        return _close(release, "rolled_back", "blue", actor,
                      f"interrupted while {release['status']}: green was stopped, blue kept serving")
    if end_grace or release["keep_until"] <= (now or datetime.now(UTC)):
        db.drain_messages(agent_id)  # blue's among them, before blue stops
        if release["blue_handle"]:
            runtime.stop(release["blue_handle"], grace=grace)
        return _close(release, "done", "green", actor, "grace period over: blue stopped, green serving")
    return release


def stop_kept(agent: Agent, *, actor: str = "platform") -> None:
    """Stop a blue instance kept for its grace period, because the agent stops (hibernate, restart,
    delete); the caller holds the agent's lock."""
    with db.transaction(SYSTEM) as conn:
        release = open_release(conn, agent.id)
    if release is None or release["status"] != "switched":
        return
    if release["blue_handle"]:
        get_runtime(agent.runtime).stop(release["blue_handle"], grace=get_settings().agent_stop_grace)
    _close(release, "done", "green", actor, "blue stopped before its grace period ended: the agent stopped")


def finish_due(*, actor: str, stuck_after: timedelta = timedelta(minutes=5)) -> list[str]:
    """The sweep: close releases past their grace period, and releases stuck in a step (their
    request died). Returns their ids."""
    now = datetime.now(UTC)
    with db.transaction(SYSTEM) as conn:
        rows = conn.execute(
            "select id, agent_id from public.agent_releases where (status = 'switched' and keep_until <= %s)"
            " or (status in ('starting', 'testing') and updated_at < %s)", (now, now - stuck_after),
        ).fetchall()
    for row in rows:
        with db.agent_lock(str(row["agent_id"])):
            finish(str(row["agent_id"]), actor=actor, now=now)
    return [str(r["id"]) for r in rows]


def set_current(conn: Conn, character_id: str, version: int) -> None:
    """The version the agent runs from its next start (versions themselves never change)."""
    conn.execute("update public.characters set current_version = %s, updated_at = now() where id = %s",
                 (version, character_id))


def set_instance(conn: Conn, agent_id: str, instance_id: str) -> None:
    """Which runtime identity serves the agent (slots.py); null for the agent's own."""
    conn.execute("update public.agents set instance_id = %s where id = %s",
                 (None if instance_id == agent_id else instance_id, agent_id))


def _close(release: Row, status: str, serving: str, actor: str, reason: str) -> Row:
    with db.transaction(SYSTEM) as conn:
        closed = update(conn, str(release["id"]), status=status, serving=serving, reason=reason)
        record(conn, closed, f"release {status}: {reason}", actor=actor)
    return closed

