"""The machine's own speed during a load run, second by second.

This machine is a VM on a shared host: the same piece of pure-Python work takes 2.3 ms of CPU in one
second and 3.7 ms in the next, with nothing else running. A load step's percentiles mean little
without that, so the load run keeps a probe beside it: a process of its own, at the lowest priority,
that times (in CPU time, so waiting for a core does not count) a fixed piece of work 20 times a
second, and each step reports how fast the machine was while it ran, and the p99 of the answers
due while the machine held its speed (none of its seconds, nor the STEADY_AFTER seconds before,
a quarter or more slower than the fastest): the platform's own tail, apart from the host's.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import threading
from typing import Any

# The probe: a fixed piece of work, timed on the process's CPU clock, then a pause; one line a second
# with the time and the median of that second.
_PROBE = """
import statistics, time
window, last = [], time.time()
while True:
    began = time.process_time()
    total = 0
    for i in range(30000):
        total += i * i
    window.append(time.process_time() - began)
    time.sleep(0.05)
    if time.time() - last >= 1:
        last = time.time()
        print(f"{last:.2f} {1000 * statistics.median(window):.3f}", flush=True)
        window = []
"""


STEADY_AFTER = 5  # seconds after a slow second in which answers are not counted as steady


class SpeedProbe:
    """The probe process, and the seconds it has timed."""

    def __init__(self) -> None:
        self.seconds: list[tuple[float, float]] = []  # (time, ms the work took that second)
        self._proc = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", _PROBE],
                                      stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, name="speed-probe", daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            at, ms = line.split()
            self.seconds.append((float(at), float(ms)))

    def step(self, run: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """run(*args, **kwargs).figures(), with how fast the machine was meanwhile (`machine`) and the
        p99 of the answers due while it held its speed (`machine.steady`)."""
        done = run(*args, **kwargs)
        figures: dict[str, Any] = done.figures()
        figures["machine"] = self.between(done.epoch, done.epoch + done.seconds)
        if figures["machine"] and done.latencies:
            slow = self._slow_seconds()
            # A slow second's backlog takes a few seconds to drain: answers due in the STEADY_AFTER
            # seconds after one (and in the second before, which the probe's line may straddle) are
            # not counted as steady.
            count, p99 = done.p99_where(lambda second: not any(
                int(done.epoch) + second + k in slow for k in range(-STEADY_AFTER, 2)))
            figures["machine"]["steady"] = {"answers": count, "share": round(count / len(done.latencies), 2),
                                            "p99": p99}
        return figures

    def _slow_seconds(self) -> set[int]:
        """The wall-clock seconds the probe found a quarter or more slower than its fastest."""
        slower = self._slower()
        slow: set[int] = set()
        for (before, _), (at, ms) in itertools.pairwise([(self.seconds[0][0] - 1, 0.0), *self.seconds]):
            if ms >= slower:
                slow.update(range(int(before), int(at) + 1))
        return slow

    def _slower(self) -> float:
        """A quarter slower than the fastest second of the whole run so far: a slow second takes this long."""
        return 1.25 * min(ms for _, ms in self.seconds)

    def between(self, began: float, ended: float) -> dict[str, Any]:
        """The work's time in the window's seconds (fastest, median, slowest), and the share of them
        at least a quarter slower than the fastest second of the whole run so far."""
        inside = [ms for at, ms in self.seconds if began <= at <= ended]
        if not inside:
            return {}
        slower = self._slower()
        return {"work_ms": [min(inside), round(statistics.median(inside), 3), max(inside)],
                "slow_seconds": round(sum(ms >= slower for ms in inside) / len(inside), 2)}

    def stop(self) -> None:
        self._proc.kill()
        self._proc.wait()
