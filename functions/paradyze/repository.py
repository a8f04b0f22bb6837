"""All SQL, parameterised. Functions take a connection and never commit: services own transactions."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, class_row
from psycopg.types.json import Jsonb

from .agents import Agent, AgentChange, Status
from .db import Conn

# An agent row as the services see it: with its character's current version and that version's semver.
_CURRENT = """c.current_version,
           (select v.semver from public.character_versions v
             where v.character_id = c.id and v.version = c.current_version) as current_semver"""
CURRENT_VERSION = _CURRENT  # for statements elsewhere that return agent rows
_AGENT_SELECT = f"""
    select a.*, {_CURRENT}
      from public.agents a join public.characters c on c.id = a.character_id
"""


def insert_character_with_id(conn: Conn, character_id: str, user_id: str, name: str) -> None:
    conn.execute(
        "insert into public.characters (id, user_id, name) values (%s, %s, %s)", (character_id, user_id, name)
    )


def next_version(conn: Conn, character_id: str) -> int:
    """Locks the character and returns the version number a new version gets: one past the newest,
    which is not the current one after a rollback."""
    conn.execute("select 1 from public.characters where id = %s for update", (character_id,))
    row = conn.execute(
        "select coalesce(max(version), 0) + 1 as next from public.character_versions where character_id = %s",
        (character_id,),
    ).fetchone()
    assert row is not None
    return int(row["next"])


def insert_version(conn: Conn, *, character_id: str, version: int, user_id: str,
                   config: dict[str, Any], sha256: str, storage_uri: str, change: str | None = None) -> str:
    """change: major, minor or patch as the user named it; None lets the database infer it.
    Returns the version's semantic version."""
    row = conn.execute(
        "insert into public.character_versions (character_id, version, user_id, config, sha256, storage_uri,"
        " change) values (%s, %s, %s, %s, %s, %s, %s) returning semver",
        (character_id, version, user_id, Jsonb(config), sha256, storage_uri, change),
    ).fetchone()
    assert row is not None
    conn.execute(
        "update public.characters set current_version = %s, name = %s, updated_at = now() where id = %s",
        (version, config["name"], character_id),
    )
    return str(row["semver"])


def get_version(conn: Conn, character_id: str, version: int) -> DictRow | None:
    return conn.execute(
        "select * from public.character_versions where character_id = %s and version = %s",
        (character_id, version),
    ).fetchone()


def list_versions(conn: Conn, character_id: str, *, limit: int, after: int | None = None) -> list[DictRow]:
    """Versions oldest first, after version `after`; served by the primary key."""
    return conn.execute(
        "select * from public.character_versions where character_id = %s and version > %s"
        " order by version limit %s", (character_id, after or 0, limit),
    ).fetchall()


def all_versions(conn: Conn) -> list[DictRow]:
    return conn.execute(
        "select v.*, c.name from public.character_versions v join public.characters c on c.id = v.character_id"
        " order by v.character_id, v.version"
    ).fetchall()


def all_characters(conn: Conn) -> list[DictRow]:
    return conn.execute("select * from public.characters order by created_at").fetchall()


def put_secrets(conn: Conn, character_id: str, user_id: str, names: list[str],
                ciphertext: str) -> None:
    conn.execute(
        "insert into public.character_secrets (character_id, user_id, names, ciphertext) values (%s, %s, %s, %s)"
        " on conflict (character_id) do update"
        " set names = excluded.names, ciphertext = excluded.ciphertext, updated_at = now()",
        (character_id, user_id, names, ciphertext),
    )


def get_secrets(conn: Conn, character_id: str) -> DictRow | None:
    return conn.execute(
        "select * from public.character_secrets where character_id = %s", (character_id,)
    ).fetchone()


def all_secrets(conn: Conn) -> list[DictRow]:
    return conn.execute("select * from public.character_secrets").fetchall()


def insert_agent(conn: Conn, *, user_id: str, character_id: str, name: str, runtime: str,
                 idle_timeout_minutes: int, auto_hibernate: bool, idempotency_key: str | None,
                 request_sha256: str | None, agent_id: str | None = None, status: str = "provisioning",
                 desired_state: str = "running") -> Agent:
    agent = _agents(conn).execute(
        "with a as (insert into public.agents (id, user_id, character_id, name, runtime, status, desired_state,"
        " transition_started_at, idle_timeout_minutes, auto_hibernate, idempotency_key, request_sha256)"
        " values (coalesce(%s, gen_random_uuid()), %s, %s, %s, %s, %s, %s, now(), %s, %s, %s, %s) returning *)"
        f" select a.*, {_CURRENT} from a join public.characters c on c.id = a.character_id",
        (agent_id, user_id, character_id, name, runtime, status, desired_state, idle_timeout_minutes,
         auto_hibernate, idempotency_key, request_sha256),
    ).fetchone()
    assert agent is not None
    return agent


def _agents(conn: Conn) -> psycopg.Cursor[Agent]:
    return conn.cursor(row_factory=class_row(Agent))


