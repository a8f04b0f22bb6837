"""What an environment should look like for one release: its secrets, services, IAM bindings and jobs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from .config import Environment
from .targets import REPO

sys.path.insert(0, str(REPO / "functions"))  # the platform's own job definitions, as the functions build them

from paradyze.scheduler.cloud import CloudSchedulerSink  # noqa: E402
from paradyze.scheduler.jobs import platform_jobs  # noqa: E402
from paradyze.settings import Settings  # noqa: E402

PORT = 8080
MANAGED_LABEL = "managed-by"
INVOKER = "roles/run.invoker"
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
# Functions check every caller's token themselves (user JWT, admin token, Scheduler's OIDC token),
# as Cloud Functions' HTTP functions usually do, so anyone may reach them; the console is behind IAP.
PUBLIC = "allUsers"
_CONSOLE_CONCURRENCY = 80  # Cloud Run's default: Streamlit serves its sessions on one process


@dataclass(frozen=True)
class Release:
    """What a deploy rolls out: the images' tag and the newest migration the deploy applied."""

    tag: str
    schema_version: str


def function_env(env: Environment, release: Release) -> dict[str, str]:
    return {
        **env.env,
        "PARADYZE_SCHEMA_VERSION": release.schema_version,
        "PARADYZE_PUBLIC_URL": env.function_url_template,
        "PARADYZE_SCHEDULER_SERVICE_ACCOUNT": env.scheduler_service_account,
        **({"PARADYZE_CONSOLE_SERVICE_ACCOUNT": env.console_service_account} if env.console else {}),
        "PARADYZE_SCHEDULER_OIDC_AUDIENCE": env.audience,
    }


def function_service(env: Environment, release: Release, target: str) -> Any:
    """The Cloud Run service of one function target, from the platform image."""
    variables = {**function_env(env, release), "FUNCTION_TARGET": target}
    # Each request holds at most one pooled connection at a time: threads + 2 per worker is enough.
    variables = {"WORKERS": str(env.workers), "THREADS": str(env.threads),
                 "PARADYZE_DB_POOL_MAX": str(env.threads + 2), **variables}
    return _service(env, env.image("functions", release.tag), variables, env.runtime_service_account,
                    secrets=True, iap=False, concurrency=env.request_concurrency)


def console_service(env: Environment, release: Release) -> Any:
    """The console: its own service, behind IAP, calling the function services by their URLs as its own
    service account (a Google ID token for the functions' audience, taken as an admin): no admin token
    to mint, store or rotate, and no secret of the platform's."""
    variables = {"PARADYZE_API_URL": env.function_url_template, "PARADYZE_API_AUDIENCE": env.audience}
    return _service(env, env.image("console", release.tag), variables, env.console_service_account,
                    secrets=False, iap=True, concurrency=env.concurrency or _CONSOLE_CONCURRENCY)


def invoker_members(env: Environment, service_id: str) -> set[str]:
    if service_id == env.console_id:
        return {f"serviceAccount:service-{env.project_number}@gcp-sa-iap.iam.gserviceaccount.com"}
    return {PUBLIC}


def jobs(env: Environment, release: Release) -> list[Any]:
    """The platform's own Scheduler jobs, exactly as the functions' sync_schedules builds them."""
    settings = Settings.model_validate({**function_env(env, release), "PARADYZE_SCHEDULER": "cloud",
                                        "GOOGLE_CLOUD_PROJECT": env.project, "PARADYZE_GCP_REGION": env.region})
    sink = CloudSchedulerSink(settings, client=object())
    return [sink.build_job(spec) for spec in platform_jobs(settings)]


def _service(env: Environment, image: str, variables: dict[str, str], account: str, *, secrets: bool,
             iap: bool, concurrency: int) -> Any:
    from google.cloud import run_v2

    env_vars = [run_v2.EnvVar(name=k, value=v) for k, v in sorted(variables.items())]
    if secrets:
        env_vars += [
            run_v2.EnvVar(name=name, value_source=run_v2.EnvVarSource(secret_key_ref=run_v2.SecretKeySelector(
                secret=f"projects/{env.project}/secrets/{ref.secret}", version="latest")))
            for name, ref in sorted(env.secrets.items())
        ]
    container = run_v2.Container(
        image=image,
        ports=[run_v2.ContainerPort(container_port=PORT)],
        env=env_vars,
        resources=run_v2.ResourceRequirements(limits={"cpu": env.cpu, "memory": env.memory}),
    )
    template = run_v2.RevisionTemplate(
        service_account=account,
        scaling=run_v2.RevisionScaling(min_instance_count=env.min_instances, max_instance_count=env.max_instances),
        max_instance_request_concurrency=concurrency,
        containers=[container],
    )
    return run_v2.Service(
        labels={MANAGED_LABEL: "paradyze-deploy", "paradyze-env": env.name},
        ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL,
        custom_audiences=[] if iap else [env.audience],
        iap_enabled=iap,
        launch_stage="BETA" if iap else "GA",  # IAP on Cloud Run is a beta feature
        template=template,
        traffic=[run_v2.TrafficTarget(type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST,
                                      percent=100)],
    )
