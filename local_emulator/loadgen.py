"""Load generation: closed and open loops over keep-alive connections, with latency percentiles."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SLOW_MS = 100.0  # the load goals' p99 bound: answers slower than this are placed in time


@dataclass
class Run:
    """Latencies (ms) and outcomes of one load step."""

    name: str
    seconds: float = 0.0
    epoch: float = 0.0  # the wall clock (time.time) at the step's second 0
    latencies: list[float] = field(default_factory=list)
    due: list[int] = field(default_factory=list)  # the second of the step each latency's request was due
    slow: dict[int, int] = field(default_factory=dict)  # second of the step -> answers slower than SLOW_MS
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU time used during the step, by role
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, ms: float, status: int | str, at: float = 0.0) -> None:
        """One answer, `ms` after it was due `at` seconds into the step."""
        with self._lock:
            if status == 200:
                self.latencies.append(ms)
                self.due.append(int(at))
                if ms > SLOW_MS:
                    self.slow[int(at)] = self.slow.get(int(at), 0) + 1
            else:
                self.errors[str(status)] = self.errors.get(str(status), 0) + 1

    def p99_where(self, keep: Callable[[int], bool]) -> tuple[int, float]:
        """How many answers were due in the seconds `keep` accepts, and their p99."""
        done = sorted(ms for ms, second in zip(self.latencies, self.due, strict=True) if keep(second))
        return len(done), _pct(done, 0.99)

    def figures(self) -> dict[str, Any]:
        done = sorted(self.latencies)
        by_role = {role: 1000 * seconds / len(done) if done else 0.0 for role, seconds in self.cpu_s.items()}
        # Every process that serves a request; the load clients are this benchmark's own cost.
        cpu_ms = sum(ms for role, ms in by_role.items() if role != "load")
        return {"step": self.name, "ok": len(done), "errors": self.errors,
                "req_s": round(len(done) / self.seconds, 1) if self.seconds else 0.0,
                "p50": _pct(done, 0.50), "p95": _pct(done, 0.95), "p99": _pct(done, 0.99),
                "cpu_ms_per_req": round(cpu_ms, 2),
                "cpu_ms_by_role": {role: round(ms, 2) for role, ms in by_role.items()},
                # When in the step the answers slower than SLOW_MS came: [first second, last second, how many].
                "slow_spans": _spans(self.slow),
                # What the same CPU per request allows on this machine's cores with nothing else running.
                "capacity_req_s": round((os.cpu_count() or 1) * 1000 / cpu_ms) if cpu_ms > 0 else 0}


def _pct(done: list[float], p: float) -> float:
    return round(done[min(len(done) - 1, int(p * len(done)))], 1) if done else float("nan")


def _spans(slow: dict[int, int]) -> list[list[int]]:
    """Seconds with slow answers, joined into spans where they follow each other."""
    spans: list[list[int]] = []
    for second in sorted(slow):
        if spans and second - spans[-1][1] <= 1:
            spans[-1][1] = second
            spans[-1][2] += slow[second]
        else:
            spans.append([second, second, slow[second]])
    return spans


class Client:
    """One keep-alive connection, as a browser or another service holds one."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
        self._auth = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int | str, bytes]:
        headers = {"Authorization": self._auth}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            self._conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = self._conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            return type(exc).__name__, b""


def closed_loop(name: str, url: str, tokens: list[str], clients: int, seconds: float,
                request: Any, meter: Any = dict) -> Run:
    """`clients` threads, each sending its next request as soon as the last is answered."""
    run = Run(name)
    start = time.perf_counter() + 1.0  # every client connected and warm before the clock starts
    run.epoch = time.time() + 1.0
    stop = start + seconds

    def client(i: int) -> None:
        c = Client(url, tokens[i % len(tokens)])
        n = 0
        while (now := time.perf_counter()) < stop:
            method, path, body = request(i, n)
            status, _ = c.call(method, path, body)
            n += 1
            if now >= start:
                run.record((time.perf_counter() - now) * 1000, status, now - start)

    return _run(run, [threading.Thread(target=client, args=(i,)) for i in range(clients)], start, meter, seconds)


def open_loop(name: str, url: str, tokens: list[str], rate: float, seconds: float, request: Any,
              meter: Any = dict, senders: int = 64) -> Run:
    """Requests due at a fixed rate, whatever the answers; each timed from when it was due."""
    run = Run(name)
    start = time.perf_counter() + 1.0
    run.epoch = time.time() + 1.0
    total = int(rate * seconds)
    next_index = iter(range(total))
    lock = threading.Lock()

    def sender(i: int) -> None:
        c = Client(url, tokens[i % len(tokens)])
        while True:
            with lock:
                n = next(next_index, None)
            if n is None:
                return
            due = start + n / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            method, path, body = request(i, n)
            status, _ = c.call(method, path, body)
            run.record((time.perf_counter() - due) * 1000, status, due - start)

    return _run(run, [threading.Thread(target=sender, args=(i,)) for i in range(senders)], start, meter, seconds)


def _run(run: Run, threads: list[threading.Thread], start: float, meter: Any, seconds: float) -> Run:
    for t in threads:
        t.start()
    time.sleep(max(0.0, start - time.perf_counter()))
    cpu = meter()  # CPU seconds so far, by role
    for t in threads:
        t.join()
    run.cpu_s = {role: seconds - cpu[role] for role, seconds in meter().items()}
    run.seconds = max(seconds, time.perf_counter() - start)  # an open loop that fell behind took longer
    return run
