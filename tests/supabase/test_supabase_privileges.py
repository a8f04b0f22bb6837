"""The schema as Supabase serves it: the bootstrap's default privileges, what our migration leaves to
the API roles, and Supabase's own linter (splinter) finding nothing.

The lint queries in splinter/ are copied unchanged from github.com/supabase/splinter (lints/*.sql at
55db5b1f28e58d816f7d9136eed87eabcd95868d): the SECURITY lints that apply to a project's own schema,
and the two RLS performance lints. Lints about Supabase-only schemas (auth.users, storage buckets,
pg_graphql, queues, extension versions) need those schemas and are left out.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from paradyze import db, migrations
from paradyze.settings import get_settings

LINTS = sorted((Path(__file__).parent / "splinter").glob("*.sql"))
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
USER_READS = {"characters", "character_versions", "agents", "agent_events", "agent_schedules", "agent_releases",
              "experiments"}
USER_UPDATES = {"agents": {"name", "idle_timeout_minutes", "auto_hibernate"}}


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the session's server (roles are the cluster's; schemas are its own)."""
    url = db.database_url(get_settings())
    name = f"bootstrap_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"create database {name}")
    try:
        yield make_conninfo(**{**conninfo_to_dict(url), "dbname": name})
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"drop database {name} with (force)")


def privileges(conn: Any, role: str, table: str) -> set[str]:
    return {p for p in PRIVILEGES
            if conn.execute("select has_table_privilege(%s, %s, %s) as ok", (role, f"public.{table}", p))
            .fetchone()["ok"]}


def test_the_bootstrap_gives_a_plain_postgres_supabases_default_privileges() -> None:
    with fresh_database() as url, psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(migrations.BOOTSTRAP_SQL.read_text())
        conn.execute(migrations.BOOTSTRAP_SQL.read_text())  # and running it again changes nothing
        conn.execute("create table public.made_later (id int)")
        conn.execute("create function public.made_later_fn() returns int language sql as 'select 1'")
        # As on Supabase before a project revokes anything: a new table is open to anon, TRUNCATE included.
        for role in ("anon", "authenticated", "service_role"):
            assert privileges(conn, role, "made_later") == set(PRIVILEGES), role
            assert conn.execute("select has_function_privilege(%s, 'public.made_later_fn()', 'execute') as ok",
                                (role,)).fetchone()["ok"]
        roles = {r["rolname"]: r for r in conn.execute(
            "select rolname, rolcanlogin, rolbypassrls, rolinherit from pg_roles"
            " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')")}
        assert {n: (r["rolcanlogin"], r["rolbypassrls"]) for n, r in roles.items()} == {
            "anon": (False, False), "authenticated": (False, False), "service_role": (False, True),
            "authenticator": (False, False)}
        members = {r["role"] for r in conn.execute(
            "select r.rolname as role from pg_auth_members m join pg_roles r on r.oid = m.roleid"
            " join pg_roles u on u.oid = m.member where u.rolname = 'authenticator'")}
        assert {"anon", "authenticated", "service_role"} <= members


def test_after_the_migrations_objects_made_later_start_revoked() -> None:
    with fresh_database() as url:
        target: ConnectionPool[Any] = ConnectionPool(url, kwargs={"autocommit": True, "row_factory": dict_row},
                                                     min_size=1, max_size=1, open=True)
        try:
            assert len(migrations.migrate(target)) == len(migrations.migrations())
            with target.connection() as conn:
                conn.execute("create table public.made_later (id int)")
                conn.execute("create function public.made_later_fn() returns int language sql as 'select 1'")
                for role in ("anon", "authenticated"):
                    assert privileges(conn, role, "made_later") == set(), role
                    assert not conn.execute(
                        "select has_function_privilege(%s, 'public.made_later_fn()', 'execute') as ok",
                        (role,)).fetchone()["ok"]
        finally:
            target.close()


def test_the_api_roles_hold_only_what_users_may_do(conn: Any) -> None:
    tables = [r["relname"] for r in conn.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'")]
    assert USER_READS < set(tables)
    for table in tables:
        assert privileges(conn, "anon", table) == set(), table
        assert privileges(conn, "authenticated", table) == ({"SELECT"} if table in USER_READS else set()), table
        updatable = {r["attname"] for r in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
            " and has_column_privilege('authenticated', attrelid, attnum, 'UPDATE')", (f"public.{table}",))}
        assert updatable == USER_UPDATES.get(table, set()), table
        assert "TRUNCATE" not in privileges(conn, "service_role", table)
    callable_by_users = conn.execute(
        "select p.oid::regprocedure::text as fn from pg_proc p where p.pronamespace = 'public'::regnamespace"
        " and (has_function_privilege('anon', p.oid, 'execute')"
        " or has_function_privilege('authenticated', p.oid, 'execute'))").fetchall()
    assert callable_by_users == []
    sequences = conn.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'S'"
        " and (has_sequence_privilege('anon', oid, 'usage') or has_sequence_privilege('authenticated', oid, 'usage'))"
    ).fetchall()
    assert sequences == []


@pytest.mark.parametrize("lint", LINTS, ids=[p.stem for p in LINTS])
def test_splinter_finds_nothing(conn: Any, lint: Path) -> None:
    text = lint.read_text()
    query = text[text.index(" as\n") + len(" as\n"):].strip().rstrip(";")
    # As splinter runs: an empty search_path, and PostgREST's exposed schemas as Supabase sets them.
    conn.execute("set local search_path = ''")
    conn.execute("select set_config('pgrst.db_schemas', 'public, graphql_public', true)")
    found = conn.execute(query).fetchall()
    assert found == [], [f["detail"] for f in found]


def test_two_migrations_cannot_share_a_version(tmp_path: Path) -> None:
    # The version is what a database records as applied: a second file with it would never run
    # where the first had (and fails the recording insert where neither had).
    for name in ("20260101000000_one.sql", "20260101000000_two.sql"):
        (tmp_path / name).write_text("select 1;")
    with pytest.raises(ValueError, match="share the version 20260101000000"):
        migrations.migrations(tmp_path)
