"""A JobSink kept in a JSON file, so functions in any local process can hand jobs to the local scheduler."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from .base import SyncResult, check_scope
from .jobs import JobSpec


def spec_to_dict(spec: JobSpec) -> dict[str, object]:
    return dataclasses.asdict(spec)


def spec_from_dict(data: dict[str, object]) -> JobSpec:
    fields = {f.name for f in dataclasses.fields(JobSpec)}
    return JobSpec(**{k: v for k, v in data.items() if k in fields})  # type: ignore[arg-type]


def reconcile(jobs: dict[str, JobSpec], desired: list[JobSpec], scope_prefix: str) -> SyncResult:
    """Make `jobs` (changed in place) hold exactly `desired` under scope_prefix; shared by in-memory sinks."""
    check_scope(desired, scope_prefix)
    result = SyncResult()
    wanted = {spec.name: spec for spec in desired}
    for name in sorted(n for n in jobs if n.startswith(scope_prefix) and n not in wanted):
        del jobs[name]
        result.deleted.append(name)
    for name, spec in wanted.items():
        current = jobs.get(name)
        if current is None:
            result.created.append(name)
        elif current != spec:
            result.updated.append(name)
        else:
            result.unchanged.append(name)
            continue
        jobs[name] = spec
    return result


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FileJobSink:
    """Jobs in one JSON file; writers serialise on an flock, readers see whole files only.

    Each job also records when it was last created or changed, so that a scheduler which reads
    the file a tick later still fires instants that fell after that moment, and none before it.
    """

    def __init__(self, path: Path, clock: Callable[[], datetime] = _utcnow) -> None:
        self.path = Path(path)
        self._clock = clock

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(self.path.suffix + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data: dict[str, dict[str, dict[str, object]]] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return data.get("jobs", {})

    def load(self) -> dict[str, JobSpec]:
        return {name: spec_from_dict(item) for name, item in self._read().items()}

    def load_with_times(self) -> dict[str, tuple[JobSpec, datetime]]:
        """Each job with the instant it was last created or changed."""
        return {
            name: (spec_from_dict(item), datetime.fromisoformat(str(item["changed_at"])))
            for name, item in self._read().items()
        }

    def _save(self, jobs: dict[str, JobSpec], changed_at: dict[str, str]) -> None:
        records = {n: {**spec_to_dict(s), "changed_at": changed_at[n]} for n, s in sorted(jobs.items())}
        body = json.dumps({"jobs": records}, indent=1)
        # Write then rename, so that a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        os.replace(tmp, self.path)

    def apply(self, desired: list[JobSpec], scope_prefix: str) -> SyncResult:
        """See JobSink.apply."""
        with self._locked():
            stored = self._read()
            jobs = {name: spec_from_dict(item) for name, item in stored.items()}
            result = reconcile(jobs, desired, scope_prefix)
            if result.changed:
                changed_at = {name: str(item["changed_at"]) for name, item in stored.items()}
                now = self._clock().astimezone(UTC).isoformat()
                changed_at.update({name: now for name in result.created + result.updated})
                self._save(jobs, changed_at)
        return result
