"""`apply`: make an environment match its plan, check the new revisions' health, roll back if they fail."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
import requests
from google.api_core import exceptions as gexc

from . import desired
from .config import Environment
from .desired import INVOKER, SECRET_ACCESSOR
from .gcp import Clients
from .plan import Change, Plan, make_plan, serving_revision
from .targets import REPO

log = logging.getLogger("deploy")
HealthProbe = Callable[[Environment, Clients, dict[str, str]], str | None]  # -> why it is unhealthy, or None


@dataclass
class Report:
    applied: list[str] = field(default_factory=list)
    healthy: bool | None = None  # None: no service changed, so nothing was checked
    problem: str = ""
    rolled_back: dict[str, str] = field(default_factory=dict)  # service id -> the revision serving again

    @property
    def ok(self) -> bool:
        return self.healthy is not False

    def lines(self) -> list[str]:
        out = [f"applied: {line}" for line in self.applied] or ["nothing to change"]
        if self.healthy is True:
            out.append("health_check on the new revisions: ok")
        if self.healthy is False:
            out.append(f"health_check on the new revisions FAILED: {self.problem}")
            out += [f"ROLLED BACK: {sid} serves {rev} again" for sid, rev in sorted(self.rolled_back.items())]
        return out


def apply(plan: Plan, clients: Clients, probe: HealthProbe | None = None, timeout: float = 600.0) -> Report:
    """Do what the plan says; then health-check, and on failure send traffic back to the previous revisions.

    Raises RuntimeError when the plan is blocked (a secret needs a value only a person can give).
    """
    if plan.blocked:
        raise RuntimeError("the plan is blocked:\n" + "\n".join(plan.blocked))
    env, report = plan.env, Report()
    _apply_secrets(plan, clients, report)
    previous: dict[str, str | None] = {}
    urls: dict[str, str] = {}
    failure = ""
    functions = [c for c in plan.of("service") if c.name != env.console_id]
    for change in functions:
        name = f"{env.location}/services/{change.name}"
        before = _get(clients.run.get_service, name=name)
        previous[change.name] = serving_revision(before) if before is not None else None
        target = next(t for t in env.targets if env.service_id(t) == change.name)
        try:
            service = _deploy(clients, name, desired.function_service(env, plan.release, target), timeout)
            urls[change.name] = service.uri
            report.applied.append(str(change))
        except gexc.GoogleAPICallError as exc:
            failure = f"{change.name}: the new revision did not become ready: {exc.message}"
            break
    _apply_service_iam(plan, clients, report, exclude={env.console_id})
    if functions:
        if not failure:
            urls.update(_uris(env, clients))
            failure = (probe or admin_health_probe)(env, clients, urls) or ""
        report.healthy = not failure
        if failure:
            report.problem = failure
            _roll_back(env, clients, previous, report, timeout)
            return report
    for change in plan.of("job"):
        _apply_job(env, plan, clients, change)
        report.applied.append(str(change))
    for change in plan.of("service"):
        if change.name == env.console_id:
            _deploy(clients, f"{env.location}/services/{change.name}", desired.console_service(env, plan.release),
                    timeout)
            report.applied.append(str(change))
    _apply_service_iam(plan, clients, report, only={env.console_id})
    return report


def plan_and_apply(env: Environment, release: desired.Release, clients: Clients,
                   probe: HealthProbe | None = None) -> tuple[Plan, Report]:
    plan = make_plan(env, release, clients)
    return plan, apply(plan, clients, probe)


def admin_health_probe(env: Environment, clients: Clients, urls: dict[str, str]) -> str | None:
    """GET health_check (repair=false) on its new revision, with an admin token minted for this check.

    The token is minted as `python -m local_emulator.admin_token` does, with the environment's
    database URL and JWT secret read from Secret Manager; it lives a quarter of an hour.
    """
    url = urls.get(env.service_id("health_check"))
    if url is None:
        return "health_check is not among the deployed targets"
    values = {variable: _access(clients, env, ref.secret) for variable, ref in env.secrets.items()
              if variable in ("DATABASE_URL", "SUPABASE_JWT_SECRET")}
    with tempfile.TemporaryDirectory(prefix="paradyze-deploy-") as home:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PARADYZE_") and k != "DATABASE_URL"}
        minted = subprocess.run(
            [sys.executable, "-m", "local_emulator.admin_token", "--hours", "0.25", "--actor", "deploy"],
            cwd=str(REPO), env={**base, **values, "PARADYZE_HOME": home}, capture_output=True, text=True,
            timeout=120, check=False)
    if minted.returncode != 0:
        return f"no admin token for the check: {minted.stderr.strip()[-500:]}"
    try:
        answer = requests.get(url, params={"repair": "false"}, timeout=env.health_timeout,
                              headers={"Authorization": f"Bearer {minted.stdout.strip()}"})
    except requests.RequestException as exc:
        return f"health_check did not answer: {type(exc).__name__}"
    if answer.status_code != 200:
        error = answer.json().get("error", {}) if answer.headers.get("content-type", "").startswith(
            "application/json") else {}
        return f"health_check answered {answer.status_code} {error.get('code', '')}: {error.get('message', '')}"
    return None


def _deploy(clients: Clients, name: str, service: Any, timeout: float) -> Any:
    service.name = name
    operation = clients.run.update_service(request={"service": service, "allow_missing": True})
    return operation.result(timeout=timeout)


def _uris(env: Environment, clients: Clients) -> dict[str, str]:
    return {env.service_id(t): clients.run.get_service(name=f"{env.location}/services/{env.service_id(t)}").uri
            for t in env.targets}


def _roll_back(env: Environment, clients: Clients, previous: dict[str, str | None], report: Report,
               timeout: float) -> None:
    from google.cloud import run_v2

    for service_id, revision in previous.items():
        if revision is None:
            log.warning("%s had no revision before this apply: nothing to roll back to", service_id)
            continue
        name = f"{env.location}/services/{service_id}"
        service = clients.run.get_service(name=name)
        service.traffic = [run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
            revision=revision, percent=100)]
        clients.run.update_service(request={"service": service}).result(timeout=timeout)
        report.rolled_back[service_id] = revision


def _apply_secrets(plan: Plan, clients: Clients, report: Report) -> None:
    env = plan.env
    for change in plan.of("secret"):
        parent = f"projects/{env.project}"
        if change.action == "create":
            clients.secrets.create_secret(request={
                "parent": parent, "secret_id": change.name,
                "secret": {"replication": {"automatic": {}}, "labels": {"managed-by": "paradyze-deploy"}}})
        elif change.action == "add-version":
            value = secrets.token_urlsafe(48).encode()
            clients.secrets.add_secret_version(request={
                "parent": f"{parent}/secrets/{change.name}",
                "payload": {"data": value, "data_crc32c": google_crc32c.value(value)}})
        report.applied.append(str(change))
    member = f"serviceAccount:{env.runtime_service_account}"
    for change in plan.of("secret-iam"):
        _bind(clients.secrets, f"projects/{env.project}/secrets/{change.name}", SECRET_ACCESSOR, {member})
        report.applied.append(str(change))


def _apply_service_iam(plan: Plan, clients: Clients, report: Report, *, exclude: set[str] | None = None,
                       only: set[str] | None = None) -> None:
    env = plan.env
    for change in plan.of("service-iam"):
        if (exclude and change.name in exclude) or (only is not None and change.name not in only):
            continue
        _bind(clients.run, f"{env.location}/services/{change.name}", INVOKER,
              desired.invoker_members(env, change.name))
        report.applied.append(str(change))


def _apply_job(env: Environment, plan: Plan, clients: Clients, change: Change) -> None:
    from google.protobuf import field_mask_pb2

    job = next(j for j in desired.jobs(env, plan.release) if j.name.endswith(f"/{change.name}"))
    if change.action == "create":
        clients.scheduler.create_job(request={"parent": env.location, "job": job})
    else:
        mask = field_mask_pb2.FieldMask(paths=change.detail.split(", "))
        clients.scheduler.update_job(request={"job": job, "update_mask": mask})


def _bind(client: Any, resource: str, role: str, members: set[str]) -> None:
    """Add members to role in resource's IAM policy (read-modify-write with its etag); others stay."""
    policy = client.get_iam_policy(request={"resource": resource})
    for binding in policy.bindings:
        if binding.role == role:
            binding.members.extend(sorted(members - set(binding.members)))
            break
    else:
        policy.bindings.add(role=role, members=sorted(members))
    client.set_iam_policy(request={"resource": resource, "policy": policy})


def _access(clients: Clients, env: Environment, secret: str) -> str:
    name = f"projects/{env.project}/secrets/{secret}/versions/latest"
    return str(clients.secrets.access_secret_version(name=name).payload.data.decode())


def _get(method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except gexc.NotFound:
        return None