def get_agent(conn: Conn, agent_id: str) -> Agent | None:
    return _agents(conn).execute(_AGENT_SELECT + " where a.id = %s", (agent_id,)).fetchone()


def find_by_idempotency_key(conn: Conn, user_id: str, key: str) -> Agent | None:
    return _agents(conn).execute(
        _AGENT_SELECT + " where a.user_id = %s and a.idempotency_key = %s", (user_id, key)
    ).fetchone()


def list_agents(conn: Conn, *, status: str | None = None, q: str | None = None, limit: int = 500,
                after: tuple[datetime, str] | None = None) -> list[Agent]:
    """Agents oldest first, after the (created_at, id) `after`. Served by agents_page_idx,
    agents_status_page_idx or (under a user's row-level security) agents_user_page_idx."""
    # current_version by a subquery, not a join: the page is then read in index order and stops at
    # `limit`, where a join may be planned from the characters side and sort every agent of the user.
    columns = sql.SQL("a.*, (select c.current_version from public.characters c where c.id = a.character_id)"
                      " as current_version")
    return _agents(conn).execute(*_agents_in_order(columns, status, q, limit, after,
                                                   sql.SQL("public.agents a"))).fetchall()


# A page of agents as AgentPublic reads them, with the owner's policy and schedules (a JSON array,
# unordered, next_run_at left to the caller; null for none, which needs no parsing), in one statement:
# no model of the whole stored row in between. The character by a lateral join, which the planner
# runs per agent in the index's order.
_PUBLIC_COLUMNS = sql.SQL("""a.id::text as id, a.user_id::text as owner, a.name, a.status, a.desired_state,
    a.status_reason, a.url, a.runtime, a.character_id::text as character_id,
    cv.current_version as character_version, cv.semver as character_semver,
    a.running_version, a.restart_count, a.message_count, a.last_activity_at, a.started_at, a.created_at,
    a.updated_at, a.idle_timeout_minutes, a.auto_hibernate,
    (select json_agg(s) from (select id, action, cron, timezone, enabled from public.agent_schedules
      where agent_id = a.id) s) as schedules""")
_PUBLIC_FROM = sql.SQL("""public.agents a cross join lateral (
    select c.current_version, (select v.semver from public.character_versions v
                                where v.character_id = c.id and v.version = c.current_version) as semver
      from public.characters c where c.id = a.character_id) cv""")


def list_public_agents(conn: Conn, *, status: str | None = None, q: str | None = None, limit: int = 50,
                       after: tuple[datetime, str] | None = None) -> list[DictRow]:
    """list_agents' page, each row with the columns AgentPublic has and the agent's schedules (None for none)."""
    return conn.execute(*_agents_in_order(_PUBLIC_COLUMNS, status, q, limit, after, _PUBLIC_FROM)).fetchall()


# An agent's name as words, as agents_name_words_idx indexes it (migration 20261129120000).
_NAME_WORDS = "to_tsvector('simple', regexp_replace(a.name, '[^[:alnum:]]+', ' ', 'g'))"


def _name_words(q: str) -> tuple[str | None, str | None]:
    """list_agents' `q` as a text-search query (every word of it begins a word of the name; None
    when it has none) and as an agent id (None unless it is one). A word is a run of letters and
    digits, so the query's text holds no operator or quote of the query language."""
    words = re.findall(r"[^\W_]+", q)
    try:
        agent_id = str(uuid.UUID(q.strip()))
    except ValueError:
        agent_id = None
    return (" & ".join(f"{word}:*" for word in words) or None), agent_id


def _agents_in_order(columns: sql.Composable, status: str | None, q: str | None, limit: int,
                     after: tuple[datetime, str] | None, tables: sql.Composable) -> tuple[sql.Composed, dict[str, Any]]:
    where: list[sql.Composable] = [sql.SQL("true")]
    if status is not None:
        where.append(sql.SQL("a.status = %(status)s"))
    words, agent_id = _name_words(q) if q is not None else (None, None)
    if q is not None:
        # Served by agents_name_words_idx (the same expression) and, for an id, the primary key.
        where.append(sql.SQL("({})").format(sql.SQL(" or ").join([
            *([sql.SQL(_NAME_WORDS + " @@ to_tsquery('simple', %(words)s)")] if words else []),
            *([sql.SQL("a.id = %(agent_id)s::uuid")] if agent_id else []),
        ] or [sql.SQL("false")])))
    if after is not None:
        where.append(sql.SQL("(a.created_at, a.id) > (%(after_at)s, %(after_id)s::uuid)"))
    query = sql.SQL("select {} from {} where {} order by a.created_at, a.id limit %(limit)s").format(
        columns, tables, sql.SQL(" and ").join(where))
    return query, {"status": status, "words": words, "agent_id": agent_id, "limit": limit,
                   "after_at": after[0] if after else None, "after_id": after[1] if after else None}


