"""Hibernation like the best hosts: idle sweep, wake-on-message, drain, stuck sweeps, crash loops."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from helpers import Functions, User, fixture_characters
from paradyze import agent_keys, db, reconcile, sweeps
from paradyze.auth import SYSTEM
from paradyze.settings import get_settings

CHARACTERS = fixture_characters()


def create(functions: Functions, user: User, cleanup: list[str], **policy: object) -> dict:
    body: dict = {"character": CHARACTERS["eliza-default"]}
    if policy:
        body["policy"] = policy
    resp = functions.post("create_agent", user.token, body)
    assert resp.status_code == 201, resp.get_json()
    cleanup.append(resp.get_json()["agent"]["id"])
    return resp.get_json()["agent"]


def set_idle_for(agent_id: str, minutes: int) -> None:
    with db.pool().connection() as conn:
        conn.execute("update public.agents set last_activity_at = now() - make_interval(mins => %s) where id = %s",
                     (minutes, agent_id))


def status_of(functions: Functions, user: User, agent_id: str) -> dict:
    return functions.get("get_agent", user.token, agent_id=agent_id).get_json()["agent"]


def test_idle_sweep_hibernates_only_agents_idle_past_their_policy(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    idle = create(functions, alice, cleanup_agents)
    active = create(functions, alice, cleanup_agents)
    opted_out = create(functions, alice, cleanup_agents, auto_hibernate=False)
    patient = create(functions, alice, cleanup_agents, idle_timeout_minutes=240)
    set_idle_for(idle["id"], 61)
    set_idle_for(opted_out["id"], 600)
    set_idle_for(patient["id"], 120)
    functions.post("send_message", alice.token, {"agent_id": active["id"], "text": "I am here"})
    set_idle_for(active["id"], 0)

    resp = functions.post("hibernate_idle", admin_token)
    assert resp.status_code == 200, resp.get_json()
    assert idle["id"] in resp.get_json()["hibernated"]
    assert status_of(functions, alice, idle["id"])["status"] == "hibernated"
    for agent in (active, opted_out, patient):
        assert status_of(functions, alice, agent["id"])["status"] == "running", agent["id"]
    events = functions.get("agent_events", alice.token, agent_id=idle["id"]).get_json()["events"]
    assert events[0]["reason"] == "idle past its policy" and events[0]["actor"] == "admin"


def test_agent_heartbeat_keeps_it_awake(functions: Functions, alice: User, admin_token: str,
                                        cleanup_agents: list[str]) -> None:
    import requests

    agent = create(functions, alice, cleanup_agents)
    # A message that reaches the agent without the platform (its own client) still counts.
    channel, someone = str(uuid.uuid4()), str(uuid.uuid4())
    sent = requests.post(f"{agent['url']}/api/messaging/channels/{channel}/messages", timeout=5,
                         headers={"X-API-KEY": agent_keys.api_key(agent["id"])},
                         json={"author_id": someone, "content": "hi", "transport": "http",
                               "message_server_id": "00000000-0000-0000-0000-000000000000"})
    assert sent.status_code == 201, sent.text
    set_idle_for(agent["id"], 120)
    result = functions.post("hibernate_idle", admin_token).get_json()
    assert agent["id"] in result["active"] and agent["id"] not in result["hibernated"]
    assert status_of(functions, alice, agent["id"])["status"] == "running"


def test_two_idle_sweeps_at_once_are_safe(functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agents = [create(functions, alice, cleanup_agents) for _ in range(3)]
    for a in agents:
        set_idle_for(a["id"], 90)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: sweeps.hibernate_idle(SYSTEM), range(2)))
    assert not any(r["failed"] for r in results)
    assert all(status_of(functions, alice, a["id"])["status"] == "hibernated" for a in agents)
    for a in agents:
        events = functions.get("agent_events", alice.token, agent_id=a["id"]).get_json()["events"]
        assert sum(e["to_status"] == "hibernated" for e in events) == 1


def test_message_to_a_hibernated_agent_wakes_it_and_returns_the_reply(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    functions.post("hibernate_agent", alice.token, {"agent_id": agent["id"]})
    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "can you help me?"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["woke"] is True
    assert resp.get_json()["replies"][0]["text"]
    assert status_of(functions, alice, agent["id"])["status"] == "running"


def test_many_messages_during_one_wake_cause_one_wake(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    functions.post("hibernate_agent", alice.token, {"agent_id": agent["id"]})
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(
            lambda i: functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": f"hi {i}"}),
            range(10)))
    assert [r.status_code for r in results] == [200] * 10
    assert all(r.get_json()["replies"] for r in results)
    events = functions.get("agent_events", alice.token, agent_id=agent["id"]).get_json()["events"]
    assert sum(e["to_status"] == "waking" for e in events) == 1
    assert status_of(functions, alice, agent["id"])["message_count"] >= 20  # 10 in, 10 replies out


def test_wake_timeout_is_503_and_the_message_is_not_delivered(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from paradyze.agent_client import AgentClient

    agent = create(functions, alice, cleanup_agents)
    functions.post("hibernate_agent", alice.token, {"agent_id": agent["id"]})
    before = status_of(functions, alice, agent["id"])["message_count"]
    slow = AgentClient.wait_healthy

    def slow_health(*args: object, **kwargs: object) -> None:
        time.sleep(1.5)
        slow(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AgentClient, "wait_healthy", slow_health)
    resp = functions.post("send_message", alice.token,
                          {"agent_id": agent["id"], "text": "anyone?", "wake_timeout_s": 0.5})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"].isdigit()
    assert "not delivered" in resp.get_json()["error"]["message"]
    # No thread goes on after the answer: the start is left under way (waking) or, when health
    # answered in time, done; either way the message was not delivered.
    after = status_of(functions, alice, agent["id"])
    assert after["status"] in ("waking", "running")
    assert after["message_count"] == before
    monkeypatch.undo()
    # The next message finds that start and finishes it (or the agent up), and is delivered.
    again = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "anyone?"})
    assert again.status_code == 200 and again.get_json()["replies"]
    assert status_of(functions, alice, agent["id"])["status"] == "running"


def test_hibernate_waits_for_messages_in_flight(functions: Functions, alice: User,
                                                cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    done = threading.Event()
    with db.message_in_flight(agent["id"], timeout=5):  # as send_message holds it while delivering
        threading.Thread(target=lambda: (functions.post("hibernate_agent", alice.token, {"agent_id": agent["id"]}),
                                         done.set()), daemon=True).start()
        for _ in range(100):
            if status_of(functions, alice, agent["id"])["status"] == "hibernating":
                break
            time.sleep(0.02)
        time.sleep(0.3)
        assert not done.is_set(), "hibernate must not stop the agent while a message is in flight"
        assert status_of(functions, alice, agent["id"])["status"] == "hibernating"
    assert done.wait(10)
    assert status_of(functions, alice, agent["id"])["status"] == "hibernated"


def test_the_idle_sweep_leaves_an_agent_with_a_message_in_flight_awake(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    from paradyze import lifecycle

    agent = create(functions, alice, cleanup_agents)
    with db.message_in_flight(agent["id"], timeout=5):
        after = lifecycle.hibernate(SYSTEM, agent["id"], reason="idle past its policy",
                                    idle_since=datetime.now(UTC) + timedelta(minutes=1))
    assert after.status == "running"


def test_an_operation_stuck_past_its_deadline_is_finished_by_the_sweep(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    waking = create(functions, alice, cleanup_agents)
    hibernating = create(functions, alice, cleanup_agents)
    functions.post("hibernate_agent", alice.token, {"agent_id": waking["id"]})
    old = datetime.now(UTC) - timedelta(minutes=30)
    with db.pool().connection() as conn:
        conn.execute("update public.agents set status = 'waking', desired_state = 'running',"
                     " transition_started_at = %s where id = %s", (old, waking["id"]))
        conn.execute("update public.agents set status = 'hibernating', desired_state = 'hibernated',"
                     " transition_started_at = %s where id = %s", (old, hibernating["id"]))
    finished = sweeps.finish_stuck(SYSTEM)
    assert {waking["id"], hibernating["id"]} <= set(finished)
    assert status_of(functions, alice, waking["id"])["status"] == "running"
    assert status_of(functions, alice, hibernating["id"])["status"] == "hibernated"
    assert functions.post("send_message", alice.token, {"agent_id": waking["id"], "text": "ok?"}).status_code == 200


def test_a_crash_looping_agent_ends_in_error(functions: Functions, alice: User, admin_token: str,
                                             cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "max_restarts", 2)
    monkeypatch.setattr(reconcile, "_backoff", lambda crashes: 0.0)
    agent = create(functions, alice, cleanup_agents)
    for attempt in range(3):
        with db.pool().connection() as conn:
            handle = conn.execute("select runtime_handle from public.agents where id = %s",
                                  (agent["id"],)).fetchone()["runtime_handle"]
        os.kill(json.loads(handle)["pid"], signal.SIGKILL)
        time.sleep(0.2)
        functions.get("health_check", admin_token)
        now = status_of(functions, alice, agent["id"])
        if attempt < 2:
            assert now["status"] == "running" and now["restart_count"] == attempt + 1
    assert now["status"] == "error"
    assert "crashed 3 times" in now["status_reason"]
    # No more restarts: the next health check leaves it alone, and reports it.
    report = functions.get("health_check", admin_token).get_json()
    mine = next(a for a in report["agents"] if a["agent_id"] == agent["id"])
    assert mine["ok"] is False and status_of(functions, alice, agent["id"])["restart_count"] == 3


def test_activity_after_the_sweep_looked_keeps_the_agent_awake(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    from paradyze import lifecycle

    agent = create(functions, alice, cleanup_agents)
    looked = datetime.now(UTC) - timedelta(seconds=30)  # the sweep's cutoff; the agent was just created
    after = lifecycle.hibernate(SYSTEM, agent["id"], reason="idle past its policy", idle_since=looked)
    assert after.status == "running"


def test_the_sweep_works_through_every_batch(functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agents = [create(functions, alice, cleanup_agents) for _ in range(3)]
    for a in agents:
        set_idle_for(a["id"], 90)
    result = sweeps.hibernate_idle(SYSTEM, batch=1)
    assert {a["id"] for a in agents} <= set(result["hibernated"])
    assert result["complete"]
