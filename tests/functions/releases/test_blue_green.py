"""Blue/green releases with the reference agent: the switch loses and repeats no message, a failed smoke
test keeps blue serving, rollback returns to an earlier version, a hibernated agent just switches."""

from __future__ import annotations

import concurrent.futures
import copy
import threading
from collections import Counter
from typing import Any

import requests

from helpers import Functions, User, agent_processes, fixture_characters
from paradyze import agent_keys, db, slots

CHARACTERS = fixture_characters()


def eliza_v2() -> dict[str, Any]:
    """Version 2: a patch (a new bio line) whose greeting example answers differently."""
    character = copy.deepcopy(CHARACTERS["eliza-default"])
    character["bio"] = [*character["bio"], "{{name}} now greets people by saying hello first."]
    character["messageExamples"][0]["examples"][1]["content"]["text"] = "hello! what are you working on?"
    return character


def create(functions: Functions, user: User, cleanup: list[str]) -> dict[str, Any]:
    resp = functions.post("create_agent", user.token, {"character": CHARACTERS["eliza-default"]})
    assert resp.status_code == 201, resp.get_json()
    cleanup.append(resp.get_json()["agent"]["id"])
    return resp.get_json()["agent"]


def get(functions: Functions, user: User, agent_id: str) -> dict[str, Any]:
    return functions.get("get_agent", user.token, agent_id=agent_id).get_json()["agent"]


def release(functions: Functions, user: User, body: dict[str, Any]) -> dict[str, Any]:
    resp = functions.post("release_version", user.token, body)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["release"]


def processes(agent_id: str) -> list[int]:
    found = agent_processes()
    return found.get(agent_id, []) + found.get(slots.twin(agent_id), [])


def said(url: str, agent_id: str) -> list[str]:
    """What users said to the agent server at url, from its own memory."""
    headers = {"X-API-KEY": agent_keys.api_key(agent_id)}
    eliza_id = requests.get(f"{url}/api/agents", headers=headers, timeout=10).json()["data"]["agents"][0]["id"]
    memories = requests.get(f"{url}/api/memory/{eliza_id}/memories", headers=headers, timeout=10).json()
    return [m["content"]["text"] for m in memories["data"]["memories"] if m["entityId"] != eliza_id]


def expire_grace(agent_id: str) -> None:
    with db.pool().connection() as conn:
        conn.execute("update public.agent_releases set keep_until = now() - interval '1 second'"
                     " where agent_id = %s and status = 'switched'", (agent_id,))


def test_every_message_sent_during_the_switch_is_answered_exactly_once(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    blue_url = agent["url"]
    stop = threading.Event()

    def talk(sender: int) -> list[tuple[str, int, int]]:
        """Send until the release has answered, then three more (those can only reach green)."""
        sent: list[tuple[str, int, int]] = []
        after = 0
        while after < 3:
            after += stop.is_set()
            text = f"message {sender}-{len(sent)}"
            resp = functions.post("send_message", admin_token, {"agent_id": agent["id"], "text": text})
            sent.append((text, resp.status_code, len((resp.get_json() or {}).get("replies", []))))
        return sent

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        senders = [pool.submit(talk, n) for n in range(4)]
        done = release(functions, alice, {"agent_id": agent["id"], "character": eliza_v2(),
                                          "test_cases": [{"name": "greets", "turns": [
                                              {"message": "can you help me with this?",
                                               "expect": {"contains": ["hello"]}}]}]})
        stop.set()
        sent = [item for future in senders for item in future.result()]

    assert done["status"] == "switched" and done["serving"] == "green", done
    assert done["smoke"][0]["passed"] and done["to_version"] == 2
    after = get(functions, alice, agent["id"])
    assert after["url"] != blue_url and after["running_version"] == 2 and after["character_semver"] == "1.1.0"
    # Every message was answered, once.
    assert all(status == 200 and replies == 1 for _, status, replies in sent), [s for s in sent if s[1] != 200]
    # And reached exactly one of the two servers: none lost, none delivered twice.
    on_blue, on_green = said(blue_url, agent["id"]), said(after["url"], agent["id"])
    heard = Counter(on_blue + on_green)
    texts = [text for text, _, _ in sent]
    assert {t: heard[t] for t in texts} == {t: 1 for t in texts}
    assert set(texts) & set(on_blue) and set(texts) & set(on_green), "the messages spanned the switch"
    # Blue is kept for its grace period, then the sweep stops it: one instance left, green.
    assert len(processes(agent["id"])) == 2
    expire_grace(agent["id"])
    assert functions.post("hibernate_idle", admin_token).status_code == 200
    assert len(processes(agent["id"])) == 1 and processes(agent["id"]) == agent_processes()[slots.twin(agent["id"])]
    [latest] = functions.get("list_releases", alice.token, agent_id=agent["id"], limit=1).get_json()["releases"]
    assert latest["status"] == "done" and latest["serving"] == "green"
    reply = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "can you help me with this?"})
    assert reply.get_json()["replies"][0]["text"] == "hello! what are you working on?"