def update_agent(conn: Conn, agent_id: str, change: AgentChange, *, status: Status | None = None) -> Agent:
    """Write the change (and the status, when given); returns the row as it is now, without reading it again."""
    columns = change.columns() | ({"status": status} if status is not None else {})
    # Names come from AgentChange's fields, never from a request; values are parameters.
    assignments = [sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in columns]
    agent = _agents(conn).execute(
        sql.SQL("update public.agents a set {} from public.characters c"
                " where a.id = {} and c.id = a.character_id returning a.*, " + _CURRENT).format(
            sql.SQL(", ").join([*assignments, sql.SQL("updated_at = now()")]), sql.Placeholder("agent_id")),
        {**columns, "agent_id": agent_id},
    ).fetchone()
    assert agent is not None
    return agent


def record_activity(conn: Conn, agent_id: str, at: datetime) -> None:
    """Activity the agent reports itself (a heartbeat): it only ever moves last_activity_at forward."""
    conn.execute(
        "update public.agents set last_activity_at = greatest(last_activity_at, %s) where id = %s", (at, agent_id)
    )


def delete_character(conn: Conn, character_id: str) -> None:
    """Deletes the character with its versions, secrets, agents and schedules (cascade)."""
    conn.execute("delete from public.characters where id = %s", (character_id,))


def insert_event(conn: Conn, *, agent_id: str, user_id: str, from_status: str | None,
                 to_status: str | None, actor: str, reason: str, duration_ms: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
    conn.execute(
        "insert into public.agent_events (agent_id, user_id, from_status, to_status, actor, reason,"
        " duration_ms, details) values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (agent_id, user_id, from_status, to_status, actor, reason, duration_ms, Jsonb(details or {})),
    )


def list_events(conn: Conn, agent_id: str | None, limit: int,
                before: tuple[datetime, int] | None = None) -> list[DictRow]:
    """Events newest first, before the (at, id) `before`; served by agent_events_agent_page_idx or
    agent_events_page_idx."""
    where = [sql.SQL("true")]
    if agent_id is not None:
        where.append(sql.SQL("agent_id = %(agent_id)s"))
    if before is not None:
        where.append(sql.SQL("(at, id) < (%(before_at)s, %(before_id)s)"))
    query = sql.SQL("select * from public.agent_events where {} order by at desc, id desc limit %(limit)s").format(
        sql.SQL(" and ").join(where))
    return conn.execute(query, {"agent_id": agent_id, "limit": limit, "before_at": before[0] if before else None,
                                "before_id": before[1] if before else None}).fetchall()


def stuck_agents(conn: Conn, older_than: datetime) -> list[Agent]:
    return _agents(conn).execute(
        _AGENT_SELECT + " where a.status in ('provisioning', 'hibernating', 'waking', 'deleting')"
        " and a.transition_started_at < %s",
        (older_than,),
    ).fetchall()


def list_schedules(conn: Conn, agent_ids: list[str]) -> list[DictRow]:
    return conn.execute(
        "select * from public.agent_schedules where agent_id = any(%s::uuid[]) order by agent_id, action",
        (agent_ids,),
    ).fetchall()


def all_schedules(conn: Conn) -> list[DictRow]:
    return conn.execute("select * from public.agent_schedules order by agent_id, action").fetchall()


def replace_schedules(conn: Conn, agent_id: str, user_id: str,
                      schedules: list[dict[str, Any]]) -> None:
    conn.execute("delete from public.agent_schedules where agent_id = %s", (agent_id,))
    for s in schedules:
        conn.execute(
            "insert into public.agent_schedules (agent_id, user_id, action, cron, timezone, enabled)"
            " values (%s, %s, %s, %s, %s, %s)",
            (agent_id, user_id, s["action"], s["cron"], s["timezone"], s["enabled"]),
        )


def insert_backup(conn: Conn, *, location: str, sha256: str, size_bytes: int, characters: int,
                  versions: int, agents: int, manifest: dict[str, Any], created_by: str) -> DictRow:
    row = conn.execute(
        "insert into public.backups (location, sha256, size_bytes, characters, versions, agents, manifest,"
        " created_by) values (%s, %s, %s, %s, %s, %s, %s, %s) returning *",
        (location, sha256, size_bytes, characters, versions, agents, Jsonb(manifest), created_by),
    ).fetchone()
    assert row is not None
    return row


def list_backups(conn: Conn, *, limit: int, before: tuple[datetime, str] | None = None) -> list[DictRow]:
    """Backups newest first, before the (created_at, id) `before`; served by backups_page_idx."""
    keyset = sql.SQL(" where (created_at, id) < (%(before_at)s, %(before_id)s::uuid)" if before else "")
    return conn.execute(
        sql.SQL("select id, location, sha256, size_bytes, characters, versions, agents, created_by, created_at"
                " from public.backups{} order by created_at desc, id desc limit %(limit)s").format(keyset),
        {"limit": limit, "before_at": before[0] if before else None, "before_id": before[1] if before else None},
    ).fetchall()


def get_backup(conn: Conn, backup_id: str) -> DictRow | None:
    return conn.execute("select * from public.backups where id = %s", (backup_id,)).fetchone()
