"""The Data API attacks of issue 9 (#3), made through SQL exactly as PostgREST makes them, each refused.

Supabase serves every table in public through PostgREST: a request with the anon key runs as `anon`,
one with a user's JWT as `authenticated` with the claims in request.jwt.claims. The session database
was bootstrapped with Supabase's own default privileges, so what is refused here is refused there.
"""

from __future__ import annotations

from typing import Any

import pytest
from as_postgrest import Tenant, act_as, attempt, refused

TABLES = ["characters", "character_versions", "character_secrets", "agents", "agent_events",
          "agent_schedules", "backups"]


def test_a_user_reads_and_renames_their_own_agent_and_sees_nothing_of_another(
        conn: Any, alice_rows: Tenant, bob_rows: Tenant) -> None:
    # The baseline the refusals below are measured against: the role works, RLS scopes it.
    with attempt(conn):
        act_as(conn, "authenticated", alice_rows.user_id)
        agents = conn.execute("select id from public.agents").fetchall()
        assert [str(a["id"]) for a in agents] == [alice_rows.agent_id]
        renamed = conn.execute("update public.agents set name = 'mine', idle_timeout_minutes = 5,"
                               " auto_hibernate = false where id = %s returning id", (alice_rows.agent_id,))
        assert renamed.rowcount == 1
        assert conn.execute("update public.agents set name = 'yours' where id = %s",
                            (bob_rows.agent_id,)).rowcount == 0
        for table in ("characters", "character_versions", "agent_events", "agent_schedules"):
            users = {str(r["user_id"]) for r in conn.execute(f"select user_id from public.{table}")}
            assert users == {alice_rows.user_id}, table


def test_pointing_my_agent_at_another_users_character_is_refused(
        conn: Any, alice_rows: Tenant, bob_rows: Tenant) -> None:
    message = refused(conn, "authenticated", alice_rows.user_id,
                      "update public.agents set character_id = %s where id = %s",
                      (bob_rows.character_id, alice_rows.agent_id))
    assert "permission denied" in message


def test_the_agent_policy_alone_refuses_another_users_character(
        conn: Any, alice_rows: Tenant, bob_rows: Tenant) -> None:
    # Defence in depth: were character_id ever granted, the policy still checks whose character it is.
    conn.execute("grant update (character_id) on public.agents to authenticated")
    message = refused(conn, "authenticated", alice_rows.user_id,
                      "update public.agents set character_id = %s where id = %s",
                      (bob_rows.character_id, alice_rows.agent_id))
    assert "row-level security" in message


@pytest.mark.parametrize(("column", "value"), [
    ("status", "running"), ("desired_state", "deleted"), ("url", "http://169.254.169.254/"),
    ("runtime_handle", "pid:1"), ("running_version", "1"), ("restart_count", "0"), ("user_id", None),
])
def test_platform_owned_agent_columns_are_refused(
        conn: Any, alice_rows: Tenant, bob_rows: Tenant, column: str, value: str | None) -> None:
    refused(conn, "authenticated", alice_rows.user_id,
            f"update public.agents set {column} = %s where id = %s",
            (value if value is not None else bob_rows.user_id, alice_rows.agent_id))


def test_inserting_an_agent_that_is_already_running_is_refused(conn: Any, alice_rows: Tenant) -> None:
    refused(conn, "authenticated", alice_rows.user_id,
            "insert into public.agents (user_id, character_id, name, runtime, status, url)"
            " values (%s, %s, 'x', 'process', 'running', 'http://127.0.0.1:9')",
            (alice_rows.user_id, alice_rows.character_id))
    # Nor may a user insert a row for the sweep to start: agents are created through the platform.
    refused(conn, "authenticated", alice_rows.user_id,
            "insert into public.agents (user_id, character_id, name, runtime) values (%s, %s, 'x', 'process')",
            (alice_rows.user_id, alice_rows.character_id))


