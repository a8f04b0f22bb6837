"""`python -m local_emulator`: database, every function, the scheduler and the console, on this machine."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "functions"))

from local_emulator.app import FUNCTIONS  # noqa: E402
from local_emulator.scheduler import LocalScheduler  # noqa: E402
from local_emulator.serving import serve  # noqa: E402
from paradyze import admin_tokens, db, instances, reconcile, repository  # noqa: E402
from paradyze.agents import STOPPED  # noqa: E402
from paradyze.auth import SYSTEM  # noqa: E402
from paradyze.errors import ParadyzeError  # noqa: E402
from paradyze.logs import configure_logging  # noqa: E402
from paradyze.runtimes import get_runtime  # noqa: E402
from paradyze.scheduler.sync import sync_everything  # noqa: E402
from paradyze.settings import ELIZAOS_VERSION, Settings, get_settings  # noqa: E402

log = logging.getLogger("local_emulator")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--console-port", type=int, default=int(os.environ.get("PARADYZE_CONSOLE_PORT", "8501")))
    parser.add_argument("--no-console", action="store_true", help="do not start the Streamlit console")
    parser.add_argument("--no-scheduler", action="store_true", help="do not fire scheduled jobs")
    parser.add_argument("--workers", type=int, default=1,
                        help="serve the functions from this many processes (gunicorn); 1: one threaded process")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process, with --workers")
    args = parser.parse_args(argv)
    configure_logging()
    # From here on, Ctrl-C ends the emulator cleanly, stopping every agent it started, even mid-start.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    settings = get_settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://{args.host}:{args.port}"
    # The scheduler's HTTP targets and the OpenAPI servers entry follow the port we really use.
    os.environ.setdefault("PARADYZE_PUBLIC_URL", base_url)
    get_settings.cache_clear()
    settings = get_settings()

    db.pool()  # starts the embedded Postgres when DATABASE_URL is unset, and migrates

    server = serve(args.host, args.port, args.workers, args.threads)

    done = reconcile.reconcile_all(actor="emulator start")
    log.info("reconciled: adopted %s, restarted %s, orphans removed %s", len(done.adopted), len(done.restarted),
             len(done.removed_orphans))

    scheduler = None
    if not args.no_scheduler:
        # A fresh short-lived token for every firing, so jobs keep running past any one token's life.
        scheduler = LocalScheduler(settings, base_url, lambda: admin_tokens.mint(settings, actor="scheduler"),
                                   jobs_file=settings.state_dir / "scheduler-jobs.json")
        try:
            sync_everything()
        except ParadyzeError as exc:
            log.warning("scheduler jobs not synced: %s", exc.message)
        scheduler.start()

    console = None
    if not args.no_console:
        console = _start_console(args.console_port, base_url, admin_tokens.mint(settings, actor="console"),
                                 log=settings.state_dir / "console.log")

    print(f"\nParadyze local emulator on {base_url}  (state in {settings.state_dir})", flush=True)
    for name in FUNCTIONS:
        print(f"  {base_url}/{name}")
    print(f"  {base_url}/openapi.json")
    traces = settings.trace_file or settings.state_dir / "traces.jsonl"
    print(f"Metrics (Prometheus): {base_url}/metrics; traces: {traces}; logs are JSON lines"
          " (PARADYZE_LOG_FORMAT=text for plain ones)")
    if console:
        print(f"Console: http://127.0.0.1:{args.console_port}  (its log: {settings.state_dir / 'console.log'})")
    print(f"Admin token: mint one ({settings.admin_token_ttl_hours:g} hours) with"
          " `.venv/bin/python -m local_emulator.admin_token`", flush=True)
    _say_what_agents_run(settings)
    print("ready", flush=True)

    stop.wait()

    log.info("stopping: functions, scheduler, console, agents")
    server.stop()
    if scheduler:
        scheduler.stop()
    if console:
        console.terminate()
        try:
            console.wait(timeout=10)
        except subprocess.TimeoutExpired:
            console.kill()
    _stop_agents()
    db.close()
    return 0


def _say_what_agents_run(settings: Settings) -> None:
    if settings.agent == "reference":
        print("Agents: the reference agent (PARADYZE_AGENT=reference)", flush=True)
        return
    where = settings.elizaos_dir
    print(f"Agents: ElizaOS {ELIZAOS_VERSION} from {where}", flush=True)
    if not (where / "app" / "node_modules" / "@elizaos" / "cli").is_dir():
        print("  ElizaOS is not installed there: run local_emulator/elizaos.sh, or set PARADYZE_AGENT=reference",
              flush=True)
    if not {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"} & set(settings.model_env()):
        print("No model key is set (OPENAI_API_KEY, ANTHROPIC_API_KEY or OPENROUTER_API_KEY): agents start,"
              " but answer no message until one is set here or in a character's settings.secrets.", flush=True)


def _stop_agents() -> None:
    """Stop every agent this emulator runs; rows keep wanting them running, so the next start wakes them."""
    with db.transaction(SYSTEM) as conn:
        ids = [a.id for a in repository.list_agents(conn, limit=1_000_000) if a.runtime_handle]
    for agent_id in ids:
        with db.agent_lock(agent_id):
            with db.transaction(SYSTEM) as conn:
                agent = instances.require_agent(conn, agent_id)
            instances.stop_instance(agent)
            if agent.status == "running":
                agent = instances.step(agent, "hibernating", actor="emulator stop", reason="platform stopping")
            instances.step(agent, "hibernated", actor="emulator stop", reason="platform stopped", change=STOPPED)
    # Agents launched but not recorded yet (a create still booting when Ctrl-C came) have no row
    # handle; the runtime still knows them.
    runtime = get_runtime("process")
    for owned in runtime.list_owned():
        runtime.stop(owned.handle, grace=get_settings().agent_stop_grace)
    runtime.close()  # servers waiting in the runtime's warm pool


def _start_console(port: int, base_url: str, token: str, *, log: Path) -> subprocess.Popen[bytes] | None:
    """Streamlit, its output appended to `log` in the state folder (where its errors can be read)."""
    app = REPO_ROOT / "console" / "app.py"
    if not app.exists():
        return None
    env = {**os.environ, "PARADYZE_API_URL": base_url, "PARADYZE_ADMIN_TOKEN": token}
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--client.toolbarMode", "minimal"],
            env=env, cwd=str(REPO_ROOT), stdout=out, stderr=subprocess.STDOUT,
        )


if __name__ == "__main__":
    sys.exit(main())
