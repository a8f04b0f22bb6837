"""Following agent_id through a wake and a message: how often the agent's row is read and written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import Functions, User, fixture_characters
from paradyze import delivery_repository, repository

CHARACTER = fixture_characters()["eliza-default"]


class Access:
    """Every read and write of one agent's row through the repository, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[str] = []
        real_get, real_update = repository.get_agent, repository.update_agent
        real_record = delivery_repository.record_delivery

        def get_agent(conn: Any, agent_id: str) -> Any:
            self.log.append("read")
            return real_get(conn, agent_id)

        def update_agent(conn: Any, agent_id: str, change: Any, *, status: Any = None) -> Any:
            self.log.append(f"write {status or ', '.join(sorted(change.columns()))}")
            return real_update(conn, agent_id, change, status=status)

        def record_delivery(conn: Any, *, count: int, **kw: Any) -> None:
            self.log.append(f"count {count} messages")
            real_record(conn, count=count, **kw)

        monkeypatch.setattr(repository, "get_agent", get_agent)
        monkeypatch.setattr(repository, "update_agent", update_agent)
        monkeypatch.setattr(delivery_repository, "record_delivery", record_delivery)


@pytest.fixture
def hibernated(functions: Functions, alice: User, cleanup_agents: list[str]) -> Iterator[str]:
    resp = functions.post("create_agent", alice.token, {"character": CHARACTER})
    assert resp.status_code == 201, resp.get_json()
    agent_id = resp.get_json()["agent"]["id"]
    cleanup_agents.append(agent_id)
    assert functions.post("hibernate_agent", alice.token, {"agent_id": agent_id}).status_code == 200
    yield agent_id


def test_a_wake_reads_the_agent_once_then_writes_once_per_step(
        functions: Functions, alice: User, hibernated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    access = Access(monkeypatch)
    resp = functions.post("wake_agent", alice.token, {"agent_id": hibernated})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["agent"]["status"] == "running"
    assert access.log == ["read", "write waking", "write runtime_handle, url", "write running"]


def test_a_message_to_a_running_agent_reads_it_once_and_writes_once(
        functions: Functions, alice: User, hibernated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert functions.post("wake_agent", alice.token, {"agent_id": hibernated}).status_code == 200
    access = Access(monkeypatch)
    resp = functions.post("send_message", alice.token, {"agent_id": hibernated, "text": "hello"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["woke"] is False and resp.get_json()["replies"]
    assert access.log == ["read", "count 2 messages"]


def test_a_message_that_wakes_the_agent_reads_it_once_per_step(
        functions: Functions, alice: User, hibernated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    access = Access(monkeypatch)
    resp = functions.post("send_message", alice.token, {"agent_id": hibernated, "text": "wake up"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["woke"] is True
    # Found hibernated; the wake's own locked read and steps; then read running and delivered.
    assert access.log == ["read", "read", "write waking", "write runtime_handle, url", "write running",
                          "read", "count 2 messages"]
