"""LocalScheduler: real HTTP to a server on 127.0.0.1, driven by an injected clock across DST."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from local_emulator.scheduler import LocalScheduler
from paradyze.scheduler.base import JobSink
from paradyze.scheduler.file import FileJobSink
from paradyze.scheduler.jobs import JobSpec, agent_scope, platform_jobs
from paradyze.scheduler.sync import sync_agent
from paradyze.settings import Settings

NY = "America/New_York"
AGENT = "6f1c2b7e-8d9a-4c3b-9e2f-1a2b3c4d5e6f"
TOKEN = "admin-token-that-must-never-be-logged"
NIGHTS = [
    {"action": "hibernate", "cron": "0 0 * * *", "timezone": NY},
    {"action": "wake", "cron": "0 8 * * *", "timezone": NY},
]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Target:
    """A tiny HTTP server that records requests and answers with the status it is told to."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []  # answered in order; 200 once empty
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                target.received.append(
                    Received(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                status = target.statuses.pop(0) if target.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_GET(self) -> None:  # noqa: N802 (the http.server hook name)
                self._handle()

            def do_POST(self) -> None:  # noqa: N802
                self._handle()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def calls(self) -> list[tuple[str, str]]:
        """(path, scheduled time) of each request, as the scheduler stamped it."""
        return [(r.path, r.headers["X-CloudScheduler-ScheduleTime"]) for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    yield server
    server.close()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_scheduler(target_url: str, clock: Clock, **kwargs: object) -> LocalScheduler:
    settings = Settings(PARADYZE_SCHEDULER_TICK=0.05, PARADYZE_INSTANCE="local")
    return LocalScheduler(settings, target_url, TOKEN, clock=clock, retry_backoff=0, **kwargs)  # type: ignore[arg-type]


def tick_through(scheduler: LocalScheduler, clock: Clock, until: datetime, step: timedelta) -> None:
    while clock.now < until:
        clock.now = min(clock.now + step, until)
        scheduler.run_due()


def test_is_a_job_sink() -> None:
    assert isinstance(make_scheduler("http://127.0.0.1:9", Clock(utc(2026, 1, 1))), JobSink)


def test_hibernate_at_midnight_and_wake_at_eight_across_spring_forward(target: Target) -> None:
    clock = Clock(utc(2026, 3, 6, 12))
    scheduler = make_scheduler(target.url, clock)
    sync_agent(scheduler, "local", AGENT, NIGHTS)

    tick_through(scheduler, clock, utc(2026, 3, 10, 6), timedelta(minutes=7))

    assert target.calls() == [
        ("/wake_agent", "2026-03-06T13:00:00Z"),  # 08:00 EST
        ("/hibernate_agent", "2026-03-07T05:00:00Z"),  # 00:00 EST
        ("/wake_agent", "2026-03-07T13:00:00Z"),
        ("/hibernate_agent", "2026-03-08T05:00:00Z"),  # still EST: the change is at 02:00
        ("/wake_agent", "2026-03-08T12:00:00Z"),  # 08:00 EDT
        ("/hibernate_agent", "2026-03-09T04:00:00Z"),  # 00:00 EDT
        ("/wake_agent", "2026-03-09T12:00:00Z"),
        ("/hibernate_agent", "2026-03-10T04:00:00Z"),
    ]
    assert all(json.loads(r.body) == {"agent_id": AGENT} for r in target.received)
    assert all(f.ok for f in scheduler.fires)


def test_hibernate_at_midnight_and_wake_at_eight_across_fall_back(target: Target) -> None:
    clock = Clock(utc(2026, 10, 31, 3))
    scheduler = make_scheduler(target.url, clock)
    sync_agent(scheduler, "local", AGENT, NIGHTS)

    tick_through(scheduler, clock, utc(2026, 11, 2, 14), timedelta(minutes=11))

    assert target.calls() == [
        ("/hibernate_agent", "2026-10-31T04:00:00Z"),  # 00:00 EDT
        ("/wake_agent", "2026-10-31T12:00:00Z"),
        ("/hibernate_agent", "2026-11-01T04:00:00Z"),  # 00:00 EDT, before the 02:00 change
        ("/wake_agent", "2026-11-01T13:00:00Z"),  # 08:00 EST
        ("/hibernate_agent", "2026-11-02T05:00:00Z"),
        ("/wake_agent", "2026-11-02T13:00:00Z"),
    ]


def test_gap_and_repeated_times_fire_once_each(target: Target) -> None:
    clock = Clock(utc(2026, 3, 8, 5))
    scheduler = make_scheduler(target.url, clock)
    scheduler.apply(
        [
            JobSpec("paradyze-local-x-gap", "30 2 * * *", NY, "POST", "/gap", {}),
            JobSpec("paradyze-local-x-twice", "30 1 * * *", NY, "POST", "/twice", {}),
        ],
        "paradyze-local-x-",
    )
    # Minute by minute through the spring-forward night, then through the fall-back night.
    tick_through(scheduler, clock, utc(2026, 3, 8, 9), timedelta(minutes=1))
    clock.now = utc(2026, 11, 1, 4)
    scheduler.run_due()
    target.received.clear()
    tick_through(scheduler, clock, utc(2026, 11, 1, 8), timedelta(minutes=1))

    assert target.calls() == [
        ("/twice", "2026-11-01T05:30:00Z"),  # 01:30 EDT only; 01:30 EST (06:30Z) does not fire
        ("/gap", "2026-11-01T07:30:00Z"),  # 02:30 EST
    ]


def test_spring_forward_gap_time_fires_at_end_of_gap(target: Target) -> None:
    clock = Clock(utc(2026, 3, 8, 6))
    scheduler = make_scheduler(target.url, clock)
    scheduler.apply([JobSpec("paradyze-local-x-gap", "30 2 * * *", NY, "POST", "/gap", {})], "paradyze-local-x-")

    tick_through(scheduler, clock, utc(2026, 3, 8, 9), timedelta(seconds=20))

    assert target.calls() == [("/gap", "2026-03-08T07:00:00Z")]  # 03:00 EDT, the first instant after 02:00 EST


def test_fires_at_most_once_per_due_instant(target: Target) -> None:
    clock = Clock(utc(2026, 3, 9, 3))
    scheduler = make_scheduler(target.url, clock)
    sync_agent(scheduler, "local", AGENT, NIGHTS[:1])

    clock.now = utc(2026, 3, 9, 4, 0, 5)
    first = scheduler.run_due()
    again = scheduler.run_due()
    explicit = scheduler.run_due(utc(2026, 3, 9, 4, 0, 6))
    clock.now = utc(2026, 3, 9, 23)
    later = scheduler.run_due()

    assert [(f.job, f.scheduled_for, f.status) for f in first] == [
        (f"paradyze-local-{AGENT}-hibernate", utc(2026, 3, 9, 4), 200)
    ]
    assert again == explicit == later == []
    assert len(target.received) == 1


def test_missed_instants_collapse_into_one_firing(target: Target) -> None:
    clock = Clock(utc(2026, 3, 1, 12))
    scheduler = make_scheduler(target.url, clock)
    sync_agent(scheduler, "local", AGENT, NIGHTS[1:])

    clock.now = utc(2026, 3, 10, 11)  # the scheduler slept for nine days
    fired = scheduler.run_due()

    assert [f.scheduled_for for f in fired] == [utc(2026, 3, 9, 12)]
    assert len(target.received) == 1


def test_concurrent_run_due_does_not_fire_twice(target: Target) -> None:
    clock = Clock(utc(2026, 3, 9, 3))
    scheduler = make_scheduler(target.url, clock)
    sync_agent(scheduler, "local", AGENT, NIGHTS)
    clock.now = utc(2026, 3, 9, 12, 0, 1)

    threads = [threading.Thread(target=scheduler.run_due) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(target.calls()) == [
        ("/hibernate_agent", "2026-03-09T04:00:00Z"),
        ("/wake_agent", "2026-03-09T12:00:00Z"),
    ]


def test_request_carries_admin_token_method_and_body(target: Target) -> None:
    clock = Clock(utc(2026, 3, 9, 11, 59))
    scheduler = make_scheduler(target.url, clock)
    settings = Settings(
        PARADYZE_INSTANCE="local",
        PARADYZE_HEALTH_CRON="0 12 * * *",
        PARADYZE_IDLE_SWEEP_CRON="0 12 * * *",
        PARADYZE_BACKUP_CRON="0 12 * * *",
    )
    scheduler.apply(platform_jobs(settings), "paradyze-local-")

    clock.now = utc(2026, 3, 9, 12)
    scheduler.run_due()

    by_path = {r.path: r for r in target.received}
    assert set(by_path) == {"/hibernate_idle", "/backup_agents", "/health_check"}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in target.received)
    assert (by_path["/health_check"].method, by_path["/health_check"].body) == ("GET", b"")
    assert by_path["/backup_agents"].method == "POST"
    assert by_path["/backup_agents"].headers["Content-Type"] == "application/json"
    assert json.loads(by_path["/backup_agents"].body) == {}
    assert by_path["/backup_agents"].headers["X-CloudScheduler-JobName"] == "paradyze-local-backup"
    assert TOKEN not in repr(scheduler)


def test_apply_creates_updates_deletes_and_new_jobs_do_not_fire_for_the_past(target: Target) -> None:
    clock = Clock(utc(2026, 3, 9, 12, 30))  # after today's 08:00 EDT wake
    scheduler = make_scheduler(target.url, clock)
    scope = agent_scope("local", AGENT)

    assert sync_agent(scheduler, "local", AGENT, NIGHTS).created == [f"{scope}hibernate", f"{scope}wake"]
    assert scheduler.run_due() == []  # 12:00Z was before the job existed
    changed = sync_agent(scheduler, "local", AGENT, [NIGHTS[0], {**NIGHTS[1], "cron": "45 8 * * *"}])
    assert (changed.updated, changed.unchanged) == ([f"{scope}wake"], [f"{scope}hibernate"])
    clock.now = utc(2026, 3, 9, 12, 45)
    assert [f.job for f in scheduler.run_due()] == [f"{scope}wake"]  # the new time counts
    assert sync_agent(scheduler, "local", AGENT, []).deleted == [f"{scope}hibernate", f"{scope}wake"]
    assert scheduler.jobs() == []
    clock.now = utc(2026, 3, 10, 13)
    assert scheduler.run_due() == []


def test_server_errors_are_retried_and_recorded(target: Target) -> None:
    clock = Clock(utc(2026, 3, 9, 11, 59))
    scheduler = make_scheduler(target.url, clock, retries=2)
    sync_agent(scheduler, "local", AGENT, NIGHTS[1:])
    target.statuses = [503, 500, 503, 503]

    clock.now = utc(2026, 3, 9, 12)
    [fire] = scheduler.run_due()

    assert (fire.status, fire.attempts, fire.ok) == (503, 3, False)
    assert len(target.received) == 3
    # A 4xx is final at once; the next firing goes ahead as usual.
    target.statuses = [409]
    clock.now = utc(2026, 3, 10, 12)
    [fire] = scheduler.run_due()
    assert (fire.status, fire.attempts) == (409, 1)


def test_unreachable_target_is_recorded_and_never_logs_the_token(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(utc(2026, 3, 9, 11, 59))
    scheduler = make_scheduler("http://127.0.0.1:9", clock, retries=1)
    sync_agent(scheduler, "local", AGENT, NIGHTS[1:])
    clock.now = utc(2026, 3, 9, 12)

    with caplog.at_level(logging.DEBUG):
        [fire] = scheduler.run_due()

    assert fire.status is None and fire.attempts == 2 and "ConnectionError" in (fire.error or "")
    assert "failed" in caplog.text
    assert TOKEN not in caplog.text


def test_history_is_bounded(target: Target) -> None:
    clock = Clock(utc(2026, 3, 1))
    scheduler = make_scheduler(target.url, clock, history=3)
    scheduler.apply([JobSpec("paradyze-local-x-m", "* * * * *", "UTC", "GET", "/m")], "paradyze-local-x-")

    tick_through(scheduler, clock, utc(2026, 3, 1, 0, 5), timedelta(minutes=1))

    assert len(target.received) == 5
    assert [f.scheduled_for.minute for f in scheduler.fires] == [3, 4, 5]


def test_follows_the_jobs_file_written_by_another_process(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "scheduler-jobs.json"
    clock = Clock(utc(2026, 3, 9, 11))
    scheduler = make_scheduler(target.url, clock, jobs_file=path)
    writer = FileJobSink(path, clock)  # what update_policy uses in the functions process

    sync_agent(writer, "local", AGENT, NIGHTS)
    # First read at 12:00:10, after the 12:00 wake: written at 11:00, so that instant still fires.
    clock.now = utc(2026, 3, 9, 12, 0, 10)
    assert [f.job for f in scheduler.run_due()] == [f"paradyze-local-{AGENT}-wake"]
    # Changed at 12:00:10 to 06:00 EDT (10:00Z): today's 10:00Z is before the change, so it waits.
    sync_agent(writer, "local", AGENT, [{**NIGHTS[0], "cron": "0 6 * * *"}])
    clock.now = utc(2026, 3, 9, 23)
    assert scheduler.run_due() == []
    clock.now = utc(2026, 3, 10, 10, 0, 1)
    assert [f.scheduled_for for f in scheduler.run_due()] == [utc(2026, 3, 10, 10)]

    sync_agent(writer, "local", AGENT, [])
    clock.now = utc(2026, 3, 10, 12)
    assert scheduler.run_due() == [] and scheduler.jobs() == []


def test_loop_fires_by_the_clock_and_survives_failures(target: Target) -> None:
    clock = Clock(utc(2026, 3, 9, 11, 59))
    scheduler = make_scheduler(target.url, clock, retries=0)
    sync_agent(scheduler, "local", AGENT, NIGHTS)
    target.statuses = [500]
    scheduler.start()
    try:
        clock.now = utc(2026, 3, 9, 12)  # wake due; its first answer is a 500
        wait_for(lambda: len(scheduler.fires) == 1)
        clock.now = utc(2026, 3, 10, 4)  # hibernate due: the loop is still alive
        wait_for(lambda: len(scheduler.fires) == 2)
    finally:
        scheduler.stop()
    assert [(f.job.rsplit("-", 1)[-1], f.status) for f in scheduler.fires] == [("wake", 500), ("hibernate", 200)]


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_jobs_file_from_an_earlier_run_does_not_replay_missed_instants(target: Target, tmp_path: Path) -> None:
    path = tmp_path / "scheduler-jobs.json"
    clock = Clock(utc(2026, 3, 1))
    sync_agent(FileJobSink(path, clock), "local", AGENT, NIGHTS)  # written by last week's emulator

    clock.now = utc(2026, 3, 9, 13)  # restarted after both of today's instants
    scheduler = make_scheduler(target.url, clock, jobs_file=path)
    assert scheduler.run_due() == []
    clock.now = utc(2026, 3, 10, 4)
    assert [f.job for f in scheduler.run_due()] == [f"paradyze-local-{AGENT}-hibernate"]


def test_a_token_source_gives_each_firing_a_fresh_token(target: Target) -> None:
    clock = Clock(utc(2026, 3, 9, 7, 59))
    minted = iter(f"short-lived-{n}" for n in range(10))
    settings = Settings(PARADYZE_SCHEDULER_TICK=0.05, PARADYZE_INSTANCE="local")
    scheduler = LocalScheduler(settings, target.url, lambda: next(minted), clock=clock, retry_backoff=0)
    sync_agent(scheduler, "local", AGENT, NIGHTS)
    tick_through(scheduler, clock, utc(2026, 3, 10, 12, 1), timedelta(minutes=30))
    tokens = [r.headers["Authorization"] for r in target.received]
    assert len(tokens) == 3 and len(set(tokens)) == 3, tokens
    assert all(t.startswith("Bearer short-lived-") for t in tokens)
