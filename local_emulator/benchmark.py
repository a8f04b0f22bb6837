"""Latency benchmark: median of N runs for create, hibernate, wake and wake-on-message, beside the bare floor.

    python local_emulator/benchmark.py --runs 10                # the real ElizaOS, in an emulator of its own
    python local_emulator/benchmark.py --runs 10 --runtime docker
    python local_emulator/benchmark.py --runs 10 --agent reference   # the reference agent (the test double)
    python local_emulator/benchmark.py --url http://127.0.0.1:8080 \
        --token "$(.venv/bin/python -m local_emulator.admin_token)"
    python local_emulator/benchmark.py --no-lifecycle --idle-agents 10000 --idle 1000 --idle-runs 5   # hibernate_idle
    python local_emulator/benchmark.py --no-lifecycle --idle-agents 10000 --idle 1000 --idle-stop-ms 100  # slow stops
    python local_emulator/benchmark.py --runs 10 --scale 100 --running 20 --owners 4   # density (benchmark_density)

The floor is the same agent started without the platform (a bare `elizaos start` of the same
character, a bare reference agent, or a bare `docker run` of the same image) until it answers health,
so the platform's overhead shows as a ratio. With the real ElizaOS and no OPENAI_API_KEY, agents answer
through the test suite's fake OpenAI-compatible model (instant, deterministic replies), so the figures
are the platform's and ElizaOS's own, without a model's latency. `rss_mb` is the resident memory of
all of an idle agent's processes (process runtime) or its container's memory use (docker).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))
sys.path.insert(0, str(REPO))
FIXTURE = REPO.parent / "shared" / "fixtures" / "characters" / "eliza-default.character.json"
AGENT = REPO / "local_emulator" / "reference_agent.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--runtime", choices=["process", "docker"], default="process")
    parser.add_argument("--agent", choices=["elizaos", "reference"], default="elizaos",
                        help="the agent server (for --url, the one that emulator runs)")
    parser.add_argument("--url", help="a running emulator; default: start one in a temp folder")
    parser.add_argument("--token", help="its admin token")
    parser.add_argument("--character", type=Path, default=FIXTURE)
    parser.add_argument("--idle-agents", type=int, default=0, help="also time hibernate_idle over this many rows")
    parser.add_argument("--idle", type=int, default=1000, help="how many of them are idle")
    parser.add_argument("--idle-runs", type=int, default=1, help="time hibernate_idle this many times")
    parser.add_argument("--idle-stop-ms", type=float, default=0.0,
                        help="each runtime stop takes this long in the idle sweep (0: a no-op stop)")
    parser.add_argument("--scale", type=int, default=0,
                        help="also create this many agents of --owners owners, --running of them running")
    parser.add_argument("--running", type=int, default=20)
    parser.add_argument("--owners", type=int, default=4)
    parser.add_argument("--no-lifecycle", action="store_true", help="skip the one-agent lifecycle runs")
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures at the end")
    parser.add_argument("--telemetry-overhead", action="store_true",
                        help="only compare message latency and wake with telemetry off and on (telemetry_overhead.py)")
    args = parser.parse_args()
    if args.telemetry_overhead:
        return _telemetry_overhead(args)

    character = json.loads(args.character.read_text())
    emulator = None
    model = _model_env(args.agent, args.runtime)
    if not args.url and not (args.no_lifecycle and not args.scale):  # the idle sweep alone needs no emulator
        # Many agents of a few owners: the per-user quotas (25 running, 100 in all) are lifted.
        quotas = {"PARADYZE_AGENT_QUOTA_RUNNING": "1000", "PARADYZE_AGENT_QUOTA_TOTAL": "1000"} if args.scale else {}
        emulator = _Emulator(args.runtime, args.agent, {**(model.env if model else {}), **quotas})
        args.url, args.token = emulator.url, emulator.token
    try:
        bench = _Bench(args.runtime, args.agent, model.env if model else {}, emulator.home if emulator else None)
        figures = {}
        if not args.no_lifecycle:
            figures[f"{args.agent} on {args.runtime}"] = _lifecycle(args.url, args.token, character, args.runs, bench)
        if args.scale and emulator:
            from local_emulator import benchmark_density

            figures[f"{args.scale} agents of {args.owners} owners, {args.running} running"] = benchmark_density.density(
                benchmark_density.Api(args.url, args.token), character, runs=args.runs, total=args.scale,
                running=args.running, owners=args.owners, instance_key=benchmark_density.instance_key(emulator.home))
            if not args.no_lifecycle:
                figures[f"{args.scale} agents of {args.owners} owners, {args.running} running"]["floor"] = \
                    figures[f"{args.agent} on {args.runtime}"]["floor"]
        if args.idle_agents:
            name = "hibernate_idle" + (f", stops of {args.idle_stop_ms:g} ms" if args.idle_stop_ms else "")
            figures[name] = _idle_sweep(args.idle_agents, args.idle, args.idle_stop_ms, args.idle_runs)
    finally:
        if emulator:
            emulator.stop()
        if model:
            model.stop()
    _print(figures)
    if args.json:
        print(json.dumps(figures))
    return 0


def _lifecycle(url: str, token: str, character: dict, runs: int, bench: _Bench) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    samples: dict[str, list[float]] = {"create": [], "hibernate": [], "wake": [], "wake_on_message": [],
                                       "message": [], "floor": [], "rss_mb": []}

    def call(name: str, payload: dict) -> dict:
        resp = requests.post(f"{url}/{name}", json=payload, headers=headers, timeout=300)
        resp.raise_for_status()
        return resp.json()

    for _ in range(runs):
        t, created = _timed(call, "create_agent", {"character": character, "runtime": bench.runtime})
        samples["create"].append(t)
        ref = {"agent_id": created["agent"]["id"]}
        samples["message"].append(_timed(call, "send_message", {**ref, "text": "hello"})[0])
        rss = bench.rss_mb(ref["agent_id"])
        if rss is not None:
            samples["rss_mb"].append(rss)
        samples["hibernate"].append(_timed(call, "hibernate_agent", ref)[0])
        samples["wake"].append(_timed(call, "wake_agent", ref)[0])  # returns once it answers health
        call("hibernate_agent", ref)
        t, result = _timed(call, "send_message", {**ref, "text": "are you awake?"})
        assert result["woke"] and result["replies"], result
        samples["wake_on_message"].append(t)
        call("delete_agent", ref)
        samples["floor"].append(bench.floor(character))
    if bench.restarts:
        samples["floor_restart"] = bench.restarts
    return samples


def _telemetry_overhead(args: argparse.Namespace) -> int:
    from local_emulator import telemetry_overhead

    model = _model_env(args.agent, "process")
    try:
        figures = telemetry_overhead.measure(
            lambda runtime, agent, env: _Emulator(runtime, agent, {**env, **(model.env if model else {})}),
            args.agent, json.loads(args.character.read_text()), args.runs)
    finally:
        if model:
            model.stop()
    telemetry_overhead.report(figures)
    if args.json:
        print(json.dumps(figures))
    return 0


def _timed(fn: Callable[..., dict], *args: object) -> tuple[float, dict]:
    began = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - began) * 1000, result


class _Bench:
    """What differs by agent server and runtime: the bare floor and the memory of one agent."""

    def __init__(self, runtime: str, agent: str, model_env: dict[str, str], home: Path | None) -> None:
        os.environ["PARADYZE_AGENT"] = agent
        from paradyze.settings import get_settings

        get_settings.cache_clear()
        self.settings = get_settings()
        self.runtime, self.agent, self.model_env, self.home = runtime, agent, model_env, home
        self.restarts = []  # the bare server started again on its own database, until health answers

    def floor(self, character: dict) -> float:
        """The same agent started with no platform at all, until it answers health."""
        work = Path(tempfile.mkdtemp(prefix="paradyze-floor-"))
        try:
            return self._floor(character, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _floor(self, character: dict, work: Path) -> float:
        if self.agent == "elizaos":
            from paradyze.eliza_character import for_runtime

            character = for_runtime(character, set(self.model_env) | {"OPENAI_API_KEY"})
        path = work / "character.json"
        path.write_text(json.dumps(character))
        port = _free_port()
        if self.runtime == "docker":
            image = self.settings.docker_image if "docker_image" in self.settings.model_fields_set else (
                "paradyze/elizaos:1.7.2" if self.agent == "elizaos" else "paradyze/reference-agent:latest")
            encoded = base64.b64encode(json.dumps(character).encode()).decode()
            began = time.perf_counter()
            cid = subprocess.check_output(
                ["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:3000", "-e", f"CHARACTER_JSON={encoded}",
                 "-e", "PORT=3000", "-e", "SERVER_HOST=0.0.0.0",
                 *[f"--env={k}={v}" for k, v in self.model_env.items()], image], text=True).strip()
            try:
                _wait_health(port)
                return (time.perf_counter() - began) * 1000
            finally:
                subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
        if self.agent == "elizaos":
            eliza = self.settings.elizaos_dir
            cli = eliza / "app/node_modules/@elizaos/cli/dist/index.js"
            argv = [str(eliza / "bun/node_modules/.bin/bun"), str(cli), "start", "--character", str(path),
                    "--port", str(port)]
            env = {"PATH": str(eliza / "bun/node_modules/.bin"), "HOME": str(work), "SERVER_HOST": "127.0.0.1",
                   "ELIZA_NO_AUTO_INSTALL": "true", "PGLITE_DATA_DIR": str(work / "elizadb"), **self.model_env}
        else:
            argv = [sys.executable, str(AGENT), "--character", str(path), "--port", str(port), "--host", "127.0.0.1"]
            env = dict(os.environ)
        first = _bare_start(argv, work, env, port)
        if self.agent == "elizaos":
            # Again on the database the first start made: what a wake does, without the platform.
            self.restarts.append(_bare_start(argv, work, env, port))
        return first

    restarts: list[float]

    def rss_mb(self, agent_id: str) -> float | None:
        """Resident memory of every process of the agent (its home is their working directory)."""
        if self.home is None:
            return None  # an emulator of someone else's: its agents' homes are not known here
        if self.runtime == "docker":
            out = subprocess.run(["docker", "ps", "-q", "--filter", f"label=paradyze.agent_id={agent_id}"],
                                 capture_output=True, text=True).stdout.split()
            if not out:
                return None
            stats = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", out[0]],
                                   capture_output=True, text=True).stdout.split("/")[0].strip()
            return _mib(stats)
        # Its own server's home, or its owner's (shared servers; the admin's agents are the platform's).
        homes = {str(self.home / "agents" / agent_id), str(self.home / "agents" / f"owner-{uuid.UUID(int=0)}")}
        total = 0
        for proc in psutil.process_iter(["cwd", "memory_info"]):
            if proc.info["cwd"] in homes and proc.info["memory_info"] is not None:
                total += proc.info["memory_info"].rss
        return total / 2**20 if total else None


def _bare_start(argv: list[str], work: Path, env: dict[str, str], port: int) -> float:
    began = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait_health(port)
        return (time.perf_counter() - began) * 1000
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _mib(text: str) -> float | None:
    units = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "B": 1 / 2**20}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return None


class _Model:
    """The test suite's fake OpenAI-compatible model, so ElizaOS agents can answer with no network."""

    def __init__(self, runtime: str) -> None:
        from tests.fakes.model_server import FakeModelServer

        host = "127.0.0.1"
        if runtime == "docker":
            # Containers reach this host at their network's gateway, not at its loopback.
            from paradyze.runtimes.docker import DockerRuntime
            from paradyze.settings import get_settings

            host = DockerRuntime(get_settings()).gateway()
        self.server = FakeModelServer(host=host).__enter__()
        self.env = {"OPENAI_API_KEY": "benchmark", "OPENAI_BASE_URL": self.server.base_url}

    def stop(self) -> None:
        self.server.__exit__(None, None, None)


