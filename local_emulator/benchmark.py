"""Latency benchmark: median of N runs for create, hibernate, wake and wake-on-message, beside the bare floor.

    python local_emulator/benchmark.py --runs 10                # starts its own emulator in a temp folder
    python local_emulator/benchmark.py --runs 10 --runtime docker
    python local_emulator/benchmark.py --url http://127.0.0.1:8080 \
        --token "$(.venv/bin/python -m local_emulator.admin_token)"
    python local_emulator/benchmark.py --idle-agents 10000 --idle 1000   # hibernate_idle control-plane time

The floor is the same agent started without the platform (a bare process, or a bare `docker run` of
the same image) until it answers health, so the platform's overhead shows as a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))
FIXTURE = REPO.parent / "shared" / "fixtures" / "characters" / "eliza-default.character.json"
AGENT = REPO / "local_emulator" / "reference_agent.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--runtime", choices=["process", "docker"], default="process")
    parser.add_argument("--url", help="a running emulator; default: start one in a temp folder")
    parser.add_argument("--token", help="its admin token")
    parser.add_argument("--character", type=Path, default=FIXTURE)
    parser.add_argument("--idle-agents", type=int, default=0, help="also time hibernate_idle over this many rows")
    parser.add_argument("--idle", type=int, default=1000, help="how many of them are idle")
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures at the end")
    args = parser.parse_args()

    character = json.loads(args.character.read_text())
    emulator = None
    if not args.url:
        emulator = _Emulator(args.runtime)
        args.url, args.token = emulator.url, emulator.token
    try:
        figures = {args.runtime: _lifecycle(args.url, args.token, character, args.runs, args.runtime)}
        if args.idle_agents:
            figures["hibernate_idle"] = _idle_sweep(args.idle_agents, args.idle)
    finally:
        if emulator:
            emulator.stop()
    _print(figures)
    if args.json:
        print(json.dumps(figures))
    return 0


def _lifecycle(url: str, token: str, character: dict, runs: int, runtime: str) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    samples: dict[str, list[float]] = {"create": [], "hibernate": [], "wake": [], "wake_on_message": [],
                                       "message": [], "floor": []}

    def call(name: str, payload: dict) -> dict:
        resp = requests.post(f"{url}/{name}", json=payload, headers=headers, timeout=300)
        resp.raise_for_status()
        return resp.json()

    for _ in range(runs):
        t, created = _timed(call, "create_agent", {"character": character, "runtime": runtime})
        samples["create"].append(t)
        ref = {"agent_id": created["agent"]["id"]}
        samples["message"].append(_timed(call, "send_message", {**ref, "text": "hello"})[0])
        samples["hibernate"].append(_timed(call, "hibernate_agent", ref)[0])
        samples["wake"].append(_timed(call, "wake_agent", ref)[0])  # returns once it answers health
        call("hibernate_agent", ref)
        t, result = _timed(call, "send_message", {**ref, "text": "are you awake?"})
        assert result["woke"] and result["replies"], result
        samples["wake_on_message"].append(t)
        call("delete_agent", ref)
        samples["floor"].append(_floor(runtime, Path(tempfile.mkdtemp()) / "c.json", character))
    return samples


def _timed(fn: Callable[..., dict], *args: object) -> tuple[float, dict]:
    began = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - began) * 1000, result


def _floor(runtime: str, path: Path, character: dict) -> float:
    """The same agent started with no platform at all, until it answers health."""
    path.write_text(json.dumps(character))
    port = _free_port()
    began = time.perf_counter()
    if runtime == "docker":
        from paradyze.settings import get_settings

        settings = get_settings()
        cid = subprocess.check_output(
            ["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:{settings.docker_agent_port}",
             "-v", f"{path}:{settings.docker_character_path}:ro", settings.docker_image], text=True).strip()
        _wait_health(port)
        elapsed = (time.perf_counter() - began) * 1000
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
        return elapsed
    proc = subprocess.Popen([sys.executable, str(AGENT), "--character", str(path), "--port", str(port),
                             "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_health(port)
    elapsed = (time.perf_counter() - began) * 1000
    proc.terminate()
    proc.wait()
    return elapsed


def _wait_health(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/server/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.01)
    raise RuntimeError("the agent never answered health")


def _idle_sweep(total: int, idle: int) -> dict[str, list[float]]:
    """hibernate_idle's control-plane time over `total` agent rows of which `idle` are idle.

    Runs against a scratch embedded Postgres with a runtime whose stop is a no-op, so what is
    measured is the query, the locks and the row transitions, not process shutdown.
    """
    home = Path(tempfile.mkdtemp(prefix="paradyze-bench-"))
    os.environ["PARADYZE_HOME"] = str(home)
    from paradyze import db, sweeps
    from paradyze.auth import SYSTEM
    from paradyze.runtimes import get_runtime
    from paradyze.settings import get_settings

    get_settings.cache_clear()
    runtime = get_runtime("process")
    runtime.stop = lambda handle, grace: None  # type: ignore[method-assign]
    pool = db.pool()
    with pool.connection() as conn:
        conn.execute("insert into public.characters (id, user_id, name, current_version)"
                     " select gen_random_uuid(), gen_random_uuid(), 'bench', 1 from generate_series(1, %s)",
                     (total,))
        conn.execute(
            "insert into public.agents (user_id, character_id, name, runtime, status, desired_state,"
            " last_activity_at, runtime_handle)"
            " select c.user_id, c.id, 'bench', 'process', 'running', 'running',"
            " now() - case when row_number() over () <= %s then interval '3 hours' else interval '1 minute' end,"
            " '{\"pid\": 1, \"started\": -2, \"port\": 1, \"log\": \"/dev/null\"}'"
            " from public.characters c", (idle,))
        conn.execute("analyze public.agents")
    began = time.perf_counter()
    result = sweeps.hibernate_idle(SYSTEM, budget_s=600)
    elapsed = (time.perf_counter() - began) * 1000
    assert len(result["hibernated"]) == idle, (len(result["hibernated"]), idle)
    db.close()
    shutil.rmtree(home, ignore_errors=True)
    return {"sweep": [elapsed], "per_agent": [elapsed / max(idle, 1)]}


def _print(figures: dict[str, dict[str, list[float]]]) -> None:
    for group, samples in figures.items():
        runs = max(len(v) for v in samples.values())
        print(f"\n{group}  (median of {runs} run{'s' if runs != 1 else ''}, milliseconds)")
        floor = statistics.median(samples["floor"]) if samples.get("floor") else None
        for name, values in samples.items():
            if not values:
                continue
            median = statistics.median(values)
            ratio = f"  {median / floor:5.2f}x floor" if floor and name in ("create", "wake", "wake_on_message") \
                else ""
            print(f"  {name:<16} {median:9.1f}{ratio}")


class _Emulator:
    def __init__(self, runtime: str) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="paradyze-bench-"))
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PARADYZE_HOME": str(self.home), "PARADYZE_RUNTIME": runtime,
               "PARADYZE_INSTANCE": "bench"}
        self.proc = subprocess.Popen([sys.executable, "-m", "local_emulator", "--port", str(port), "--no-console",
                                      "--no-scheduler"], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url, timeout=1).ok:
                    self.token = subprocess.run([sys.executable, "-m", "local_emulator.admin_token"], cwd=REPO,
                                                env=env, capture_output=True, text=True, check=True).stdout.strip()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("the emulator did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.home, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
