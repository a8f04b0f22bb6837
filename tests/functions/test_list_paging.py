"""Every list pages by cursor: no row skipped or repeated while rows are added between pages; a cursor
that was changed, cut or moved to another list is a 422 naming it; each page is an index scan."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg import sql

from helpers import Functions, User, make_user
from paradyze import db, repository
from paradyze.auth import SYSTEM


def _character(conn: Any, user: User, name: str) -> str:
    character_id = str(uuid.uuid4())
    repository.insert_character_with_id(conn, character_id, user.id, name)
    return character_id


def _agents(user: User, character_id: str, count: int, prefix: str) -> list[str]:
    """count hibernated agents, made in one transaction: they share created_at, so only the id breaks ties."""
    with db.transaction(SYSTEM) as conn:
        return [str(repository.insert_agent(
            conn, user_id=user.id, character_id=character_id, name=f"{prefix}-{i}", runtime="process",
            idle_timeout_minutes=60, auto_hibernate=True, idempotency_key=None, request_sha256=None,
            status="hibernated", desired_state="hibernated").id) for i in range(count)]


@pytest.fixture
def owner(database: None) -> Iterator[tuple[User, str]]:
    user = make_user()
    with db.transaction(SYSTEM) as conn:
        character_id = _character(conn, user, "paged")
        repository.insert_version(conn, character_id=character_id, version=1, user_id=user.id,
                                  config={"name": "paged", "bio": ["v1"]}, sha256="0" * 64, storage_uri="file:///x")
    yield user, character_id
    with db.transaction(SYSTEM) as conn:
        repository.delete_character(conn, character_id)


def _walk(functions: Functions, name: str, token: str, key: str, between: Any = None,
          **params: Any) -> list[dict[str, Any]]:
    """Every row of a list, page by page, calling between() after each page."""
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        resp = functions.get(name, token, **params, **({"cursor": cursor} if cursor else {}))
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        assert len(body[key]) <= params["limit"]
        seen.extend(body[key])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        if between:
            between()
    raise AssertionError("the list never ended")


def test_agents_page_through_with_agents_created_between_pages(functions: Functions, owner: tuple[User, str]) -> None:
    user, character_id = owner
    first = _agents(user, character_id, 7, "first")
    added: list[str] = []
    seen = _walk(functions, "list_agents", user.token, "agents", limit=3,
                 between=lambda: added.extend(_agents(user, character_id, 2, "later")))
    ids = [a["id"] for a in seen]
    assert len(ids) == len(set(ids)), "an agent was repeated"
    # Oldest first: every agent there was at the start, then every one added while paging.
    assert sorted(ids[:7]) == sorted(first)
    assert set(ids) == set(first) | set(added) and len(added) >= 4
    # Filtered lists page too, and their cursors stay with their filter.
    hibernated = _walk(functions, "list_agents", user.token, "agents", limit=4, status="hibernated", q="first")
    assert sorted(a["id"] for a in hibernated) == sorted(first)


def test_an_agent_in_a_page_reads_as_get_agent_shows_it(functions: Functions, owner: tuple[User, str]) -> None:
    user, character_id = owner
    with db.transaction(SYSTEM) as conn:
        repository.insert_version(conn, character_id=character_id, version=2, user_id=user.id,
                                  config={"name": "paged", "bio": ["v2"]}, sha256="1" * 64, storage_uri="file:///y",
                                  change="minor")
        conn.execute("update public.characters set current_version = 2 where id = %s", (character_id,))
    plain, scheduled = _agents(user, character_id, 2, "shown")
    with db.transaction(SYSTEM) as conn:
        repository.replace_schedules(conn, scheduled, user.id, [
            {"action": "wake", "cron": "0 8 * * *", "timezone": "America/New_York", "enabled": True},
            {"action": "hibernate", "cron": "0 0 * * *", "timezone": "UTC", "enabled": False}])
    page = {a["id"]: a for a in _walk(functions, "list_agents", user.token, "agents", limit=50)}
    for agent_id in (plain, scheduled):
        assert page[agent_id] == functions.get("get_agent", user.token, agent_id=agent_id).get_json()["agent"]
    shown = page[scheduled]
    assert (shown["character_version"], shown["character_semver"]) == (2, "1.1.0")
    assert [(s["action"], s["enabled"], s["next_run_at"] is not None) for s in shown["policy"]["schedules"]] == [
        ("hibernate", False, False), ("wake", True, True)]


def test_q_finds_agents_by_how_words_of_their_names_begin_or_by_id(functions: Functions,
                                                                   owner: tuple[User, str]) -> None:
    user, character_id = owner
    names = ["Trump Bot", "C-3PO", "eliza.os", "José Ñandú", "agent_007", "it's me", "Strumpet"]
    with db.transaction(SYSTEM) as conn:
        ids = {name: str(repository.insert_agent(
            conn, user_id=user.id, character_id=character_id, name=name, runtime="process", idle_timeout_minutes=60,
            auto_hibernate=True, idempotency_key=None, request_sha256=None, status="hibernated",
            desired_state="hibernated").id) for name in names}
    stranger = make_user()
    with db.transaction(SYSTEM) as conn:
        repository.insert_agent(conn, user_id=stranger.id, character_id=_character(conn, stranger, "theirs"),
                                name="Trump Bot", runtime="process", idle_timeout_minutes=60, auto_hibernate=True,
                                idempotency_key=None, request_sha256=None, status="hibernated",
                                desired_state="hibernated")

    def found(q: str) -> list[str]:
        return sorted(a["name"] for a in _walk(functions, "list_agents", user.token, "agents", limit=2, q=q))

    assert found("tru") == ["Trump Bot"]  # the start of a word, not any part ("Strumpet")
    assert found("BOT trump") == ["Trump Bot"]  # every word, in any order and case
    assert found("trump zed") == []
    assert found("3po") == found("c 3") == found("C-3PO") == ["C-3PO"]
    assert found("os") == found("eliza.os") == ["eliza.os"]
    assert found("ñan") == found("JOSÉ") == ["José Ñandú"]
    assert found("007") == ["agent_007"]
    assert found("it's") == ["it's me"]
    assert found("'&|!:*") == found("%") == found("_") == []  # no word: nothing, not everything
    assert found(ids["C-3PO"]) == ["C-3PO"]
    assert found(ids["C-3PO"].upper()) == ["C-3PO"]


def test_events_page_newest_first_with_events_added_between_pages(functions: Functions,
                                                                   owner: tuple[User, str]) -> None:
    user, character_id = owner
    agent_id = _agents(user, character_id, 1, "evented")[0]

    def event(reason: str) -> None:
        with db.transaction(SYSTEM) as conn:
            repository.insert_event(conn, agent_id=agent_id, user_id=user.id, from_status=None,
                                    to_status="hibernated", actor="test", reason=reason)

    for i in range(9):
        event(f"before {i}")
    seen = _walk(functions, "agent_events", user.token, "events", limit=2, agent_id=agent_id,
                 between=lambda: event("during"))
    reasons = [e["reason"] for e in seen]
    # Newest first: the nine that were there at the start, once each, in order; newer ones wait for
    # the next first page.
    assert reasons == [f"before {i}" for i in reversed(range(9))]
    assert len({e["id"] for e in seen}) == 9
    newest = functions.get("agent_events", user.token, agent_id=agent_id, limit=1).get_json()["events"]
    assert newest[0]["reason"] == "during"


def test_versions_page_oldest_first_with_versions_added_between_pages(functions: Functions,
                                                                       owner: tuple[User, str]) -> None:
    user, character_id = owner
    agent_id = _agents(user, character_id, 1, "versioned")[0]

    def version() -> None:
        with db.transaction(SYSTEM) as conn:
            n = repository.next_version(conn, character_id)
            repository.insert_version(conn, character_id=character_id, version=n, user_id=user.id,
                                      config={"name": "paged", "bio": [f"v{n}"]}, sha256="0" * 64,
                                      storage_uri="file:///x")

    for _ in range(4):
        version()
    seen = _walk(functions, "character_versions", user.token, "versions", limit=2, agent_id=agent_id,
                 between=version)
    numbers = [v["version"] for v in seen]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 7


def test_backups_page_newest_first_with_backups_added_between_pages(functions: Functions, admin_token: str) -> None:
    def backup(tag: str) -> str:
        with db.transaction(SYSTEM) as conn:
            row = repository.insert_backup(conn, location=f"file:///nowhere/{tag}", sha256="0" * 64, size_bytes=1,
                                           characters=0, versions=0, agents=0, manifest={}, created_by="test")
            return str(row["id"])

    made = [backup(f"b{i}") for i in range(5)]
    try:
        with db.transaction(SYSTEM) as conn:
            there = [str(r["id"]) for r in repository.list_backups(conn, limit=10_000)]
        seen = _walk(functions, "list_backups", admin_token, "backups", limit=2,
                     between=lambda: made.append(backup("during")))
        assert [b["id"] for b in seen] == there
    finally:
        with db.transaction(SYSTEM) as conn:
            conn.execute("delete from public.backups where id = any(%s::uuid[])", (made,))


def test_a_cursor_changed_cut_or_moved_is_a_422_naming_it(functions: Functions, owner: tuple[User, str],
                                                          admin_token: str) -> None:
    user, character_id = owner
    _agents(user, character_id, 3, "c")
    cursor = functions.get("list_agents", user.token, limit=1).get_json()["next_cursor"]
    assert cursor
    body, _, mac = cursor.partition(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    for bad, params in [(forged, {}), (cursor[:-3], {}), ("not a cursor", {}), ("....", {}),
                        (cursor, {"status": "running"})]:
        resp = functions.get("list_agents", user.token, limit=1, cursor=bad, **params)
        assert resp.status_code == 422, (bad, resp.get_json())
        details = resp.get_json()["error"]["details"]
        assert details[0]["loc"] == ["cursor"] and details[0]["in"] == "query"
    # Another list's cursor names the cursor too, not a wrong page.
    assert functions.get("list_backups", admin_token, cursor=cursor).status_code == 422


@pytest.mark.parametrize("limit", ["0", "201", "-1"])
def test_limit_is_bounded(functions: Functions, alice: User, limit: str) -> None:
    resp = functions.get("list_agents", alice.token, limit=limit)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"][0]["loc"] == ["limit"]


def test_a_page_without_limit_has_the_default_size(functions: Functions, owner: tuple[User, str]) -> None:
    user, character_id = owner
    _agents(user, character_id, 51, "d")
    body = functions.get("list_agents", user.token).get_json()
    assert len(body["agents"]) == 50 and body["next_cursor"]


class _Explain:
    """A connection whose execute answers the plan of each query instead of its rows."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.plans: list[str] = []

    def cursor(self, **_: Any) -> _Explain:
        return self

    def execute(self, query: Any, params: Any = None) -> Any:
        prefix = "explain (costs off) "
        query = sql.SQL(prefix) + query if isinstance(query, sql.Composable) else prefix + query
        self.plans.append("\n".join(r["QUERY PLAN"] for r in self.conn.execute(query, params).fetchall()))
        return self.conn.execute("select 1 where false")


