"""A JobSink kept in a JSON file, so functions in any local process can hand jobs to the local scheduler."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .scheduler_sync import SyncResult, check_scope
from .schedules import JobSpec


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


class FileJobSink:
    """Jobs in one JSON file; writers serialise on an flock, readers see whole files only."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(self.path.suffix + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self) -> dict[str, JobSpec]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {name: spec_from_dict(item) for name, item in data.get("jobs", {}).items()}

    def _save(self, jobs: dict[str, JobSpec]) -> None:
        body = json.dumps({"jobs": {n: spec_to_dict(s) for n, s in sorted(jobs.items())}}, indent=1)
        # Write then rename, so that a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        os.replace(tmp, self.path)

    def apply(self, desired: list[JobSpec], scope_prefix: str) -> SyncResult:
        """See JobSink.apply."""
        with self._locked():
            jobs = self.load()
            result = reconcile(jobs, desired, scope_prefix)
            if result.changed:
                self._save(jobs)
        return result