def _model_env(agent: str, runtime: str) -> _Model | None:
    if agent != "elizaos" or os.environ.get("OPENAI_API_KEY"):
        return None
    return _Model(runtime)


def _wait_health(port: int) -> None:
    deadline = time.monotonic() + 300  # a bare ElizaOS boot takes minutes on a loaded 2-core host
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/server/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.01)
    raise RuntimeError("the agent never answered health")


def _idle_sweep(total: int, idle: int, stop_ms: float = 0.0, runs: int = 1) -> dict[str, list[float]]:
    """hibernate_idle's control-plane time over `total` agent rows of which `idle` are idle, runs times.

    Runs against a scratch embedded Postgres with a runtime whose stop is a no-op (or sleeps
    stop_ms), so what is measured is the query, the locks and the row transitions, not process
    shutdown; with stop_ms, how the sweep overlaps slow stops.
    """
    home = Path(tempfile.mkdtemp(prefix="paradyze-bench-"))
    os.environ["PARADYZE_HOME"] = str(home)
    from paradyze import db, sweeps
    from paradyze.auth import SYSTEM
    from paradyze.runtimes import get_runtime
    from paradyze.settings import get_settings

    get_settings.cache_clear()
    runtime = get_runtime("process")
    runtime.stop = lambda handle, grace: time.sleep(stop_ms / 1000)  # type: ignore[method-assign]
    pool = db.pool()
    figures: dict[str, list[float]] = {"sweep": [], "per_agent": []}
    try:
        for _ in range(runs):
            with pool.connection() as conn:
                conn.execute("delete from public.characters")  # and their agents
                conn.execute("insert into public.characters (id, user_id, name, current_version)"
                             " select gen_random_uuid(), gen_random_uuid(), 'bench', 1 from generate_series(1, %s)",
                             (total,))
                conn.execute(
                    "insert into public.agents (user_id, character_id, name, runtime, status, desired_state,"
                    " last_activity_at, runtime_handle)"
                    " select c.user_id, c.id, 'bench', 'process', 'running', 'running',"
                    " now() - case when row_number() over () <= %s then interval '3 hours'"
                    " else interval '1 minute' end,"
                    " '{\"pid\": 1, \"started\": -2, \"port\": 1, \"log\": \"/dev/null\"}'"
                    " from public.characters c", (idle,))
                conn.execute("vacuum analyze public.agents")
            began = time.perf_counter()
            result = sweeps.hibernate_idle(SYSTEM, budget_s=600)
            elapsed = (time.perf_counter() - began) * 1000
            assert len(result["hibernated"]) == idle, (len(result["hibernated"]), idle)
            figures["sweep"].append(elapsed)
            figures["per_agent"].append(elapsed / max(idle, 1))
    finally:
        db.close()
        _stop_postgres(home / "pgdata")  # removing its folder first would leave it running
        shutil.rmtree(home, ignore_errors=True)
    return figures