def test_every_list_page_is_an_index_scan_without_a_sort(conn: Any) -> None:
    user = make_user()
    character_id = _character(conn, user, "planned")
    conn.execute(
        "insert into public.agents (user_id, character_id, name, runtime, status, created_at)"
        " select case when i %% 10 = 0 then gen_random_uuid() else %s::uuid end, %s, 'a' || i, 'process',"
        " case when i %% 50 = 0 then 'running' else 'hibernated' end, now() - i * interval '1 second'"
        " from generate_series(1, 10000) i", (user.id, character_id))
    conn.execute(
        "insert into public.agent_events (agent_id, user_id, actor, reason, at)"
        " select a.id, a.user_id, 'test', 'x', now() - g * interval '1 minute'"
        " from (select id, user_id from public.agents where character_id = %s limit 500) a, generate_series(1, 40) g",
        (character_id,))
    agent_id = str(conn.execute("select id from public.agents where character_id = %s limit 1",
                                (character_id,)).fetchone()["id"])
    # One agent at the most events retention keeps (1,000).
    conn.execute("insert into public.agent_events (agent_id, user_id, actor, reason, at)"
                 " select %s, %s, 'test', 'x', now() - g * interval '1 second' from generate_series(1, 1000) g",
                 (agent_id, user.id))
    conn.execute("insert into public.character_versions (character_id, version, user_id, config, sha256, storage_uri)"
                 " select %s, v, %s, '{}', repeat('0', 64), 'file:///x' from generate_series(1, 3000) v",
                 (character_id, user.id))
    conn.execute("insert into public.backups (location, sha256, size_bytes, characters, versions, agents, manifest,"
                 " created_by, created_at) select 'file:///x', '0', 1, 0, 0, 0, '{}', 'test', now() - i * interval '1h'"
                 " from generate_series(1, 2000) i")
    conn.execute("insert into public.agents (user_id, character_id, name, runtime, status)"
                 " select %s, %s, 'Trump Bot ' || i, 'process', 'hibernated' from generate_series(1, 3) i",
                 (user.id, character_id))
    conn.execute("analyze public.agents, public.agent_events, public.backups, public.character_versions")
    now = conn.execute("select now() as t").fetchone()["t"]
    probe = _Explain(conn)
    repository.list_agents(probe, limit=51)
    repository.list_agents(probe, limit=51, after=(now, agent_id))
    repository.list_agents(probe, status="running", limit=51, after=(now, agent_id))
    repository.list_public_agents(probe, limit=51, after=(now, agent_id))
    searched = len(probe.plans)
    repository.list_public_agents(probe, q="trump", limit=51)
    repository.list_public_agents(probe, q=agent_id, limit=51)
    repository.list_events(probe, agent_id, 51, (now, 10**9))
    repository.list_events(probe, None, 51, (now, 10**9))
    repository.list_backups(probe, limit=51, before=(now, agent_id))
    repository.list_versions(probe, character_id, limit=51, after=3)
    # A user's own agents, as row-level security filters them.
    conn.execute("set local role authenticated")
    conn.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{user.id}"}}',))
    repository.list_agents(probe, limit=51, after=(now, agent_id))
    repository.list_public_agents(probe, limit=51, after=(now, agent_id))
    user_searched = len(probe.plans)
    repository.list_public_agents(probe, q="trump bo", limit=51)
    conn.execute("reset role")
    # The admin's search is read by the index of names' words (and the primary key for an id), then its
    # few matches sorted: the order's index would read all 10,000 agents to find them. A user's may
    # instead read their own agents by their index (at most their quota, 100 by default).
    for plan in probe.plans[searched:searched + 2]:
        assert "agents_name_words_idx" in plan and not re.search(r"Seq Scan on agents\b", plan), plan
    for plan in probe.plans[user_searched:]:
        assert re.search(r"agents_name_words_idx|agents_user_page_idx", plan), plan
        assert not re.search(r"Seq Scan on agents\b", plan), plan
    del probe.plans[user_searched:]
    del probe.plans[searched:searched + 2]
    for plan in probe.plans:
        # The paged table is read by an index, in order; the one-row characters table of this test may be
        # read whole for each agent's current version (the planner's choice at that size).
        assert "Index" in plan and "Sort" not in plan, plan
        assert not re.search(r"Seq Scan on (agents|agent_events|backups|character_versions)\b", plan), plan
