"""The local stand-in for Cloud Scheduler: holds jobs like a JobSink and fires them as real HTTP requests."""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from paradyze.scheduler.base import SyncResult
from paradyze.scheduler.cron import last_due
from paradyze.scheduler.file import FileJobSink, reconcile
from paradyze.scheduler.jobs import JobSpec
from paradyze.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Fire:
    """One firing of a job, kept for inspection (tests, the console)."""

    job: str
    scheduled_for: datetime
    fired_at: datetime
    status: int | None  # the final HTTP status, None when no answer came
    attempts: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class LocalScheduler:
    """Fires JobSpecs by their cron and time zone at base_url + path, as Cloud Scheduler would.

    Jobs come from apply() (it is a JobSink) and, when jobs_file is given, from that file, which
    FileJobSink writes from any process. Each job fires at most once per due instant: missed
    instants (a slow tick, a paused clock) collapse into one firing of the latest of them, and a
    job that is created or changed only fires for instants after that moment.
    """

    def __init__(
        self,
        settings: Settings,
        base_url: str,
        token: str | Callable[[], str],
        *,
        clock: Clock = _utcnow,
        jobs_file: Path | None = None,
        retries: int = 2,
        retry_backoff: float = 1.0,
        request_timeout: float | None = None,
        history: int = 500,
        workers: int = 4,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # Only ever put in the Authorization header; a callable mints a fresh token per firing.
        self.__token: Callable[[], str] = token if callable(token) else (lambda: token)
        self._clock = clock
        self._tick = settings.scheduler_tick_seconds
        self._retries = retries
        self._retry_backoff = retry_backoff
        # A wake waits for the agent to answer health before the function replies.
        self._timeout = request_timeout or settings.agent_start_timeout + 60.0
        self._workers = workers
        self._file = FileJobSink(jobs_file, clock) if jobs_file is not None else None
        self._file_stamp: tuple[int, int] | None = None
        # Instants before this scheduler existed are never fired: a restarted emulator must not
        # replay last night's hibernate and this morning's wake at once.
        self._born = self._now()
        self._lock = threading.Lock()
        self._jobs: dict[str, JobSpec] = {}
        self._checked: dict[str, datetime] = {}  # per job: instants up to here are dealt with
        self._fires: collections.deque[Fire] = collections.deque(maxlen=history)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # keeps the token out of logs and tracebacks
        return f"LocalScheduler(base_url={self._base_url!r}, jobs={len(self._jobs)})"

    # JobSink

    def apply(self, desired: list[JobSpec], scope_prefix: str) -> SyncResult:
        """See JobSink.apply; with a jobs_file the file is changed and this scheduler follows it."""
        if self._file is not None:
            result = self._file.apply(desired, scope_prefix)
            self._follow_file()
            return result
        with self._lock:
            result = reconcile(self._jobs, desired, scope_prefix)
            self._note_changes(result)
        return result

    def _note_changes(self, result: SyncResult) -> None:
        now = self._now()
        for name in result.created + result.updated:
            self._checked[name] = now
        for name in result.deleted:
            self._checked.pop(name, None)

    def _follow_file(self) -> None:
        assert self._file is not None
        try:
            stat = self._file.path.stat()
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._file_stamp:
            return
        wanted = self._file.load_with_times()
        now = self._now()
        with self._lock:
            # The file holds every job, so anything not in it goes, whatever its name.
            for name in [n for n in self._jobs if n not in wanted]:
                del self._jobs[name]
                self._checked.pop(name, None)
            for name, (spec, changed_at) in wanted.items():
                if self._jobs.get(name) != spec:
                    self._jobs[name] = spec
                    # From the moment it was written, not when this tick first saw it.
                    self._checked[name] = min(max(changed_at, self._born), now)
            self._file_stamp = stamp

    def jobs(self) -> list[JobSpec]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda s: s.name)

    @property
    def fires(self) -> list[Fire]:
        with self._lock:
            return list(self._fires)

    # Firing

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the scheduler clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def run_due(self, now: datetime | None = None) -> list[Fire]:
        """Fire every job due at `now` (default: the clock) and return those firings once done."""
        if self._file is not None:
            self._follow_file()
        now = now.astimezone(UTC) if now is not None else self._now()
        batch: list[tuple[JobSpec, datetime]] = []
        with self._lock:
            for name, spec in self._jobs.items():
                since = self._checked.setdefault(name, now)
                if now <= since:
                    continue
                try:
                    instant = last_due(spec.cron, spec.timezone, since, now)
                except ValueError:
                    log.exception("job %s has an unusable schedule", name)
                    instant = None
                # Claimed under the lock, so a concurrent run_due cannot fire it again.
                self._checked[name] = now
                if instant is not None:
                    batch.append((spec, instant))
        if not batch:
            return []
        with ThreadPoolExecutor(max_workers=min(self._workers, len(batch))) as pool:
            fired = list(pool.map(lambda item: self._fire_safely(*item), batch))
        with self._lock:
            self._fires.extend(fired)
        return fired

    def _fire_safely(self, spec: JobSpec, scheduled_for: datetime) -> Fire:
        try:
            return self._fire(spec, scheduled_for)
        except Exception as exc:  # recorded like any failed firing; the batch goes on
            log.exception("job %s could not be fired", spec.name)
            return Fire(spec.name, scheduled_for, self._now(), None, 0, f"{type(exc).__name__}: {exc}")

    def _fire(self, spec: JobSpec, scheduled_for: datetime) -> Fire:
        headers = {
            "Authorization": f"Bearer {self.__token()}",
            "User-Agent": "paradyze-local-scheduler",
            # The headers Cloud Scheduler adds, so handlers can treat both alike.
            "X-CloudScheduler": "true",
            "X-CloudScheduler-JobName": spec.name,
            "X-CloudScheduler-ScheduleTime": scheduled_for.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        data = None
        if spec.body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(spec.body).encode()
        url = self._base_url + spec.path
        status: int | None = None
        error: str | None = None
        attempt = 0
        for attempt in range(1, self._retries + 2):
            try:
                response = requests.request(spec.method, url, headers=headers, data=data, timeout=self._timeout)
            except requests.RequestException as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            else:
                status, error = response.status_code, None
                response.close()
                # Like Cloud Scheduler: a client error will not get better by retrying.
                if status < 500 and status != 429:
                    break
            if attempt <= self._retries:
                time.sleep(self._retry_backoff * 2 ** (attempt - 1))
        fire = Fire(spec.name, scheduled_for, self._now(), status, attempt, error)
        if fire.ok:
            log.info("fired %s for %s: %s", spec.name, scheduled_for.isoformat(), status)
        else:
            log.warning(
                "job %s for %s failed after %d attempt(s): %s",
                spec.name,
                scheduled_for.isoformat(),
                attempt,
                error or f"HTTP {status}",
            )
        return fire

    # The loop

    def start(self) -> None:
        """Run run_due every settings.scheduler_tick_seconds on a daemon thread until stop()."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="paradyze-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.run_due()
            except Exception:  # one bad tick must not end local scheduling
                log.exception("scheduler tick failed")
