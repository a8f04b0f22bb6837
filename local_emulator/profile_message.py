"""Where a worker's CPU goes per send_message (or per page of list_agents): the function run in this
process, profiled.

    python -m local_emulator.profile_message                 # 500 messages, the 25 costliest functions
    python -m local_emulator.profile_message --messages 2000 --top 40
    python -m local_emulator.profile_message --list-agents 10000   # pages of 50 anywhere in 10,000 agents

An emulator of its own (load.Emulator) runs Postgres and a reference agent; this process serves
send_message through functions-framework's test client, exactly as a worker does minus the HTTP
server, and measures its own CPU time (every thread: span export and metrics included) and that of
Postgres and the agent per message, first without the profiler, then under cProfile on the CPU clock
for the breakdown of this process.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

import requests
from flask.testing import FlaskClient

from local_emulator.load import LIMITS_LIFTED, Emulator, seed_agents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_emulator.profile_message", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500, help="messages (or pages) measured (each pass)")
    parser.add_argument("--list-agents", type=int, default=0,
                        help="profile list_agents pages out of this many agents instead of send_message")
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    parser.add_argument("--sort", default="cumulative", help="pstats order: cumulative or tottime")
    args = parser.parse_args(argv)

    emulator = Emulator(workers=1, threads=4)
    try:
        _, token = emulator.user()
        made = requests.post(f"{emulator.url}/create_agent", headers={"Authorization": f"Bearer {token}"},
                             json={"character": {"name": "Profile", "bio": ["Answers quickly."]}}, timeout=120)
        made.raise_for_status()
        agent_id = made.json()["agent"]["id"]
        os.environ.update({"PARADYZE_HOME": str(emulator.home), "PARADYZE_AGENT": "reference", **LIMITS_LIFTED})
        from paradyze.settings import get_settings

        get_settings.cache_clear()
        import functions_framework

        from local_emulator.app import SOURCE

        def client_of(target: str) -> FlaskClient:
            return functions_framework.create_app(target, str(SOURCE)).test_client()

        if args.list_agents:
            send = _pages(client_of("list_agents"), seed_agents(emulator, args.list_agents))
        else:
            client = client_of("send_message")
            headers = {"Authorization": f"Bearer {token}"}

            def send(n: int) -> None:
                for i in range(n):
                    answer = client.post("/", json={"agent_id": agent_id, "text": f"profile {i}"}, headers=headers)
                    assert answer.status_code == 200, answer.get_data(as_text=True)

        send(100)  # warm: pools, caches, the agent's session
        cpu, others, wall = time.process_time(), emulator.cpu_seconds(), time.perf_counter()
        send(args.messages)
        cpu, others = time.process_time() - cpu, emulator.cpu_seconds() - others
        wall = time.perf_counter() - wall
        what = "pages" if args.list_agents else "messages"
        print(f"{args.messages} {what}, each: {cpu / args.messages * 1000:.2f} ms CPU in this process (no"
              f" profiler), {others / args.messages * 1000:.2f} ms in Postgres and the agent (and the idle"
              f" emulator), {wall / args.messages * 1000:.2f} ms wall", flush=True)
        profile = cProfile.Profile(time.process_time)
        profile.runcall(send, args.messages)
        stats = pstats.Stats(profile)
        stats.sort_stats(args.sort).print_stats(args.top)
    finally:
        from paradyze import db

        db.close()
        emulator.stop()
    return 0


def _pages(client: FlaskClient, token: str) -> Callable[[int], None]:
    """Fetching n pages of 50, each anywhere in the agents of token's user (by cursor)."""
    headers = {"Authorization": f"Bearer {token}"}

    def page(cursor: str | None) -> Any:
        answer = client.get("/", query_string={"limit": 50, **({"cursor": cursor} if cursor else {})},
                            headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return answer.get_json()

    cursors: list[str | None] = [None]
    while next_cursor := page(cursors[-1])["next_cursor"]:
        cursors.append(next_cursor)

    def fetch(n: int) -> None:
        for i in range(n):
            page(cursors[(i * 31) % len(cursors)])

    return fetch


if __name__ == "__main__":
    sys.exit(main())
