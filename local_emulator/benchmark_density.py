"""Density benchmark: many real ElizaOS agents of several owners on one machine, through the functions.

Run by `benchmark.py --scale 100` (which starts the emulator). It times, with the owners' servers
already up (the steady state of a busy host): single creates; 10 creates at once; the RSS of every
agent server process (warm pool included) divided by the agents running, at `running` running;
and wake-on-message of every hibernated agent of `total`, each of which must answer.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.headers = url, {"Authorization": f"Bearer {token}"}

    def call(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/{name}", json=payload, headers=self.headers, timeout=600)
        if resp.status_code >= 400:
            raise RuntimeError(f"{name}: HTTP {resp.status_code} {resp.text[:300]}")
        return dict(resp.json())

    def timed(self, name: str, payload: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        began = time.perf_counter()
        result = self.call(name, payload)
        return (time.perf_counter() - began) * 1000, result


def density(api: Api, character: dict[str, Any], *, runs: int, total: int, running: int, owners: int,
            instance_key: str) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    people = [str(uuid.uuid4()) for _ in range(owners)]
    agents: dict[str, str] = {}  # agent id -> owner

    def create(owner: str) -> float:
        t, created = api.timed("create_agent", {"character": character, "owner": owner})
        agents[created["agent"]["id"]] = owner
        return t

    # The first agent of each owner boots the owner's server (from the warm pool).
    samples["create_first_of_owner"] = _shown("create_first_of_owner", [create(owner) for owner in people])
    samples["create"] = _shown("create", [create(people[i % owners]) for i in range(runs)])
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        samples["create_10_at_once"] = _shown(
            "create_10_at_once", list(pool.map(create, [people[i % owners] for i in range(10)])))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create, [people[i % owners] for i in range(max(0, total - len(agents)))]))

    # Keep `running` running, spread over the owners; hibernate the rest.
    by_owner: dict[str, list[str]] = {}
    for agent_id, owner in agents.items():
        by_owner.setdefault(owner, []).append(agent_id)
    awake = [ids[i] for i in range(max(len(v) for v in by_owner.values())) for ids in by_owner.values()
             if i < len(ids)][:running]
    asleep = [a for a in agents if a not in awake]
    _each(asleep, lambda a: api.call("hibernate_agent", {"agent_id": a}))
    for agent_id in awake:
        api.call("send_message", {"agent_id": agent_id, "text": "hello"})
    time.sleep(5)  # let the servers settle after the burst
    servers, pool_rss = _server_rss(instance_key)
    samples["servers"] = [float(len(servers))]
    samples["rss_mb_per_running_agent"] = [(sum(servers) + pool_rss) / len(awake)]
    samples["rss_mb_per_running_agent_without_pool"] = _shown("rss_mb_per_running_agent_without_pool",
                                                              [sum(servers) / len(awake)])
    print(f"  servers {[round(r) for r in servers]} MiB, pool {pool_rss:.0f} MiB, {len(awake)} running", flush=True)

    # Every hibernated agent answers a message, waking in its owner's running server; then sleeps again.
    times, answered = [], 0
    for agent_id in asleep:
        t, result = api.timed("send_message", {"agent_id": agent_id, "text": "are you awake?"})
        if result["woke"] and result["replies"]:
            answered += 1
            times.append(t)
        api.call("hibernate_agent", {"agent_id": agent_id})
    samples["wake_on_message"] = times
    samples["hibernated_answering"] = [float(answered)]
    samples["agents"] = [float(len(agents))]
    return samples


def _shown(name: str, values: list[float]) -> list[float]:
    """Print a figure as soon as it is measured: a long run that fails later keeps what it found."""
    print(f"  {name}: {sorted(round(v) for v in values)}", flush=True)
    return values


def _each(items: list[str], fn: Callable[[str], object], workers: int = 4) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(fn, items))


def _server_rss(instance_key: str) -> tuple[list[float], float]:
    """RSS (MiB) of each claimed agent server of the emulator, and of its pooled servers together."""
    servers, pooled = [], 0.0
    for proc in psutil.process_iter(["cmdline", "memory_info", "cwd"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "eliza_host.mjs" not in cmdline and "@elizaos/cli" not in cmdline:
                continue
            if proc.environ().get("PARADYZE_INSTANCE_KEY") != instance_key:
                continue
            rss = proc.info["memory_info"].rss / 2**20
        except (psutil.Error, AttributeError):
            continue
        if proc.info["cwd"] == "/":
            pooled += rss
        else:
            servers.append(rss)
    return servers, pooled


def instance_key(home: Path) -> str:
    from paradyze.settings import Settings

    return Settings(PARADYZE_HOME=home, PARADYZE_INSTANCE="bench").instance_key
