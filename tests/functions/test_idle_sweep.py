"""The batched idle sweep: every idle agent hibernated once, none in use, and a crash or failure repaired."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from helpers import REPO, Functions, User, fixture_characters
from paradyze import db, instances, sweeps
from paradyze.auth import SYSTEM
from paradyze.errors import RuntimeUnavailable
from paradyze.runtimes import get_runtime
from paradyze.settings import get_settings

CHARACTERS = fixture_characters()


def create(functions: Functions, user: User, cleanup: list[str], *, idle_minutes: int = 0) -> dict:
    resp = functions.post("create_agent", user.token, {"character": CHARACTERS["eliza-default"]})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    cleanup.append(agent["id"])
    with db.pool().connection() as conn:
        conn.execute("update public.agents set last_activity_at = now() - make_interval(mins => %s) where id = %s",
                     (idle_minutes, agent["id"]))
    return agent


def row(agent_id: str) -> dict[str, Any]:
    with db.pool().connection() as conn:
        found = conn.execute("select status, runtime_handle, url from public.agents where id = %s",
                             (agent_id,)).fetchone()
    assert found is not None
    return dict(found)


def transitions(agent_id: str) -> list[tuple[str | None, str | None]]:
    with db.pool().connection() as conn:
        rows = conn.execute("select from_status, to_status from public.agent_events where agent_id = %s"
                            " and to_status is not null order by id", (agent_id,)).fetchall()
    return [(r["from_status"], r["to_status"]) for r in rows]


def test_a_batch_hibernates_every_idle_agent_and_no_active_one(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    idle = [create(functions, alice, cleanup_agents, idle_minutes=90) for _ in range(3)]
    active = create(functions, alice, cleanup_agents)
    handles = {a["id"]: row(a["id"])["runtime_handle"] for a in idle}

    result = sweeps.hibernate_idle(SYSTEM, batch=2)  # two batches

    assert {a["id"] for a in idle} <= set(result["hibernated"]) and active["id"] not in result["hibernated"]
    assert not result["failed"]
    for a in idle:
        assert row(a["id"]) == {"status": "hibernated", "runtime_handle": None, "url": None}
        assert not get_runtime("process").alive(handles[a["id"]]), "its process was stopped"
        assert transitions(a["id"])[-2:] == [("running", "hibernating"), ("hibernating", "hibernated")]
    assert row(active["id"])["status"] == "running"
    events = functions.get("agent_events", alice.token, agent_id=idle[0]["id"]).get_json()["events"]
    assert events[0]["reason"] == "idle past its policy" and events[0]["actor"] == "system"
    assert events[0]["duration_ms"] is not None
    # A hibernated agent answers the next message, woken by it.
    resp = functions.post("send_message", alice.token, {"agent_id": idle[0]["id"], "text": "back?"})
    assert resp.status_code == 200 and resp.get_json()["woke"] and resp.get_json()["replies"]


def test_an_agent_with_a_message_in_flight_is_left_running(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents, idle_minutes=90)
    with db.message_in_flight(agent["id"], timeout=5):  # as send_message holds it while delivering
        result = sweeps.hibernate_idle(SYSTEM)
    assert agent["id"] in result["active"] and agent["id"] not in result["hibernated"]
    assert row(agent["id"])["status"] == "running"
    assert transitions(agent["id"])[-1] == ("provisioning", "running")  # not even marked


def test_a_message_during_the_stop_waits_and_wakes_the_agent(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    agent = create(functions, alice, cleanup_agents, idle_minutes=90)
    answers: list[Any] = []
    sent = threading.Thread(target=lambda: answers.append(functions.post(
        "send_message", alice.token, {"agent_id": agent["id"], "text": "are you there?"})))

    def stop_while_a_message_arrives(target: Any, **how: Any) -> None:
        if target.id == agent["id"]:
            sent.start()
            time.sleep(0.5)  # the message reads `hibernating` and waits for the agent's lock
            assert not answers, "the message must not be answered by an agent being stopped"
        instances.stop_instance(target, **how)

    monkeypatch.setattr(sweeps, "stop_instance", stop_while_a_message_arrives)
    result = sweeps.hibernate_idle(SYSTEM)
    sent.join(60)
    assert agent["id"] in result["hibernated"]
    assert answers[0].status_code == 200, answers[0].get_json()
    assert answers[0].get_json()["woke"] is True and answers[0].get_json()["replies"]
    assert row(agent["id"])["status"] == "running"
    assert transitions(agent["id"])[-4:] == [("running", "hibernating"), ("hibernating", "hibernated"),
                                             ("hibernated", "waking"), ("waking", "running")]


def test_an_agent_busy_with_another_operation_is_skipped(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents, idle_minutes=90)
    with db.agent_lock(agent["id"]):  # as a manual hibernate, a wake or a delete holds it
        result = sweeps.hibernate_idle(SYSTEM)
    assert agent["id"] not in result["hibernated"] and agent["id"] not in result["failed"]
    assert row(agent["id"])["status"] == "running"
    assert agent["id"] in sweeps.hibernate_idle(SYSTEM)["hibernated"]  # the next sweep takes it


def test_two_sweeps_at_once_hibernate_each_agent_once(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agents = [create(functions, alice, cleanup_agents, idle_minutes=90) for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: sweeps.hibernate_idle(SYSTEM, batch=2), range(2)))
    ids = {a["id"] for a in agents}
    first, second = (set(r["hibernated"]) & ids for r in results)
    assert first | second == ids and not first & second
    assert not any(r["failed"] for r in results)
    for a in agents:
        assert transitions(a["id"]).count(("hibernating", "hibernated")) == 1
        assert transitions(a["id"]).count(("running", "hibernating")) == 1


def test_a_failed_stop_is_reported_and_finished_by_the_stuck_sweep(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    agent = create(functions, alice, cleanup_agents, idle_minutes=90)
    handle = row(agent["id"])["runtime_handle"]

    def unreachable(target: Any, **how: Any) -> None:
        raise RuntimeUnavailable("the runtime did not answer")

    monkeypatch.setattr(sweeps, "stop_instance", unreachable)
    result = sweeps.hibernate_idle(SYSTEM)
    assert agent["id"] in result["failed"]
    assert row(agent["id"])["status"] == "hibernating"
    monkeypatch.undo()
    assert agent["id"] in sweeps.finish_stuck(SYSTEM, older_than=timedelta(0))
    assert row(agent["id"])["status"] == "hibernated"
    assert not get_runtime("process").alive(handle)


@pytest.mark.parametrize("step", ["idle:claimed", "idle:stopped"])
def test_a_crash_between_claim_and_finish_is_repaired(
        functions: Functions, alice: User, cleanup_agents: list[str], step: str) -> None:
    agent = create(functions, alice, cleanup_agents, idle_minutes=90)
    handle = row(agent["id"])["runtime_handle"]
    # The sweep in a process of its own, which dies at the step (with its locks' session).
    env = {**os.environ, "PARADYZE_TEST_CRASH_AFTER": step,
           "DATABASE_URL": db.database_url(get_settings())}
    crashed = subprocess.run(
        [sys.executable, "-c", "from paradyze import sweeps; from paradyze.auth import SYSTEM;"
                               " sweeps.hibernate_idle(SYSTEM)"],
        cwd=REPO / "functions", env=env, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    assert row(agent["id"])["status"] == "hibernating"
    assert get_runtime("process").alive(handle) == (step == "idle:claimed")

    assert agent["id"] in sweeps.finish_stuck(SYSTEM, older_than=timedelta(0))
    assert row(agent["id"])["status"] == "hibernated"
    assert not get_runtime("process").alive(handle), "no process is left behind"
    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "still you?"})
    assert resp.status_code == 200 and resp.get_json()["replies"]
