"""send_message's per-user limits, taken in the message's own transactions: a running agent costs one
round of reads and one write, and the request slot comes back however the delivery ends."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from helpers import Functions, User, fixture_characters
from paradyze import db
from paradyze.agent_client import AgentClient
from paradyze.errors import AgentFailed, AgentUnreachable
from paradyze.settings import get_settings


def create(functions: Functions, user: User, cleanup: list[str]) -> str:
    resp = functions.post("create_agent", user.token, {"character": fixture_characters()["eliza-default"]})
    assert resp.status_code == 201, resp.get_json()
    cleanup.append(resp.get_json()["agent"]["id"])
    return str(resp.get_json()["agent"]["id"])


def slots_held(user: User) -> int:
    with db.pool().connection() as conn:
        row = conn.execute("select count(*) as n from public.user_operations where user_id = %s",
                           (user.id,)).fetchone()
    return int(row["n"]) if row else 0


def test_a_message_to_a_running_agent_is_one_round_of_reads_and_one_write(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    agent_id = create(functions, alice, cleanup_agents)
    opened: list[str] = []
    trips = {"statements": 0, "checks": 0, "connections": 0}
    real_transaction_on, real_execute, real_check = db.transaction_on, psycopg.Cursor.execute, \
        ConnectionPool.check_connection
    real_getconn = ConnectionPool.getconn

    def getconn(self: Any, *args: Any, **kwargs: Any) -> Any:
        trips["connections"] += 1
        return real_getconn(self, *args, **kwargs)

    @contextlib.contextmanager
    def transaction_on(conn: Any, caller: Any) -> Iterator[Any]:
        opened.append("platform" if caller.is_admin else "user")
        with real_transaction_on(conn, caller) as same:
            yield same

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        trips["statements"] += 1
        return real_execute(self, *args, **kwargs)

    def check(conn: Any) -> None:
        trips["checks"] += 1
        real_check(conn)

    monkeypatch.setattr(db, "transaction_on", transaction_on)
    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(check))
    monkeypatch.setattr(ConnectionPool, "getconn", getconn)
    resp = functions.post("send_message", alice.token, {"agent_id": agent_id, "text": "hello"})
    assert resp.status_code == 200, resp.get_json()
    assert opened == ["platform"], opened
    assert trips["connections"] == 1, trips
    # Seven round trips, all on the one pooled connection the message holds: the message held in
    # flight (lock, unlock), the read's transaction (BEGIN, the slot and rate then the caller's role
    # in one statement, the agent, COMMIT), and the write, a statement that is its own transaction. A
    # pooled connection idle for a second is checked first with an empty query, which a fast test may
    # or may not see; one in steady use is not.
    assert trips["statements"] - trips["checks"] == 5, trips
    assert slots_held(alice) == 0
    monkeypatch.undo()
    history = functions.get("agent_messages", alice.token, agent_id=agent_id).get_json()["messages"]
    assert [m["role"] for m in history][:1] == ["user"] and len(history) == 2


@pytest.mark.parametrize("error", [AgentFailed("the agent failed to reply"),
                                   AgentUnreachable("cannot reach the agent: ConnectError")],
                         ids=["failed", "unreachable"])
def test_the_slot_comes_back_when_the_agent_call_fails(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch,
        error: Exception) -> None:
    agent_id = create(functions, alice, cleanup_agents)
    monkeypatch.setattr(get_settings(), "user_concurrency", 1)
    real = AgentClient.send_message

    def fail(*args: object, **kwargs: object) -> list[dict[str, object]]:
        raise error

    monkeypatch.setattr(AgentClient, "send_message", fail)
    for _ in range(3):  # with one slot, a slot kept by a failure would make the next one 429
        failed = functions.post("send_message", alice.token, {"agent_id": agent_id, "text": "hi"})
        assert failed.status_code in (502, 503), failed.get_json()
    assert slots_held(alice) == 0
    monkeypatch.setattr(AgentClient, "send_message", real)
    assert functions.post("send_message", alice.token, {"agent_id": agent_id, "text": "hi"}).status_code == 200


def test_a_message_holds_a_slot_until_the_agent_answers(
        functions: Functions, alice: User, bob: User, cleanup_agents: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    mine, theirs = create(functions, alice, cleanup_agents), create(functions, bob, cleanup_agents)
    monkeypatch.setattr(get_settings(), "user_concurrency", 1)
    entered, release = threading.Event(), threading.Event()
    real = AgentClient.send_message

    def slow(self: AgentClient, url: str, agent_id: str, *args: Any, **kwargs: Any) -> Any:
        if agent_id == mine:
            entered.set()
            release.wait(60)
        return real(self, url, agent_id, *args, **kwargs)

    monkeypatch.setattr(AgentClient, "send_message", slow)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(functions.post, "send_message", alice.token, {"agent_id": mine, "text": "first"})
        try:
            assert entered.wait(60)
            second = functions.post("send_message", alice.token, {"agent_id": mine, "text": "second"})
            assert second.status_code == 429
            assert second.get_json()["error"]["code"] == "too_many_in_flight"
            assert int(second.headers["Retry-After"]) >= 1
            assert functions.post("send_message", bob.token, {"agent_id": theirs, "text": "hi"}).status_code == 200
        finally:
            release.set()
        assert held.result(timeout=60).status_code == 200
    assert functions.post("send_message", alice.token, {"agent_id": mine, "text": "third"}).status_code == 200
    assert slots_held(alice) == 0


def test_a_message_past_the_rate_takes_no_slot_and_is_not_sent(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    agent_id = create(functions, alice, cleanup_agents)
    monkeypatch.setattr(get_settings(), "send_message_rate", 1)
    monkeypatch.setattr(get_settings(), "send_message_rate_period", 3600.0)
    assert functions.post("send_message", alice.token, {"agent_id": agent_id, "text": "one"}).status_code == 200
    refused = functions.post("send_message", alice.token, {"agent_id": agent_id, "text": "two"})
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert slots_held(alice) == 0
    history = functions.get("agent_messages", alice.token, agent_id=agent_id).get_json()["messages"]
    assert [m["text"] for m in history if m["role"] == "user"] == ["one"]


def test_a_message_to_an_unknown_agent_counts_against_the_rate_and_frees_its_slot(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    agent_id = create(functions, alice, cleanup_agents)
    monkeypatch.setattr(get_settings(), "send_message_rate", 1)
    monkeypatch.setattr(get_settings(), "send_message_rate_period", 3600.0)
    unknown = functions.post("send_message", alice.token, {"agent_id": str(uuid.uuid4()), "text": "anyone?"})
    assert unknown.status_code == 404
    assert slots_held(alice) == 0
    assert functions.post("send_message", alice.token, {"agent_id": agent_id, "text": "hi"}).status_code == 429
