"""The reference agent keeps bounded state: many conversations and long sessions hold at most a fixed
number of messages, counted, whatever the number sent."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
import requests

from local_emulator.reference_agent import Handler, Memories
from local_emulator.reference_persona import HISTORY_TURNS, Agent, Persona

USER = "7d9b6f5e-0c1a-4b8e-9f00-000000000001"
CONVERSATIONS, SESSION_MESSAGES = 5, 6


@pytest.fixture
def served() -> Iterator[tuple[Agent, str]]:
    agent = Agent(Persona({"name": "Bounded", "bio": ["Keeps little."]}), {},
                  max_conversations=CONVERSATIONS, session_messages=SESSION_MESSAGES)
    handler = type("BoundHandler", (Handler,), {"agent": agent, "memories": Memories(limit=50), "api_key": ""})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield agent, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_memory_stays_bounded_however_many_messages(served: tuple[Agent, str]) -> None:
    agent, url = served
    most = CONVERSATIONS * 2 * HISTORY_TURNS + CONVERSATIONS * SESSION_MESSAGES
    with requests.Session() as http:
        sessions = []
        for round_ in range(4):
            for _ in range(3 * CONVERSATIONS):
                # A new channel each time, and a new session: more conversations than are kept.
                channel = str(uuid.uuid4())
                http.post(f"{url}/api/messaging/channels/{channel}/messages",
                          json={"author_id": USER, "message_server_id": str(uuid.uuid4()), "content": "hi",
                                "transport": "http"}, timeout=10).raise_for_status()
                made = http.post(f"{url}/api/messaging/sessions",
                                 json={"agentId": agent.persona.id, "userId": USER}, timeout=10)
                sessions.append(made.json()["sessionId"])
            # One long session: far more messages than it keeps.
            for i in range(4 * SESSION_MESSAGES):
                http.post(f"{url}/api/messaging/sessions/{sessions[-1]}/messages",
                          json={"content": f"message {round_}.{i}", "transport": "http"}, timeout=10).raise_for_status()
            assert agent.retained() <= most, round_
        assert len(agent.sessions) == CONVERSATIONS
        # The newest session answers its newest messages; the oldest were forgotten.
        answer = http.get(f"{url}/api/messaging/sessions/{sessions[-1]}/messages", timeout=10).json()
        assert len(answer["messages"]) == SESSION_MESSAGES
        newest = f"message 3.{4 * SESSION_MESSAGES - 1}"
        assert answer["messages"][0]["isAgent"] and answer["messages"][1]["content"] == newest
        assert http.get(f"{url}/api/messaging/sessions/{sessions[0]}", timeout=10).status_code == 404
