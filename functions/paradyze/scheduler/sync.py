"""Keeping a scheduler's jobs equal to the stored schedules, through the configured job sink."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import db, repository
from ..auth import SYSTEM
from ..settings import Settings, get_settings
from .base import JobSink, SyncResult
from .cloud import CloudSchedulerSink
from .file import FileJobSink
from .jobs import agent_jobs, agent_scope, all_jobs, instance_scope


def sync_agent(sink: JobSink, instance: str, agent_id: str, schedules: Iterable[Any]) -> SyncResult:
    """One agent's jobs made equal to its schedules; pass no schedules when the agent is deleted."""
    return sink.apply(agent_jobs(instance, agent_id, schedules), agent_scope(instance, agent_id))


def sync_all(sink: JobSink, settings: Settings, schedules_by_agent: Mapping[str, Iterable[Any]]) -> SyncResult:
    """Every job of the instance: platform jobs plus each agent's; jobs of vanished agents go."""
    return sink.apply(all_jobs(settings, schedules_by_agent), instance_scope(settings.instance))


def get_job_sink(settings: Settings) -> JobSink:
    """The configured sink. "cloud" is Cloud Scheduler; "local" is the file the local scheduler follows."""
    if settings.scheduler_backend == "cloud":
        return CloudSchedulerSink(settings)
    return FileJobSink(settings.state_dir / "scheduler-jobs.json")


def sync_stored_agent(agent_id: str, *, removed: bool = False) -> None:
    """Make the scheduler's jobs for one agent equal to its stored schedules."""
    with db.transaction(SYSTEM) as conn:
        rows = [] if removed else repository.list_schedules(conn, [agent_id])
    sync_agent(get_job_sink(get_settings()), get_settings().instance, agent_id, rows)


def sync_everything() -> dict[str, list[str]]:
    """Every job of this instance, platform jobs included: run at deploy and start-up to repair drift.

    Raises Unavailable when the scheduler cannot be reached.
    """
    with db.transaction(SYSTEM) as conn:
        by_agent: dict[str, list[dict[str, Any]]] = {}
        for s in repository.all_schedules(conn):
            by_agent.setdefault(str(s["agent_id"]), []).append(s)
        for a in repository.list_agents(conn, limit=1_000_000):
            by_agent.setdefault(a.id, [])
    result = sync_all(get_job_sink(get_settings()), get_settings(), by_agent)
    return {"created": result.created, "updated": result.updated, "deleted": result.deleted,
            "unchanged": result.unchanged}