def test_a_failed_smoke_test_keeps_blue_serving_and_says_why(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    failed = release(functions, alice, {"agent_id": agent["id"], "character": eliza_v2(), "test_cases": [
        {"name": "still polite", "turns": [{"message": "thanks", "expect": {"contains": ["anytime"]}},
                                           {"message": "can you help me with this?",
                                            "expect": {"absent": ["hello"]}}]}]})
    assert failed["status"] == "failed" and failed["serving"] == "blue"
    assert "'still polite'" in failed["reason"] and "does not contain 'hello'" in failed["reason"]
    assert failed["smoke"][0]["turns"][0]["score"] == 1.0 and failed["smoke"][0]["score"] == 0.5
    after = get(functions, alice, agent["id"])
    assert after["url"] == agent["url"] and after["running_version"] == 1 and after["character_version"] == 1
    assert len(processes(agent["id"])) == 1
    versions = functions.get("character_versions", alice.token, agent_id=agent["id"]).get_json()["versions"]
    assert [(v["version"], v["current"]) for v in versions] == [(1, True), (2, False)]
    reply = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "can you help me with this?"})
    assert reply.get_json()["replies"][0]["text"] == "sure. what are you working on?"


def test_rollback_is_instant_while_blue_is_kept_and_blue_green_after(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    release(functions, alice, {"agent_id": agent["id"], "character": eliza_v2()})
    back = functions.post("rollback", alice.token, {"agent_id": agent["id"], "version": 1}).get_json()["release"]
    assert back["kind"] == "rollback" and back["status"] == "switched" and back["to_version"] == 1
    after = get(functions, alice, agent["id"])
    assert after["url"] == agent["url"] and after["running_version"] == 1 and after["character_version"] == 1

    # Forward again with no grace period (blue stops at once), then back: a new green on version 1.
    again = release(functions, alice, {"agent_id": agent["id"], "version": 2, "grace_seconds": 0})
    assert again["status"] == "done" and len(processes(agent["id"])) == 1
    back = functions.post("rollback", alice.token, {"agent_id": agent["id"], "version": 1,
                                                    "grace_seconds": 0}).get_json()["release"]
    assert back["status"] == "done" and back["from_version"] == 2 and back["to_version"] == 1
    after = get(functions, alice, agent["id"])
    assert after["running_version"] == 1 and after["character_semver"] == "1.0.0"
    assert len(processes(agent["id"])) == 1
    reply = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "can you help me with this?"})
    assert reply.get_json()["replies"][0]["text"] == "sure. what are you working on?"
    # Version 3 is numbered after the newest, not after the current one.
    resp = functions.post("update_character", alice.token, {"agent_id": agent["id"], "character": eliza_v2()})
    assert resp.get_json()["agent"]["character_version"] == 3


def test_rollback_to_a_version_that_is_not_earlier_is_refused(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    resp = functions.post("rollback", alice.token, {"agent_id": agent["id"], "version": 1})
    assert resp.status_code == 409 and resp.get_json()["error"]["details"][0]["loc"] == ["version"]


def test_a_hibernated_agent_simply_switches_version(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    functions.post("hibernate_agent", alice.token, {"agent_id": agent["id"]})
    switched = release(functions, alice, {"agent_id": agent["id"], "character": eliza_v2()})
    assert switched["status"] == "done" and "hibernated" in switched["reason"]
    assert processes(agent["id"]) == []
    woke = functions.post("wake_agent", alice.token, {"agent_id": agent["id"]}).get_json()["agent"]
    assert woke["running_version"] == 2


def test_another_users_agent_cannot_be_released(
        functions: Functions, alice: User, bob: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    assert functions.post("release_version", bob.token, {"agent_id": agent["id"]}).status_code == 404
    assert functions.post("rollback", bob.token, {"agent_id": agent["id"], "version": 1}).status_code == 404
    assert functions.get("list_releases", bob.token, agent_id=agent["id"]).status_code == 404
