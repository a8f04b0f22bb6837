"""A blue/green release of a real ElizaOS 1.7.2 agent on the fake model: every message sent during the
switch is stored by exactly one server, green remembers what blue was told, and the two servers never
share a PGlite folder."""

from __future__ import annotations

import copy
import threading
from typing import Any

import psutil
import pytest
import requests

from helpers import Functions, User, fixture_characters
from paradyze import agent_keys, db, release_store, slots
from paradyze.settings import get_settings
from tests.fakes.model_server import FakeModelServer


def servers_in(home: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if proc.info["cwd"] == home and any("elizaos" in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def stored(url: str, agent_id: str) -> list[dict[str, Any]]:
    """Every message memory of the server at url."""
    headers = {"X-API-KEY": agent_keys.api_key(agent_id)}
    eliza_id = requests.get(f"{url}/api/agents", headers=headers, timeout=10).json()["data"]["agents"][0]["id"]
    body = requests.get(f"{url}/api/memory/{eliza_id}/memories", headers=headers, timeout=30).json()
    return list(body["data"]["memories"])


@pytest.mark.parametrize("hosting", ["own", "shared"])
def test_a_release_of_elizaos_answers_each_message_once_and_keeps_its_memory(
        functions: Functions, alice: User, cleanup_agents: list[str], on_elizaos: FakeModelServer,
        monkeypatch: pytest.MonkeyPatch, hosting: str) -> None:
    """own: green starts beside blue on a copy of blue's memory. shared (the default): the agent is one
    of its owner's server's agents, its memory keyed by its id there, so the switch restarts it in place."""
    monkeypatch.setattr(get_settings(), "agent_hosting", hosting)
    character = fixture_characters()["eliza-default"]
    resp = functions.post("create_agent", alice.token, {"character": character})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    cleanup_agents.append(agent["id"])
    told = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "my cat is named Zorblax"})
    assert told.status_code == 200, told.get_json()

    stop = threading.Event()
    sent: list[tuple[str, int, int]] = []

    def talk() -> None:
        after = 0
        while after < 2:
            after += stop.is_set()
            text = f"during the switch {len(sent)}"
            r = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": text})
            sent.append((text, r.status_code, len((r.get_json() or {}).get("replies", []))))
            stop.wait(0.5)

    sender = threading.Thread(target=talk)
    sender.start()
    v2 = copy.deepcopy(character)
    v2["bio"] = [*v2["bio"], "{{name}} has a second version."]
    resp = functions.post("release_version", alice.token, {"agent_id": agent["id"], "character": v2, "test_cases": [
        {"name": "answers", "turns": [{"message": "hello", "expect": {"contains": ["fake model"]}}]}]})
    stop.set()
    sender.join(timeout=120)
    assert resp.status_code == 200, resp.get_json()
    release = resp.get_json()["release"]
    assert all(status == 200 and replies == 1 for _, status, replies in sent), sent
    if hosting == "shared":
        assert release["status"] == "done", (release["reason"], release["smoke"])
        after = functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]
        assert after["status"] == "running" and after["character_version"] == 2
        memories = stored(after["url"], agent["id"])
        for text, _, _ in sent:  # each message delivered and stored once, by the one agent
            assert len({m["id"] for m in memories if m["content"].get("text") == text}) == 1, text
        asked = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "what is my cat called?"})
        assert asked.status_code == 200
        assert any("Zorblax" in p and "what is my cat called?" in p for p in on_elizaos.prompts)
        return
    assert release["status"] == "switched", (release["reason"], release["smoke"])

    blue_home, green_home = (str(get_settings().agent_home(i)) for i in (agent["id"], slots.twin(agent["id"])))
    assert servers_in(blue_home) and servers_in(green_home), "blue kept for its grace period, green serving"
    with db.pool().connection() as conn:
        blue_url = conn.execute("select blue_url from public.agent_releases where id = %s",
                                (release["id"],)).fetchone()["blue_url"]
    after = functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]
    # One delivery per message: a memory copied to green keeps its id; a second delivery would not.
    memories = stored(blue_url, agent["id"]) + stored(after["url"], agent["id"])
    for text, _, _ in sent:
        assert len({m["id"] for m in memories if m["content"].get("text") == text}) == 1, text

    # Green started on a copy of blue's memory: what blue was told is in green's prompt.
    asked = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "what is my cat called?"})
    assert asked.status_code == 200
    assert any("Zorblax" in p and "what is my cat called?" in p for p in on_elizaos.prompts)

    with db.pool().connection() as conn:
        conn.execute("update public.agent_releases set keep_until = now() where id = %s", (release["id"],))
    release_store.finish_due(actor="test")
    assert servers_in(blue_home) == [] and servers_in(green_home)
