"""The platform's metrics, declared once: per agent (messages, replies, latency, wakes, restarts, memory, CPU)
and for the platform (each function's latency and status, the database pool, sweeps, scheduler jobs).

Instruments come from OpenTelemetry's global API, so they cost nothing until setup() installs a
provider. Every label comes from a bounded set: ids, operation names, status codes, fixed words;
never text a user wrote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

meter = metrics.get_meter("paradyze")

# Seconds; what a person waits for a reply or a wake, 10 ms to 2 minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

messages_in = meter.create_counter("paradyze.agent.messages.in", "{message}", "Messages delivered to an agent")
messages_out = meter.create_counter("paradyze.agent.messages.out", "{message}", "Replies an agent gave")
reply_latency = meter.create_histogram("paradyze.agent.reply.latency", "s",
                                       "From sending a message to the agent until its replies",
                                       explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
agent_errors = meter.create_counter("paradyze.agent.errors", "{error}",
                                    "Messages an agent did not take or answer, and failed starts (kind)")
wakes = meter.create_counter("paradyze.agent.wakes", "{wake}", "Agents started again (cause: message, request, crash)")
wake_latency = meter.create_histogram("paradyze.agent.wake.latency", "s", "From launch until the agent answers health",
                                      explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
restarts = meter.create_counter("paradyze.agent.restarts", "{restart}", "Restarts after a crash")
function_duration = meter.create_histogram("paradyze.function.duration", "s",
                                           "Each function's latency, by operation and HTTP status",
                                           explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
function_calls = meter.create_counter("paradyze.function.requests", "{request}",
                                     "Calls of each function, by operation and HTTP status (the error rate's terms)")
sweep_duration = meter.create_histogram("paradyze.sweep.duration", "s", "Scheduled sweeps: idle, stuck, health",
                                        explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
scheduler_jobs = meter.create_counter("paradyze.scheduler.jobs", "{job}",
                                      "Functions called by the scheduler, by operation and outcome (ok, error)")


@dataclass
class Sample:
    """What the last health check saw: the fleet's state, written by one thread, read by exporters."""

    taken: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)
    uptime: dict[str, float] = field(default_factory=dict)  # agent_id -> seconds since its start
    rss: dict[str, int] = field(default_factory=dict)  # agent_id -> bytes
    cpu: dict[str, float] = field(default_factory=dict)  # agent_id -> CPU seconds
    backup_age: float | None = None  # seconds since the newest backup; None: no backup yet


class Fleet:
    """Holds the latest Sample for the observable gauges; a sample older than max_age is not reported,
    so only the instance that ran the health check speaks for the fleet."""

    def __init__(self, max_age: float = 900.0) -> None:
        self.max_age = max_age
        self._sample = Sample()
        self._lock = threading.Lock()

    def put(self, sample: Sample) -> None:
        with self._lock:
            self._sample = sample

    def fresh(self) -> Sample | None:
        with self._lock:
            sample = self._sample
        return sample if sample.taken and time.time() - sample.taken < self.max_age else None


fleet = Fleet()


def _observe(read: Callable[[Sample], Iterable[Observation]]) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        sample = fleet.fresh()
        return list(read(sample)) if sample is not None else []
    return callback


meter.create_observable_gauge(
    "paradyze.agents", [_observe(lambda s: [Observation(n, {"status": k}) for k, n in s.by_status.items()])],
    "{agent}", "Agents by status (error, running, hibernated, ...)")
meter.create_observable_gauge(
    "paradyze.agent.uptime", [_observe(lambda s: [Observation(v, {"agent_id": k}) for k, v in s.uptime.items()])],
    "s", "Seconds an agent has been running since its last start")
meter.create_observable_gauge(
    "paradyze.agent.memory.rss", [_observe(lambda s: [Observation(v, {"agent_id": k}) for k, v in s.rss.items()])],
    "By", "Resident memory of an agent (all its processes, or its container)")
meter.create_observable_counter(
    "paradyze.agent.cpu.time", [_observe(lambda s: [Observation(v, {"agent_id": k}) for k, v in s.cpu.items()])],
    "s", "CPU seconds an agent's current instance has used")
meter.create_observable_gauge(
    "paradyze.backup.age", [_observe(lambda s: [Observation(s.backup_age)] if s.backup_age is not None else [])],
    "s", "Seconds since the newest backup")


def observe_pool(stats: Callable[[], dict[str, int] | None]) -> None:
    """Report the database pool's use, read from stats() (psycopg_pool's get_stats) at each export."""

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        got = stats()
        if not got:
            return []
        size, idle = got.get("pool_size", 0), got.get("pool_available", 0)
        return [Observation(size - idle, {"state": "in_use"}), Observation(idle, {"state": "idle"}),
                Observation(got.get("requests_waiting", 0), {"state": "waiting"})]

    meter.create_observable_gauge("paradyze.db.pool.connections", [callback], "{connection}",
                                  "Database pool connections in use, idle, and requests waiting for one")
