"""Acting on the database the way PostgREST does on Supabase: SET ROLE and request.jwt.claims."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb


@dataclass(frozen=True)
class Tenant:
    user_id: str
    character_id: str
    agent_id: str


def act_as(conn: Any, role: str, user_id: str | None = None) -> None:
    """What PostgREST runs at the start of each request's transaction."""
    claims: dict[str, Any] = {"role": role}
    if user_id:
        claims["sub"] = user_id
    conn.execute(f"set local role {role}")  # only the fixed names anon / authenticated reach here
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


@contextlib.contextmanager
def attempt(conn: Any) -> Iterator[None]:
    """One request, in a savepoint, so that a refused statement leaves the test's transaction usable.

    The role and claims set inside are undone with the savepoint."""
    with conn.transaction(force_rollback=True):
        yield


def refused(conn: Any, role: str, user_id: str | None, statement: str, params: tuple[Any, ...] = ()) -> str:
    """Run statement as role; return Postgres's refusal. Fails the test if the statement is allowed."""
    with attempt(conn):
        act_as(conn, role, user_id)
        try:
            conn.execute(statement, params)
        except psycopg.errors.InsufficientPrivilege as exc:
            return str(exc)
    pytest.fail(f"{role} was allowed: {statement}")


def seed_tenant(conn: Any, *, with_secret: bool = True) -> Tenant:
    """A user with one character (version 1), one running agent, a schedule, an event; written by the platform."""
    user_id, character_id, agent_id = (str(uuid.uuid4()) for _ in range(3))
    conn.execute("insert into public.characters (id, user_id, name, current_version) values (%s, %s, 'c', 1)",
                 (character_id, user_id))
    conn.execute(
        "insert into public.character_versions (character_id, version, user_id, config, sha256, storage_uri)"
        " values (%s, 1, %s, %s, %s, %s)",
        (character_id, user_id, Jsonb({"name": "c"}), "0" * 64, f"file:///state/{character_id}/1.json"),
    )
    if with_secret:
        conn.execute("insert into public.character_secrets (character_id, user_id, names, ciphertext)"
                     " values (%s, %s, '{K}', 'sealed')", (character_id, user_id))
    conn.execute(
        "insert into public.agents (id, user_id, character_id, name, runtime, status, url, runtime_handle)"
        " values (%s, %s, %s, 'a', 'process', 'running', 'http://127.0.0.1:1', 'pid:1')",
        (agent_id, user_id, character_id),
    )
    conn.execute("insert into public.agent_schedules (agent_id, user_id, action, cron)"
                 " values (%s, %s, 'wake', '0 9 * * *')", (agent_id, user_id))
    conn.execute("insert into public.agent_events (agent_id, user_id, actor, reason)"
                 " values (%s, %s, 'system', 'seeded')", (agent_id, user_id))
    return Tenant(user_id, character_id, agent_id)
