"""The load run's account of the machine's speed: which answers count as due while it held its speed."""

from __future__ import annotations

import time

from local_emulator.loadgen import Run
from local_emulator.speed_probe import SpeedProbe


def _probe(seconds: list[tuple[float, float]]) -> SpeedProbe:
    probe = SpeedProbe.__new__(SpeedProbe)  # its figures only: no probe process
    probe.seconds = seconds
    return probe


def test_answers_due_in_and_just_after_a_slower_second_are_not_steady() -> None:
    epoch = float(int(time.time()) - 60)
    # The probe's work took 2 ms every second, and 3 ms (half as long again) in second 20 of the step.
    probe = _probe([(epoch + s + 0.5, 3.0 if s == 20 else 2.0) for s in range(-1, 40)])
    run = Run("soak", epoch=epoch, seconds=40)
    for second in range(40):
        for _ in range(10):
            run.record(500.0 if 20 <= second <= 23 else 10.0, 200, second + 0.3)
    figures = probe.step(lambda: run)
    steady = figures["machine"]["steady"]
    # Left out: the seconds the slow line covers (19 and 20), the one before and the 5 after: 18-25, 8 of 40.
    assert steady == {"answers": 320, "share": 0.8, "p99": 10.0}
    assert figures["p99"] == 500.0
    assert 0 < figures["machine"]["slow_seconds"] < 0.05


def test_a_step_on_a_steady_machine_counts_every_answer() -> None:
    epoch = float(int(time.time()) - 30)
    probe = _probe([(epoch + s + 0.5, 2.0) for s in range(-1, 20)])
    run = Run("closed", epoch=epoch, seconds=20)
    for second in range(20):
        run.record(30.0 + second, 200, second + 0.5)
    steady = probe.step(lambda: run)["machine"]["steady"]
    assert steady == {"answers": 20, "share": 1.0, "p99": 49.0}
