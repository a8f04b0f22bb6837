"""What every job sink shares: the JobSink Protocol, the SyncResult it answers, and the scope check."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .jobs import JobSpec


@dataclass
class SyncResult:
    """Job names per outcome of one apply()."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@runtime_checkable
class JobSink(Protocol):
    def apply(self, desired: list[JobSpec], scope_prefix: str) -> SyncResult:
        """Make the sink's jobs whose names start with scope_prefix exactly `desired`.

        Jobs outside the prefix are never touched. Raises ValueError when a desired job lies
        outside the prefix, Unavailable when the scheduler cannot be reached.
        """


def check_scope(desired: Iterable[JobSpec], scope_prefix: str) -> None:
    """Raises ValueError for an empty prefix, a job outside it, or two jobs with one name."""
    if not scope_prefix:
        raise ValueError("scope_prefix must not be empty")
    names: set[str] = set()
    for job in desired:
        if not job.name.startswith(scope_prefix):
            raise ValueError(f"job {job.name!r} lies outside scope {scope_prefix!r}")
        if job.name in names:
            raise ValueError(f"job {job.name!r} is listed twice")
        names.add(job.name)
