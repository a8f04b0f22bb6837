"""What telemetry costs: message latency and wake with PARADYZE_TELEMETRY=off and =local, side by side.

    python local_emulator/benchmark.py --telemetry-overhead --runs 200    # messages per side; wakes: runs/10

Two emulators run at once, one without telemetry (no metrics, no spans; logs still JSON) and one
with it (Prometheus metrics, spans to the trace file, JSON logs with trace ids). Their requests
alternate, so load from anything else on the machine falls on both alike. Figures are medians.
On a loaded machine latency is noisy, so the CPU time the functions' process spends per message
and per wake is measured too (the agents are other processes, the same on both sides): that is
what instrumentation adds, whatever else runs.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import psutil
import requests


def measure(emulator_class: Any, agent: str, character: dict, runs: int) -> dict[str, dict[str, float]]:
    sides = {"off": emulator_class("process", agent, {"PARADYZE_TELEMETRY": "off"}),
             "local": emulator_class("process", agent, {"PARADYZE_TELEMETRY": "local"})}
    try:
        agents = {name: _create(emu, character) for name, emu in sides.items()}
        samples: dict[str, dict[str, list[float]]] = {
            n: {"message": [], "wake": [], "message_cpu": [], "wake_cpu": []} for n in sides}
        for _ in range(10):  # warm both: connections, caches, the agents' first replies
            for name, emu in sides.items():
                _post(emu, "send_message", {"agent_id": agents[name], "text": "warm up"})
        for i in range(runs):
            for name, emu in (sides.items() if i % 2 == 0 else reversed(sides.items())):
                cpu = _cpu(emu)
                samples[name]["message"].append(
                    _timed(emu, "send_message", {"agent_id": agents[name], "text": "how are you?"}))
                samples[name]["message_cpu"].append(_cpu(emu) - cpu)
            if i % 10 == 0:
                for name, emu in sides.items():
                    _post(emu, "hibernate_agent", {"agent_id": agents[name]})
                    cpu = _cpu(emu)
                    samples[name]["wake"].append(_timed(emu, "wake_agent", {"agent_id": agents[name]}))
                    samples[name]["wake_cpu"].append(_cpu(emu) - cpu)
    finally:
        for emu in sides.values():
            emu.stop()
    # CPU times tick in 10 ms steps: their mean over many calls, not a median, is the cost per call.
    medians = {name: {k: (statistics.mean if k.endswith("_cpu") else statistics.median)(v) for k, v in s.items()}
               for name, s in samples.items()}
    medians["overhead_pct"] = {k: 100 * (medians["local"][k] / medians["off"][k] - 1) for k in ("message", "wake")}
    # The CPU the instrumentation adds per call, as a share of the call's latency without it.
    medians["cpu_overhead_pct"] = {
        k: 100 * (medians["local"][f"{k}_cpu"] - medians["off"][f"{k}_cpu"]) / medians["off"][k]
        for k in ("message", "wake")}
    medians["runs"] = {k: float(len(v)) for k, v in samples["local"].items()}
    return medians


def report(figures: dict[str, dict[str, float]]) -> None:
    print(f"\ntelemetry overhead (median ms; {int(figures['runs']['message'])} messages,"
          f" {int(figures['runs']['wake'])} wakes per side)")
    for what in ("message", "wake"):
        off, on, pct = figures["off"][what], figures["local"][what], figures["overhead_pct"][what]
        print(f"  {what:<8} off {off:8.1f}   on {on:8.1f}   added {pct:+5.1f}%  (budget 5%)")
    for what in ("message", "wake"):
        off, on = figures["off"][f"{what}_cpu"], figures["local"][f"{what}_cpu"]
        print(f"  {what:<8} functions' CPU per call: off {off:6.2f} ms, on {on:6.2f} ms:"
              f" {on - off:+.2f} ms = {figures['cpu_overhead_pct'][what]:+.1f}% of the {what}'s latency")


def _create(emu: Any, character: dict) -> str:
    agent: str = _post(emu, "create_agent", {"character": character})["agent"]["id"]
    return agent


def _post(emu: Any, name: str, payload: dict) -> dict:
    resp = requests.post(f"{emu.url}/{name}", json=payload, headers={"Authorization": f"Bearer {emu.token}"},
                         timeout=300)
    resp.raise_for_status()
    answer: dict = resp.json()
    return answer


def _cpu(emu: Any) -> float:
    """CPU milliseconds (user + system) the emulator's own process has used: the functions, not the agents."""
    times = psutil.Process(emu.proc.pid).cpu_times()
    return (times.user + times.system) * 1000


def _timed(emu: Any, name: str, payload: dict) -> float:
    began = time.perf_counter()
    _post(emu, name, payload)
    return (time.perf_counter() - began) * 1000
