"""The platform hosting the real ElizaOS 1.7.2 through its functions, as a user drives it.

Every agent here is a real ElizaOS server on the process runtime, answering through the fake model
server, which records each prompt: so a test can see what the agent was shown.
"""

from __future__ import annotations

import json

import pytest

from helpers import Functions, User, fixture_characters
from paradyze.settings import get_settings
from tests.fakes.model_server import FakeModelServer
from tests.functions.runtimes.eliza_servers import servers_of


def call(functions: Functions, user: User, name: str, body: dict) -> dict:
    resp = functions.post(name, user.token, body)
    assert resp.status_code in (200, 201), (name, resp.get_json())
    return dict(resp.get_json())


@pytest.mark.parametrize("name", sorted(fixture_characters()))
def test_each_fixture_character_as_users_have_it_creates_an_agent_that_replies(
        functions: Functions, alice: User, cleanup_agents: list[str], on_elizaos: FakeModelServer,
        name: str) -> None:
    created = call(functions, alice, "create_agent", {"character": fixture_characters()[name]})
    agent = created["agent"]
    cleanup_agents.append(agent["id"])
    assert agent["status"] == "running"
    on_elizaos.reply(f"Hello, I am {agent['name']}.", thought="Private reasoning, not for users.")

    answer = call(functions, alice, "send_message", {"agent_id": agent["id"], "text": "Who are you?"})

    assert [r["text"] for r in answer["replies"]] == [f"Hello, I am {agent['name']}."]
    assert "Private reasoning" not in json.dumps(answer)
    assert any("Who are you?" in prompt for prompt in on_elizaos.prompts)
    assert len(servers_of(agent["id"], alice.id)) == 1


def test_a_fact_told_before_hibernate_is_in_the_prompt_after_wake(
        functions: Functions, alice: User, cleanup_agents: list[str], on_elizaos: FakeModelServer) -> None:
    agent = call(functions, alice, "create_agent", {"character": fixture_characters()["eliza-default"]})["agent"]
    cleanup_agents.append(agent["id"])
    call(functions, alice, "send_message", {"agent_id": agent["id"], "text": "My boat is called Saltwhistle."})

    call(functions, alice, "hibernate_agent", {"agent_id": agent["id"]})
    assert servers_of(agent["id"], alice.id) == []  # hibernated: no server left behind
    asked = len(on_elizaos.prompts)
    answer = call(functions, alice, "send_message", {"agent_id": agent["id"], "text": "What is my boat called?"})

    assert answer["woke"] is True
    after_wake = on_elizaos.prompts[asked:]
    assert any("What is my boat called?" in p and "Saltwhistle" in p for p in after_wake), after_wake
    assert len(servers_of(agent["id"], alice.id)) == 1


def test_one_agents_memory_never_reaches_another_agents_prompt(
        functions: Functions, alice: User, bob: User, cleanup_agents: list[str],
        on_elizaos: FakeModelServer) -> None:
    alices = call(functions, alice, "create_agent", {"character": fixture_characters()["eliza-default"]})["agent"]
    bobs = call(functions, bob, "create_agent", {"character": fixture_characters()["eliza-default"]})["agent"]
    cleanup_agents.extend([alices["id"], bobs["id"]])
    call(functions, alice, "send_message", {"agent_id": alices["id"], "text": "My locker code is 4471."})

    asked = len(on_elizaos.prompts)
    call(functions, bob, "send_message", {"agent_id": bobs["id"], "text": "What is the locker code?"})

    assert not any("4471" in p for p in on_elizaos.prompts[asked:])


def test_delete_leaves_no_server_and_no_memory(
        functions: Functions, alice: User, on_elizaos: FakeModelServer) -> None:
    agent = call(functions, alice, "create_agent", {"character": fixture_characters()["eliza-default"]})["agent"]
    home = get_settings().agent_home(agent["id"])
    assert (get_settings().agent_home(f"owner-{alice.id}") / "elizadb").is_dir()  # the owner's memory

    call(functions, alice, "delete_agent", {"agent_id": agent["id"]})

    assert servers_of(agent["id"], alice.id) == []
    assert not home.exists()
