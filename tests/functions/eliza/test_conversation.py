"""One conversation per agent and user, across restarts of the real ElizaOS 1.7.2 server."""

from __future__ import annotations

import uuid

from paradyze.agent_client import AgentClient
from tests.fakes.model_server import FakeModelServer
from tests.functions.eliza.elizaos_server import ElizaServer

TIMEOUT = 120.0


def test_the_agent_remembers_what_a_user_said_before_a_restart(
        new_eliza: ElizaServer, model: FakeModelServer) -> None:
    alice, bob = str(uuid.uuid4()), "bob@example.org"
    new_eliza.start()
    with AgentClient() as client:
        client.send_message(new_eliza.url, new_eliza.agent_id, "My locker code is 7319.", alice, timeout=TIMEOUT)
        client.send_message(new_eliza.url, new_eliza.agent_id, "I like herons.", bob, timeout=TIMEOUT)
    new_eliza.stop()  # hibernate: the process goes, its folder (and database) stays

    new_eliza.start()  # wake, on another port, with a platform that kept nothing
    seen = len(model.prompts)
    model.reply("It is 7319.")
    with AgentClient() as client:
        replies = client.send_message(new_eliza.url, new_eliza.agent_id, "What is my locker code?", alice,
                                      timeout=TIMEOUT)
    assert replies[0]["text"] == "It is 7319."
    prompts = [p for p in model.prompts[seen:] if "What is my locker code?" in p]
    assert prompts and "My locker code is 7319." in prompts[0], "what was said before the restart"
    assert not any("herons" in p for p in prompts), "another user's conversation stays apart"
