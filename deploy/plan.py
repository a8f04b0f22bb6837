"""`plan`: what apply would change in an environment, read from the live APIs and compared field by field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as gexc

from . import desired
from .config import Environment
from .desired import INVOKER, SECRET_ACCESSOR, Release
from .gcp import Clients

LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"


@dataclass(frozen=True)
class Change:
    kind: str  # secret, secret-iam, service, service-iam, job
    name: str
    action: str  # create, update, add-version, bind
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:<12} {self.kind:<12} {self.name}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class Plan:
    env: Environment
    release: Release
    changes: list[Change] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # what apply cannot do by itself: a person must

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]


def make_plan(env: Environment, release: Release, clients: Clients) -> Plan:
    plan = Plan(env, release)
    _plan_secrets(plan, clients)
    wanted = {env.service_id(t): desired.function_service(env, release, t) for t in env.targets}
    if env.console:
        wanted[env.console_id] = desired.console_service(env, release)
    for service_id, service in wanted.items():
        name = f"{env.location}/services/{service_id}"
        current = _get(clients.run.get_service, name=name)
        if current is None:
            plan.changes.append(Change("service", service_id, "create", f"image {_image(service)}"))
            plan.changes.append(Change("service-iam", service_id, "bind", _members(env, service_id)))
            continue
        differences = service_differences(current, service)
        if differences:
            plan.changes.append(Change("service", service_id, "update", ", ".join(differences)))
        policy = clients.run.get_iam_policy(request={"resource": name})
        if not desired.invoker_members(env, service_id) <= _bound(policy, INVOKER):
            plan.changes.append(Change("service-iam", service_id, "bind", _members(env, service_id)))
    _plan_jobs(plan, clients)
    return plan


def service_differences(current: Any, wanted: Any) -> list[str]:
    """The managed fields where the live service differs from the wanted one."""
    have, want = _shape(current), _shape(wanted)
    return [key for key in want if have.get(key) != want[key]]


def serving_revision(service: Any) -> str | None:
    """The revision that gets the traffic now (a short revision id)."""
    for status in service.traffic_statuses:
        if status.percent == 100 and status.revision:
            return str(status.revision)
    ready = str(service.latest_ready_revision or "")
    return ready.rsplit("/", 1)[-1] or None


def _shape(service: Any) -> dict[str, Any]:
    template = service.template
    container = template.containers[0] if template.containers else None
    env = sorted((e.name, e.value, e.value_source.secret_key_ref.secret, e.value_source.secret_key_ref.version)
                 for e in (container.env if container else []))
    traffic = [(t.type_.name, t.revision, t.percent) for t in service.traffic]
    return {
        "image": container.image if container else None,
        "env": env,
        "port": container.ports[0].container_port if container and container.ports else None,
        "limits": dict(container.resources.limits) if container else {},
        "service_account": template.service_account,
        "scaling": (template.scaling.min_instance_count, template.scaling.max_instance_count),
        "concurrency": template.max_instance_request_concurrency,
        "labels": {k: v for k, v in service.labels.items() if k in ("managed-by", "paradyze-env")},
        "custom_audiences": list(service.custom_audiences),
        "iap_enabled": service.iap_enabled,
        # Traffic pinned to a revision (a rollback) goes back to the latest revision with the next apply.
        "traffic": traffic or [(LATEST, "", 100)],
    }


def _plan_secrets(plan: Plan, clients: Clients) -> None:
    env = plan.env
    for variable, ref in sorted(env.secrets.items()):
        name = f"projects/{env.project}/secrets/{ref.secret}"
        secret = _get(clients.secrets.get_secret, name=name)
        if secret is None:
            plan.changes.append(Change("secret", ref.secret, "create", f"for {variable}"))
        if secret is None or not _has_version(clients, name):
            if ref.generate:
                plan.changes.append(Change("secret", ref.secret, "add-version", "a generated random value"))
            else:
                plan.blocked.append(f"secret {ref.secret} ({variable}) has no value: add one with "
                                    f"`printf %s VALUE | gcloud secrets versions add {ref.secret} --data-file=- "
                                    f"--project {env.project}` (the deploy creates the secret; never its value)")
        member = f"serviceAccount:{env.runtime_service_account}"
        bound = set() if secret is None else _bound(clients.secrets.get_iam_policy(request={"resource": name}),
                                                    SECRET_ACCESSOR)
        if member not in bound:
            plan.changes.append(Change("secret-iam", ref.secret, "bind", f"{SECRET_ACCESSOR} to {member}"))


def _plan_jobs(plan: Plan, clients: Clients) -> None:
    from paradyze.scheduler.cloud import CloudSchedulerSink

    for job in desired.jobs(plan.env, plan.release):
        short = job.name.rsplit("/", 1)[-1]
        current = _get(clients.scheduler.get_job, name=job.name)
        if current is None:
            plan.changes.append(Change("job", short, "create", f"{job.schedule} {job.time_zone}"))
            continue
        # The same comparison the functions' own sync_schedules makes, so the two never fight.
        paths = CloudSchedulerSink._differences(current, job)
        if paths:
            plan.changes.append(Change("job", short, "update", ", ".join(paths)))


def _has_version(clients: Clients, secret: str) -> bool:
    versions = clients.secrets.list_secret_versions(request={"parent": secret, "filter": "state:ENABLED"})
    return any(True for _ in versions)


def _bound(policy: Any, role: str) -> set[str]:
    return {m for b in policy.bindings if b.role == role for m in b.members}


def _members(env: Environment, service_id: str) -> str:
    return f"{INVOKER} to {', '.join(sorted(desired.invoker_members(env, service_id)))}"


def _image(service: Any) -> str:
    return str(service.template.containers[0].image)


def _get(method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except gexc.NotFound:
        return None
