"""One scripted day of an agent over real HTTP, then what an operator sees: Prometheus counts, JSON logs, traces.

create, three messages, hibernate, a message that wakes it, a crash (kill -9) and the health check
that repairs it; then /metrics shows those counts, every log line is Cloud Logging JSON with the
request's trace, one trace covers the wake-on-message from HTTP to the agent, and neither the
planted secret nor what the user wrote appears in any log, span or metric.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from helpers import Emulator, agent_processes, fixture_characters

pytestmark = pytest.mark.e2e
SECRET = f"planted{uuid.uuid4().hex}"
USER_TEXT = f"my private words {uuid.uuid4().hex[:10]}"
TRACE_KEY = "logging.googleapis.com/trace"


def metric_samples(emu: Emulator) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = requests.get(f"{emu.url}/metrics", timeout=30).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of name's samples whose labels include labels (0 when there is none)."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def spans(home: Path, predicate: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The spans in the emulator's trace file, waiting until predicate(spans) holds."""
    path = home / "traces.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        found = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        if predicate(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_scripted_scenario_shows_in_metrics_logs_and_traces(emulator: Emulator) -> None:
    character = json.loads(json.dumps(fixture_characters()["eliza-default"]))
    character.setdefault("settings", {}).setdefault("secrets", {})["PLANTED_TOKEN"] = SECRET
    user = emulator.user()
    created = emulator.post("create_agent", {"character": character}, token=user.token)
    assert created.status_code == 201, created.text
    agent_id = created.json()["agent"]["id"]

    replies = 0
    for _ in range(3):
        sent = emulator.post("send_message", {"agent_id": agent_id, "text": USER_TEXT}, token=user.token)
        assert sent.status_code == 200, sent.text
        replies += len(sent.json()["replies"])
    assert emulator.post("hibernate_agent", {"agent_id": agent_id}, token=user.token).status_code == 200
    woke = emulator.post("send_message", {"agent_id": agent_id, "text": USER_TEXT}, token=user.token,
                         headers={"X-Request-Id": "scenario-wake-0001"})
    assert woke.status_code == 200 and woke.json()["woke"], woke.text
    assert woke.headers["X-Request-Id"] == "scenario-wake-0001"
    replies += len(woke.json()["replies"])

    for pid in agent_processes("e2e-")[agent_id]:
        os.killpg(pid, signal.SIGKILL)  # a crash of the whole agent
    repaired = emulator.get("health_check")
    assert repaired.status_code == 200 and repaired.json()["repairs"]["restarted"] == [agent_id], repaired.text
    after = emulator.get("health_check").json()  # the repaired agent, with its memory
    assert after["status"] == "ok", after

    # The idle sweep, called as Cloud Scheduler (and the local scheduler) calls it.
    swept = emulator.post("hibernate_idle", headers={"X-CloudScheduler": "true",
                                                     "X-CloudScheduler-JobName": "paradyze-e2e-idle-sweep"})
    assert swept.status_code == 200 and swept.json()["hibernated"] == [], swept.text

    m = metric_samples(emulator)
    mine = {"agent_id": agent_id}
    assert value(m, "paradyze_agent_messages_in_total", **mine) == 4
    assert value(m, "paradyze_agent_messages_out_total", **mine) == replies >= 4
    assert value(m, "paradyze_agent_reply_latency_seconds_count", **mine) == 4
    assert value(m, "paradyze_agent_wakes_total", cause="message", **mine) == 1
    assert value(m, "paradyze_agent_wakes_total", cause="reconcile", **mine) == 1
    assert value(m, "paradyze_agent_wake_latency_seconds_count", **mine) == 2
    assert value(m, "paradyze_agent_restarts_total", **mine) == 1
    assert value(m, "paradyze_agent_errors_total", **mine) == 0
    assert value(m, "paradyze_agents", status="running") == 1 and value(m, "paradyze_agents", status="error") == 0
    assert value(m, "paradyze_agent_memory_rss_bytes", **mine) > 10_000_000
    assert value(m, "paradyze_agent_uptime_seconds", **mine) >= 0
    assert value(m, "paradyze_agent_cpu_time_seconds_total", **mine) > 0
    assert value(m, "paradyze_function_duration_seconds_count", operation="send_message", status="200") == 4
    assert value(m, "paradyze_function_duration_seconds_count", operation="create_agent", status="201") == 1
    assert value(m, "paradyze_sweep_duration_seconds_count", sweep="health") == 2
    assert value(m, "paradyze_sweep_duration_seconds_count", sweep="idle") == 1
    assert value(m, "paradyze_scheduler_jobs_total", operation="hibernate_idle", outcome="ok") == 1
    assert value(m, "paradyze_db_pool_connections", state="idle") >= 1
    # Labels come from a bounded set: ids, operations, statuses, fixed words; never what a user wrote.
    allowed = {"agent_id", "operation", "status", "cause", "kind", "sweep", "state", "le", "outcome"}
    for (name, labels), _ in m.items():
        if name.startswith("paradyze_"):
            assert {k for k, _ in labels} <= allowed, (name, labels)

    # One trace covers the wake-on-message end to end: HTTP, database, runtime and agent.
    def wake_trace(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        roots = [s for s in found if s["name"] == "POST /send_message"
                 and s["attributes"].get("paradyze.request_id") == "scenario-wake-0001"]
        return [s for s in found if roots and s["trace_id"] == roots[0]["trace_id"]]

    names = {s["name"] for s in wake_trace(spans(emulator.home, lambda f: "agent.start" in
                                                 {s["name"] for s in wake_trace(f)}))}
    assert {"POST /send_message", "db.transaction", "agent.start", "runtime.start", "agent.http"} <= names, names
    create_trace = spans(emulator.home, lambda f: any(s["name"] == "POST /create_agent" for s in f))
    root = next(s for s in create_trace if s["name"] == "POST /create_agent")
    assert {"runtime.start", "agent.http", "db.transaction"} <= {
        s["name"] for s in create_trace if s["trace_id"] == root["trace_id"]}

    # The request id reached the agent, which logs it.
    emulator.post("send_message", {"agent_id": agent_id, "text": USER_TEXT}, token=user.token,
                  headers={"X-Request-Id": "scenario-after-0002"})
    agent_log = "\n".join(emulator.get("agent_logs", agent_id=agent_id, tail=500).json()["lines"])
    assert "request_id=scenario-after-0002" in agent_log

    # Logs: Cloud Logging JSON, with the trace, the request id and the labels; never the secret or the text.
    lines = [json.loads(line) for line in emulator.log.read_text().splitlines() if line.startswith("{")]
    woke_lines = [e for e in lines if e.get("logging.googleapis.com/labels", {}).get("request_id")
                  == "scenario-wake-0001"]
    assert woke_lines, "no log line of the wake-on-message request"
    for entry in woke_lines:
        assert entry["severity"] in ("INFO", "WARNING", "ERROR")
        assert entry[TRACE_KEY].startswith("projects/local/traces/")
        assert entry["logging.googleapis.com/labels"]["operation"] == "send_message"
        assert entry["logging.googleapis.com/labels"]["agent_id"] == agent_id
        assert entry["logging.googleapis.com/labels"]["user_id"] == user.id
    assert any(e["message"].endswith("waking -> running") for e in woke_lines)
    everything = emulator.log.read_text() + (emulator.home / "traces.jsonl").read_text() + \
        requests.get(f"{emulator.url}/metrics", timeout=30).text
    assert SECRET not in everything
    assert USER_TEXT not in everything