def _stop_postgres(pgdata: Path) -> None:
    """Stop the scratch embedded Postgres serving pgdata (fast shutdown), and wait for it to exit."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)


def _print(figures: dict[str, dict[str, list[float]]]) -> None:
    for group, samples in figures.items():
        runs = max(len(v) for v in samples.values())
        print(f"\n{group}  (median and p95 of {runs} run{'s' if runs != 1 else ''}; ms, rss_mb in MiB)")
        floor = statistics.median(samples["floor"]) if samples.get("floor") else None
        for name, values in samples.items():
            if not values:
                continue
            median = statistics.median(values)
            p95 = sorted(values)[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            restart = statistics.median(samples["floor_restart"]) if samples.get("floor_restart") else floor
            ratio = ""
            if floor and name.startswith("create"):
                ratio = f"  {median / floor:5.2f}x floor"
            elif restart and name in ("wake", "wake_on_message"):
                ratio = f"  {median / restart:5.2f}x floor{'_restart' if samples.get('floor_restart') else ''}"
            print(f"  {name:<16} {median:9.1f} {p95:9.1f}{ratio}")


class _Emulator:
    def __init__(self, runtime: str, agent: str, model_env: dict[str, str]) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="paradyze-bench-"))
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PARADYZE_HOME": str(self.home), "PARADYZE_RUNTIME": runtime,
               "PARADYZE_INSTANCE": "bench", "PARADYZE_AGENT": agent, **model_env}
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
