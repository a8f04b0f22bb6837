"""One user's load stays theirs: agent quotas, request rates and requests in flight, through the functions."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql

from helpers import Functions, User, fixture_characters
from paradyze import queries
from paradyze.settings import get_settings

CHARACTER = fixture_characters()["eliza-default"]


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set limits for one test; the settings object is the one every function instance here reads."""
    settings = get_settings()

    def set_limits(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setattr(settings, name, value)

    return set_limits


def create(functions: Functions, user: User, cleanup: list[str]) -> Any:
    resp = functions.post("create_agent", user.token, {"character": CHARACTER})
    if resp.status_code == 201:
        cleanup.append(resp.get_json()["agent"]["id"])
    return resp


def error_of(resp: Any) -> dict[str, Any]:
    return dict(resp.get_json()["error"])


def test_creates_past_the_rate_are_429_with_retry_after_while_another_user_creates(
        functions: Functions, alice: User, bob: User, cleanup_agents: list[str], limits: Any) -> None:
    limits(create_agent_rate=3, create_agent_rate_period=3600.0)
    answers = [create(functions, alice, cleanup_agents) for _ in range(30)]
    assert [r.status_code for r in answers] == [201] * 3 + [429] * 27
    refused = answers[-1]
    assert error_of(refused)["code"] == "rate_limited"
    assert "3 per 3600 seconds" in error_of(refused)["message"]
    # The next slot opens period/limit (1200 s) after the first create.
    assert 1 <= int(refused.headers["Retry-After"]) <= 1200
    assert create(functions, bob, cleanup_agents).status_code == 201
    assert len(functions.get("list_agents", alice.token).get_json()["agents"]) == 3


def test_messages_past_the_rate_are_429(
        functions: Functions, alice: User, bob: User, cleanup_agents: list[str], limits: Any) -> None:
    mine, theirs = create(functions, alice, cleanup_agents), create(functions, bob, cleanup_agents)
    limits(send_message_rate=2, send_message_rate_period=3600.0)
    sent = [functions.post("send_message", alice.token, {"agent_id": mine.get_json()["agent"]["id"], "text": "hi"})
            for _ in range(4)]
    assert [r.status_code for r in sent] == [200, 200, 429, 429]
    assert int(sent[-1].headers["Retry-After"]) >= 1
    other = functions.post("send_message", bob.token, {"agent_id": theirs.get_json()["agent"]["id"], "text": "hi"})
    assert other.status_code == 200


def test_requests_in_flight_past_the_limit_are_429(
        functions: Functions, alice: User, bob: User, limits: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    limits(user_concurrency=2)
    entered, release = threading.Semaphore(0), threading.Event()
    real = queries.list_all

    def slow_list(caller: Any, **kw: Any) -> Any:
        if caller.user_id == alice.id:
            entered.release()
            release.wait(60)
        return real(caller, **kw)

    monkeypatch.setattr(queries, "list_all", slow_list)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = [pool.submit(functions.get, "list_agents", alice.token) for _ in range(2)]
        try:
            assert entered.acquire(timeout=60) and entered.acquire(timeout=60)
            third = functions.get("list_agents", alice.token)
            assert third.status_code == 429
            assert error_of(third)["code"] == "too_many_in_flight"
            assert "limit is 2" in error_of(third)["message"]
            assert int(third.headers["Retry-After"]) >= 1
            assert functions.get("list_agents", bob.token).status_code == 200
        finally:
            release.set()
        assert [f.result(timeout=60).status_code for f in held] == [200, 200]
    assert functions.get("list_agents", alice.token).status_code == 200  # the slots were given back


def test_the_agent_quota_refuses_a_create_naming_the_limit(
        functions: Functions, alice: User, cleanup_agents: list[str], limits: Any) -> None:
    limits(agent_quota_total=1)
    assert create(functions, alice, cleanup_agents).status_code == 201
    refused = create(functions, alice, cleanup_agents)
    assert refused.status_code == 403
    error = error_of(refused)
    assert error["code"] == "quota_exceeded"
    assert "you have 1 of at most 1 agents" in error["message"]
    assert (error["details"][0]["limit"], error["details"][0]["current"]) == (1, 1)


def test_parallel_creates_cannot_both_take_the_last_slot(
        functions: Functions, alice: User, cleanup_agents: list[str], limits: Any) -> None:
    limits(agent_quota_total=1)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: create(functions, alice, cleanup_agents), range(4)))
    assert sorted(r.status_code for r in answers) == [201, 403, 403, 403]
    assert len(functions.get("list_agents", alice.token).get_json()["agents"]) == 1


def test_the_running_quota_holds_at_create_and_at_wake(
        functions: Functions, alice: User, cleanup_agents: list[str], limits: Any) -> None:
    limits(agent_quota_running=1)
    first = create(functions, alice, cleanup_agents).get_json()["agent"]
    assert create(functions, alice, cleanup_agents).status_code == 403  # one runs already
    functions.post("hibernate_agent", alice.token, {"agent_id": first["id"]})
    second = create(functions, alice, cleanup_agents)
    assert second.status_code == 201

    woken = functions.post("wake_agent", alice.token, {"agent_id": first["id"]})
    assert woken.status_code == 403
    assert "you have 1 of at most 1 running agents" in error_of(woken)["message"]
    by_message = functions.post("send_message", alice.token, {"agent_id": first["id"], "text": "wake up"})
    assert by_message.status_code == 403
    assert functions.get("get_agent", alice.token, agent_id=first["id"]).get_json()["agent"]["status"] == "hibernated"

    functions.post("hibernate_agent", alice.token, {"agent_id": second.get_json()["agent"]["id"]})
    assert functions.post("wake_agent", alice.token, {"agent_id": first["id"]}).status_code == 200


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize("table", ["user_rate_limits", "user_operations", "admin_token_generation"])
def test_the_limit_tables_are_the_platforms_alone(conn: Any, role: str, table: str, alice: User) -> None:
    """As PostgREST would run a request: a user's claims, then SET ROLE. Every statement is refused."""
    conn.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{alice.id}", "role": "{role}"}}',))
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
    target = sql.Identifier("public", table)
    for statement in (sql.SQL("select * from {}"), sql.SQL("delete from {}"), sql.SQL("truncate {}"),
                      sql.SQL("update {} set user_id = user_id") if table != "admin_token_generation"
                      else sql.SQL("update {} set generation = 1")):
        conn.execute("savepoint attempt")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.format(target))
        conn.execute("rollback to savepoint attempt")
