"""The console's HTTP client: requests it sends and how it turns failures into ApiError."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.client import ApiError, BackendDown, ParadyzeClient
from console.settings import ConsoleSettings
from helpers import FIXTURES
from tests.console.fake_api import TOKEN, FakeServer


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


@pytest.fixture
def client(fake: FakeServer) -> ParadyzeClient:
    return ParadyzeClient(fake.url, TOKEN, timeout=5)


def test_create_sends_token_runtime_policy_and_idempotency_key(
    client: ParadyzeClient, fake: FakeServer
) -> None:
    agent = client.create_agent(
        {"name": "Eliza", "bio": ["hi"]}, "process", {"idle_timeout_minutes": 15}, idempotency_key="k-1"
    )
    function, headers, body = fake.api.requests[-1]
    assert function == "create_agent"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Idempotency-Key"] == "k-1"
    assert body == {
        "character": {"name": "Eliza", "bio": ["hi"]},
        "runtime": "process",
        "policy": {"idle_timeout_minutes": 15},
    }
    assert agent.name == "Eliza" and agent.status == "running"
    assert agent.policy.idle_timeout_minutes == 15


def test_list_omits_empty_filters_and_lifecycle_round_trip(client: ParadyzeClient, fake: FakeServer) -> None:
    created = client.create_agent({"name": "A", "bio": "x"})
    assert [a.id for a in client.list_agents(q="")] == [created.id]
    assert fake.api.requests[-1][2] == {"limit": "200"}  # no empty q or status, one page of the most allowed
    assert client.hibernate_agent(created.id).status == "hibernated"
    result = client.send_message(created.id, "hello")
    assert result.woke and result.replies[0].text == "A heard: hello"
    statuses = [e.to_status for e in client.agent_events(created.id)]
    assert statuses[:2] == ["running", "waking"]  # newest first, as the functions answer


def test_lists_are_fetched_page_by_page_up_to_what_is_asked(client: ParadyzeClient, fake: FakeServer) -> None:
    made = {client.create_agent({"name": f"A{i}", "bio": "x"}).id for i in range(230)}
    assert {a.id for a in client.list_agents()} == made
    assert [r[2] for r in fake.api.requests[-2:]] == [{"limit": "200"}, {"limit": "200", "cursor": "200"}]
    assert len(client.list_agents(most=30)) == 30


def test_validation_error_keeps_field_paths(client: ParadyzeClient) -> None:
    with pytest.raises(ApiError) as caught:
        client.create_agent({"name": " "})
    err = caught.value
    assert (err.status, err.code, err.operation) == (422, "validation_failed", "create_agent")
    assert err.field_errors() == {"character.name": "Field required", "character.bio": "Field required"}
    assert "Fix the fields" in err.hint


def test_conflict_and_unavailable_say_what_to_do(client: ParadyzeClient, fake: FakeServer) -> None:
    created = client.create_agent({"name": "A", "bio": "x"})
    client.hibernate_agent(created.id)
    with pytest.raises(ApiError) as conflict:
        client.hibernate_agent(created.id)
    assert conflict.value.status == 409 and "hibernated" in conflict.value.message
    fake.api.fail_next["wake_agent"] = (
        503,
        {"error": {"code": "agent_start_failed", "message": "agent did not answer"}},
        {"Retry-After": "7"},
    )
    with pytest.raises(ApiError) as down:
        client.wake_agent(created.id)
    assert down.value.code == "agent_start_failed" and down.value.retry_after == 7
    assert "7 seconds" in down.value.hint


def test_non_json_error_and_wrong_token(fake: FakeServer) -> None:
    fake.api.fail_next["list_agents"] = (500, {"not": "an error object"}, {})
    with pytest.raises(ApiError) as broken:
        ParadyzeClient(fake.url, TOKEN).list_agents()
    assert broken.value.status == 500 and broken.value.code == "http_500"
    with pytest.raises(ApiError) as denied:
        ParadyzeClient(fake.url, "wrong").list_agents()
    assert denied.value.status == 401 and "PARADYZE_ADMIN_TOKEN" in denied.value.hint


def test_backend_down_is_reported_not_raised_as_requests_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ParadyzeClient(f"http://127.0.0.1:{port}", "secret-token-value", timeout=2)
    problem = client.reachable()
    assert isinstance(problem, BackendDown)
    assert f"127.0.0.1:{port}" in problem.message
    assert "secret-token-value" not in repr(client) + str(problem)


def test_token_from_env_then_home_file(tmp_path: Path) -> None:
    assert ConsoleSettings(PARADYZE_HOME=tmp_path).token() is None
    (tmp_path / "admin-token").write_text("from-file\n")
    assert ConsoleSettings(PARADYZE_HOME=tmp_path).token() == "from-file"
    assert ConsoleSettings(PARADYZE_HOME=tmp_path, PARADYZE_ADMIN_TOKEN="from-env").token() == "from-env"
    assert "from-env" not in repr(ConsoleSettings(PARADYZE_ADMIN_TOKEN="from-env"))


def test_fixtures_folder_default_finds_the_shared_characters() -> None:
    names = [p.name for p in ConsoleSettings().fixture_files()]
    if not FIXTURES.is_dir():
        pytest.skip(f"no fixtures at {FIXTURES}")
    assert "eliza-default.character.json" in names
    assert all(isinstance(json.loads(p.read_text()), dict) for p in ConsoleSettings().fixture_files())
