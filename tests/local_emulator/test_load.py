"""The load benchmark itself, in a few seconds: every step runs, answers and reports (the real run is a
benchmark, never a test: `python -m local_emulator.load`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_short_load_run_reports_every_step() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local_emulator.load", "--workers", "2", "--threads", "4", "--agents", "2",
         "--clients", "1,4", "--seconds", "1", "--soak-seconds", "2", "--rate", "5", "--list-agents", "120",
         "--json"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == ["send_message, 1 clients", "send_message, 4 clients",
                           "open loop: send_message at 5/s for 2 s", "list_agents, first page of 120, 1 client(s)",
                           "list_agents, any page of 120, 1 client(s)", "list_agents, any page of 120, 8 client(s)"]
    for step in steps.values():
        assert step["ok"] > 0 and step["errors"] == {} and step["p50"] <= step["p99"], step
        # Where the CPU went, by role: the serving processes' sum is the step's CPU per request.
        by_role = step["cpu_ms_by_role"]
        assert set(by_role) == {"platform", "postgres", "agents", "load"}, step
        assert abs(step["cpu_ms_per_req"] - by_role["platform"] - by_role["postgres"] - by_role["agents"]) < 0.05
    # Each role spent some CPU on the messages (a process's CPU time counts in 10 ms ticks, so the
    # soak's 10 messages alone may show none for one of them).
    closed = [steps[name]["cpu_ms_by_role"] for name in ("send_message, 1 clients", "send_message, 4 clients")]
    for role in ("platform", "postgres", "agents", "load"):
        assert sum(by_role[role] for by_role in closed) > 0, (role, closed)
    assert steps["open loop: send_message at 5/s for 2 s"]["ok"] == 10
    for when in ("usage_start", "usage_end"):
        # The emulator, gunicorn's arbiter and its two workers.
        assert report[when]["processes"] == 4 and report[when]["rss_mib"] > 0 and report[when]["open_files"] > 0