def test_writing_a_secret_for_another_users_character_is_refused(
        conn: Any, alice_rows: Tenant, bob_rows: Tenant) -> None:
    refused(conn, "authenticated", alice_rows.user_id,
            "insert into public.character_secrets (character_id, user_id, ciphertext) values (%s, %s, 'x')",
            (bob_rows.character_id, alice_rows.user_id))
    refused(conn, "authenticated", alice_rows.user_id,
            "insert into public.character_secrets (character_id, user_id, ciphertext) values (%s, %s, 'x')",
            (bob_rows.character_id, bob_rows.user_id))
    refused(conn, "authenticated", alice_rows.user_id, "select ciphertext from public.character_secrets")


def test_schedules_on_another_users_agent_are_refused(
        conn: Any, alice_rows: Tenant, bob_rows: Tenant) -> None:
    for owner in (alice_rows.user_id, bob_rows.user_id):
        refused(conn, "authenticated", alice_rows.user_id,
                "insert into public.agent_schedules (agent_id, user_id, action, cron)"
                " values (%s, %s, 'hibernate', '* * * * *')",
                (bob_rows.agent_id, owner))
    refused(conn, "authenticated", alice_rows.user_id,
            "update public.agent_schedules set cron = '* * * * *' where agent_id = %s", (bob_rows.agent_id,))
    refused(conn, "authenticated", alice_rows.user_id,
            "delete from public.agent_schedules where agent_id = %s", (bob_rows.agent_id,))


def test_events_on_any_agent_and_as_system_are_refused(
        conn: Any, alice_rows: Tenant, bob_rows: Tenant) -> None:
    for agent in (alice_rows, bob_rows):
        refused(conn, "authenticated", alice_rows.user_id,
                "insert into public.agent_events (agent_id, user_id, actor, reason, to_status)"
                " values (%s, %s, 'system', 'crashed', 'error')", (agent.agent_id, agent.user_id))
    refused(conn, "authenticated", alice_rows.user_id, "select nextval('public.agent_events_id_seq')")


def test_setting_current_version_is_refused(conn: Any, alice_rows: Tenant) -> None:
    refused(conn, "authenticated", alice_rows.user_id,
            "update public.characters set current_version = 7 where id = %s", (alice_rows.character_id,))


def test_inserting_a_version_that_points_at_any_file_is_refused(conn: Any, alice_rows: Tenant) -> None:
    refused(conn, "authenticated", alice_rows.user_id,
            "insert into public.character_versions (character_id, version, user_id, config, sha256, storage_uri)"
            " values (%s, 2, %s, '{}', repeat('0', 64), 'file:///etc/passwd')",
            (alice_rows.character_id, alice_rows.user_id))


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize("table", TABLES)
def test_truncate_is_refused(conn: Any, alice_rows: Tenant, role: str, table: str) -> None:
    refused(conn, role, alice_rows.user_id if role == "authenticated" else None, f"truncate public.{table} cascade")


@pytest.mark.parametrize("table", TABLES)
def test_anon_cannot_read_any_table(conn: Any, table: str) -> None:
    # A privilege error, not 0 rows: the table is not served to anon at all.
    message = refused(conn, "anon", None, f"select * from public.{table}")
    assert f"permission denied for table {table}" in message


@pytest.mark.parametrize("table", TABLES)
def test_anon_cannot_write_any_table(conn: Any, table: str) -> None:
    refused(conn, "anon", None, f"delete from public.{table}")


def test_a_user_cannot_delete_rows_the_platform_keeps(conn: Any, alice_rows: Tenant) -> None:
    # Deleting a character or an agent row would orphan its running compute; delete goes through the platform.
    for table, key in (("agents", alice_rows.agent_id), ("characters", alice_rows.character_id)):
        refused(conn, "authenticated", alice_rows.user_id, f"delete from public.{table} where id = %s", (key,))
    refused(conn, "authenticated", alice_rows.user_id,
            "delete from public.agent_events where agent_id = %s", (alice_rows.agent_id,))


def test_backups_are_the_platforms_alone(conn: Any, alice_rows: Tenant) -> None:
    refused(conn, "authenticated", alice_rows.user_id, "select * from public.backups")
    with attempt(conn):
        act_as(conn, "service_role")
        conn.execute("select count(*) from public.backups")
