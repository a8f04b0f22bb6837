"""The scheduler jobs schedules become: one per enabled agent schedule, plus the platform's own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ValidationFailed
from .cron import Schedule, check_cron, check_timezone

if TYPE_CHECKING:
    from ..settings import Settings

HttpMethod = Literal["GET", "POST"]


@dataclass(frozen=True)
class JobSpec:
    """A scheduler job as every sink (Cloud Scheduler, the local scheduler) understands it."""

    name: str
    cron: str
    timezone: str
    method: HttpMethod
    path: str  # appended to the public/base URL, e.g. "/hibernate_agent"
    body: dict[str, Any] | None = field(default=None, hash=False)
    description: str = ""


def agent_job_name(instance: str, agent_id: str, action: str) -> str:
    return f"paradyze-{instance}-{agent_id}-{action}"


def agent_scope(instance: str, agent_id: str) -> str:
    """The name prefix that holds exactly one agent's jobs (agent ids are fixed-length uuids)."""
    return f"paradyze-{instance}-{agent_id}-"


def instance_scope(instance: str) -> str:
    """The name prefix of every job of one platform instance, platform and agent jobs alike."""
    return f"paradyze-{instance}-"


def _as_schedule(item: Schedule | Mapping[str, Any] | Any) -> Schedule:
    # Stored rows are read as stored: a schedule that older rules let in still gets its job.
    if isinstance(item, Schedule):
        return item
    if isinstance(item, Mapping):
        return Schedule.model_validate(item)
    # A stored row object (dataclass, pydantic model) with the same attribute names.
    return Schedule.model_validate(item, from_attributes=True)


def agent_jobs(instance: str, agent_id: str, schedules: Iterable[Any]) -> list[JobSpec]:
    """The jobs for one agent's enabled schedules; a disabled schedule has no job.

    Raises ValidationFailed when two enabled schedules share an action.
    """
    jobs: dict[str, JobSpec] = {}
    for index, item in enumerate(schedules):
        schedule = _as_schedule(item)
        if not schedule.enabled:
            continue
        name = agent_job_name(instance, agent_id, schedule.action)
        if name in jobs:
            raise ValidationFailed(
                f"two enabled {schedule.action} schedules for one agent",
                details=[{"loc": ["schedules", index, "action"], "msg": "duplicate action"}],
            )
        jobs[name] = JobSpec(
            name=name,
            cron=schedule.cron,
            timezone=schedule.timezone,
            method="POST",
            path=f"/{schedule.action}_agent",
            body={"agent_id": agent_id},
            description=f"Paradyze: {schedule.action} agent {agent_id}",
        )
    return list(jobs.values())


def platform_jobs(settings: Settings) -> list[JobSpec]:
    """The platform's own periodic jobs: idle sweep, backup and health check."""
    prefix = instance_scope(settings.instance)
    zone = check_timezone(settings.platform_timezone)
    jobs: list[tuple[str, str, HttpMethod, str, str]] = [
        ("hibernate-idle", settings.idle_sweep_cron, "POST", "/hibernate_idle",
         "hibernate agents idle past their timeout"),
        ("backup", settings.backup_cron, "POST", "/backup_agents", "back up characters, versions and agents"),
        ("health", settings.health_cron, "GET", "/health_check", "platform and agent health check"),
    ]
    return [JobSpec(name=f"{prefix}{suffix}", cron=check_cron(cron), timezone=zone, method=method, path=path,
                    body={} if method == "POST" else None, description=f"Paradyze: {what}")
            for suffix, cron, method, path, what in jobs]


def all_jobs(settings: Settings, schedules_by_agent: Mapping[str, Iterable[Any]]) -> list[JobSpec]:
    """Every job of the instance: the scope instance_scope(settings.instance) made whole."""
    jobs = platform_jobs(settings)
    for agent_id, schedules in schedules_by_agent.items():
        jobs.extend(agent_jobs(settings.instance, agent_id, schedules))
    return jobs
