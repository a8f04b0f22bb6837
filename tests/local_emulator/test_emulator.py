"""The running local emulator over real HTTP: restarts, crashes and races leave one agent, never zero or two."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import subprocess
import sys

import pytest
import requests

from helpers import REPO, Emulator, agent_processes, fixture_characters

pytestmark = pytest.mark.e2e
CHARACTERS = fixture_characters()


def create(emu: Emulator, name: str = "eliza-default", **headers: str) -> dict:
    resp = emu.post("create_agent", {"character": CHARACTERS[name]}, headers=headers)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["agent"]


def processes_of(emu: Emulator) -> dict[str, list[int]]:
    return agent_processes("e2e-")


def test_full_tour_over_http(emulator: Emulator) -> None:
    user = emulator.user()
    for name in sorted(CHARACTERS):
        resp = emulator.post("create_agent", {"character": CHARACTERS[name]}, token=user.token)
        assert resp.status_code == 201, resp.text
        agent = resp.json()["agent"]
        assert agent["status"] == "running"
        reply = emulator.post("send_message", {"agent_id": agent["id"], "text": "hi"}, token=user.token)
        assert reply.status_code == 200 and reply.json()["replies"][0]["text"]
    agents = emulator.get("list_agents", token=user.token).json()["agents"]
    assert len(agents) == len(CHARACTERS)
    first = agents[0]["id"]
    assert emulator.post("hibernate_agent", {"agent_id": first}, token=user.token).json()["agent"]["status"] == \
        "hibernated"
    assert first not in processes_of(emulator)
    assert emulator.post("wake_agent", {"agent_id": first}, token=user.token).json()["agent"]["status"] == "running"
    assert len(processes_of(emulator)[first]) == 1
    assert emulator.post("backup_agents").status_code == 201
    health = emulator.get("health_check").json()
    assert health["status"] == "ok", health
    assert requests.get(f"{emulator.url}/openapi.json", timeout=5).json()["paths"]
    other = emulator.user()
    assert emulator.get("get_agent", token=other.token, agent_id=first).status_code == 404


def test_graceful_restart_stops_agents_and_brings_them_back(emulator: Emulator) -> None:
    agent = create(emulator)
    assert len(processes_of(emulator)[agent["id"]]) == 1
    emulator.stop(signal.SIGTERM)
    assert agent["id"] not in processes_of(emulator), "Ctrl-C must stop every agent the emulator started"
    emulator.start()
    after = emulator.get("get_agent", agent_id=agent["id"]).json()["agent"]
    assert after["status"] == "running"
    assert len(processes_of(emulator)[agent["id"]]) == 1
    assert emulator.post("send_message", {"agent_id": agent["id"], "text": "back?"}).status_code == 200


def test_crashed_emulator_adopts_live_agents_without_duplicates(emulator: Emulator) -> None:
    agent = create(emulator)
    [pid] = processes_of(emulator)[agent["id"]]
    emulator.stop(signal.SIGKILL)
    assert processes_of(emulator)[agent["id"]] == [pid], "agents outlive a crash of the functions"
    emulator.start()
    assert processes_of(emulator)[agent["id"]] == [pid], "the live agent is adopted, not started twice"
    after = emulator.get("get_agent", agent_id=agent["id"]).json()["agent"]
    assert after["status"] == "running" and after["url"] == agent["url"]


@pytest.mark.parametrize("step", ["create:rows", "start:launched", "start:recorded"])
def test_crash_during_create_leaves_exactly_one_agent(emulator: Emulator, step: str) -> None:
    emulator.stop()
    emulator.start(PARADYZE_TEST_CRASH_AFTER=step)
    with pytest.raises(requests.ConnectionError):
        emulator.post("create_agent", {"character": CHARACTERS["sam-altman"]}, headers={
            "Idempotency-Key": f"crash-{step}"})
    emulator.proc.wait(timeout=30)
    emulator.start()
    retry = emulator.post("create_agent", {"character": CHARACTERS["sam-altman"]}, headers={
        "Idempotency-Key": f"crash-{step}"})
    assert retry.status_code == 200, retry.text
    agent = retry.json()["agent"]
    assert agent["status"] == "running"
    assert len(emulator.get("list_agents").json()["agents"]) == 1
    assert len(processes_of(emulator)[agent["id"]]) == 1
    assert emulator.post("send_message", {"agent_id": agent["id"], "text": "hi"}).status_code == 200


@pytest.mark.parametrize("step,operation", [("hibernate:marked", "hibernate_agent"),
                                            ("hibernate:stopped", "hibernate_agent"),
                                            ("wake:marked", "wake_agent"), ("start:launched", "wake_agent"),
                                            ("start:recorded", "wake_agent"), ("delete:marked", "delete_agent")])
def test_crash_during_hibernate_or_wake_is_finished_by_the_restart(
        emulator: Emulator, step: str, operation: str) -> None:
    agent = create(emulator)
    if operation == "wake_agent":
        emulator.post("hibernate_agent", {"agent_id": agent["id"]})
    emulator.stop()
    emulator.start(PARADYZE_TEST_CRASH_AFTER=step)
    with pytest.raises(requests.ConnectionError):
        emulator.post(operation, {"agent_id": agent["id"]})
    emulator.proc.wait(timeout=30)
    emulator.start()
    emulator.post("hibernate_idle")  # the sweep
    after = emulator.get("get_agent", agent_id=agent["id"])
    running = processes_of(emulator).get(agent["id"], [])
    if operation == "delete_agent":
        # The interrupted delete was finished at start-up: nothing of the agent is left.
        assert emulator.get("get_agent", agent_id=agent["id"]).status_code == 404
        assert running == []
        assert emulator.post(operation, {"agent_id": agent["id"]}).status_code == 404
        return
    after = after.json()["agent"]
    if operation == "hibernate_agent":
        assert after["status"] == "hibernated" and running == []
    else:
        assert after["status"] == "running" and len(running) == 1
    # Either way the same request again is safe and ends where it should.
    again = emulator.post(operation, {"agent_id": agent["id"]})
    assert again.status_code == 200, again.text
    assert len(processes_of(emulator).get(agent["id"], [])) == (1 if operation == "wake_agent" else 0)


def test_fifty_concurrent_wakes_start_one_agent(emulator: Emulator) -> None:
    agent = create(emulator)
    emulator.post("hibernate_agent", {"agent_id": agent["id"]})
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: emulator.post("wake_agent", {"agent_id": agent["id"]}), range(50)))
    assert all(r.status_code == 200 for r in results), {r.status_code for r in results}
    states = {(r.json()["agent"]["status"], r.json()["agent"]["url"]) for r in results}
    assert len(states) == 1 and next(iter(states))[0] == "running"
    events = emulator.get("agent_events", agent_id=agent["id"]).json()["events"]
    assert sum(1 for e in events if e["to_status"] == "waking") == 1
    assert len(processes_of(emulator)[agent["id"]]) == 1


def test_benchmark_script_runs(emulator: Emulator) -> None:
    out = subprocess.run([sys.executable, str(REPO / "local_emulator" / "benchmark.py"), "--runs", "1",
                          "--url", emulator.url, "--token", emulator.token, "--agent", "reference", "--json"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"create", "hibernate", "wake", "floor"} <= set(figures["reference on process"])
