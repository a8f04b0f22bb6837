"""What an agent's Cloud Run service is: the spec deployed (image, env, secrets, labels) and its state read back."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING

from .. import agent_databases
from ..agent_keys import api_key
from ..errors import AgentStartFailed
from ..settings import Settings
from .base import AgentSpec
from .images import agent_image, agent_memory

if TYPE_CHECKING:  # google-cloud-run loads only when this backend is used
    from google.cloud.run_v2 import EnvVar, Service

LABEL_AGENT = "paradyze-agent-id"
LABEL_INSTANCE = "paradyze-instance"
LABEL_VERSION = "paradyze-character-version"
CONTAINER_NAME = "agent"
# An env value of this form is a Secret Manager reference, resolved by Cloud Run when the
# instance starts: the secret never passes through (or is stored in) the service's spec.
SECRET_PREFIX = "sm://"
# The agent's own sensitive environment, as a JSON object, from the agent's secret (cloud_run_secrets.py).
AGENT_ENV = "PARADYZE_AGENT_ENV"
# Set in the spec as they are: nothing secret.
_PLAIN = frozenset({"CHARACTER_JSON", "SERVER_PORT", "HOST", "ELIZA_NO_AUTO_INSTALL", AGENT_ENV})
# Cloud Run sets these itself and refuses a service whose container names them.
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"})
_SECRET_REF = re.compile(r"projects/([a-z0-9-]+)/secrets/([A-Za-z0-9_-]+)(?:/versions/([A-Za-z0-9_-]+))?")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_DOCKER_SIZE = re.compile(r"(\d+)\s*([bkmg]?)(?:i?b)?")
_SIZE_UNITS = {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi"}


def agent_labels(spec: AgentSpec, instance_label: str) -> dict[str, str]:
    """Raises AgentStartFailed when the agent id is not a valid label value."""
    if not _LABEL_VALUE.fullmatch(spec.agent_id):
        raise AgentStartFailed(f"agent id {spec.agent_id!r} is not a valid Cloud Run label value")
    return {LABEL_AGENT: spec.agent_id, LABEL_INSTANCE: instance_label, LABEL_VERSION: str(spec.character_version)}


def sensitive_environment(settings: Settings, spec: AgentSpec) -> dict[str, str]:
    """What the agent's secret holds (cloud_run_secrets.py): its key, its database URL, and every
    value of its environment but the user's own Secret Manager references, which stay references."""
    values = {key: value for key, value in spec.env.items()
              if value != "" and key not in RESERVED_ENV and key not in _PLAIN and key != "CHARACTER_PATH"
              and not (value.startswith(SECRET_PREFIX) and _reference(key, value))}
    # Cloud Run's invoker check guards the URL; the agent's own key guards its API as well, so a
    # misgranted invoker role (or PARADYZE_CLOUD_RUN_PUBLIC) still cannot drive the agent.
    values["ELIZA_SERVER_AUTH_TOKEN"] = api_key(spec.agent_id)
    if settings.agent_database_url is not None:
        # No disk outlives a Cloud Run instance: the agent's memory is a database of its own.
        values["POSTGRES_URL"] = agent_databases.ensure(settings, spec.agent_id)
    return values


def build_service(settings: Settings, spec: AgentSpec, instance_label: str, secret_version: str) -> Service:
    """The run_v2.Service deployed for spec, its sensitive environment read from secret_version
    (projects/P/secrets/S/versions/N) when the instance starts.

    Raises AgentStartFailed when the character file cannot be read or a setting or env
    value cannot be expressed on Cloud Run.
    """
    from google.cloud import run_v2

    labels = agent_labels(spec, instance_label)
    try:
        character = spec.character_path.read_bytes()
    except OSError as exc:
        raise AgentStartFailed(f"cannot read the character file of agent {spec.agent_id}: {exc.strerror}") from exc
    container = run_v2.Container(
        name=CONTAINER_NAME,
        image=agent_image(settings),
        ports=[run_v2.ContainerPort(container_port=settings.docker_agent_port)],
        env=_environment(settings, spec, character, secret_version),
        resources=run_v2.ResourceRequirements(
            limits={
                "memory": cloud_run_memory(agent_memory(settings)),
                "cpu": cloud_run_cpu(settings.docker_cpus),
            },
            # CPU outside requests (cpu_idle false, which the API takes as absent once
            # resources are set): an agent runs timers and client connections of its own.
            cpu_idle=False,
        ),
    )
    return run_v2.Service(
        labels=labels,
        ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL,
        # Private unless chosen otherwise: only the invoker granted in start() may call it.
        invoker_iam_disabled=settings.cloud_run_public,
        template=run_v2.RevisionTemplate(
            labels=labels,
            service_account=settings.cloud_run_agent_account or "",
            scaling=run_v2.RevisionScaling(min_instance_count=1, max_instance_count=1),
            containers=[container],
        ),
    )


def _environment(settings: Settings, spec: AgentSpec, character: bytes, secret_version: str) -> list[EnvVar]:
    from google.cloud import run_v2

    plain = {
        "CHARACTER_JSON": base64.b64encode(character).decode("ascii"),
        # Cloud Run sets PORT from the container port; ElizaOS's server reads SERVER_PORT.
        "SERVER_PORT": str(settings.docker_agent_port),
        "HOST": "0.0.0.0",
        "ELIZA_NO_AUTO_INSTALL": "true",
    }
    secret, _, version = secret_version.partition("/versions/")
    env = [run_v2.EnvVar(name=AGENT_ENV, value_source=run_v2.EnvVarSource(
        secret_key_ref=run_v2.SecretKeySelector(secret=secret, version=version)))]
    for key, value in sorted(spec.env.items()):
        # CHARACTER_PATH would name a file that does not exist in the container.
        if value == "" or key in RESERVED_ENV or key in _PLAIN or key == "CHARACTER_PATH":
            continue
        if value.startswith(SECRET_PREFIX):
            project, secret, version = _reference(key, value).groups()
            selector = run_v2.SecretKeySelector(
                secret=f"projects/{project}/secrets/{secret}", version=version or "latest"
            )
            env.append(run_v2.EnvVar(name=key, value_source=run_v2.EnvVarSource(secret_key_ref=selector)))
    env.extend(run_v2.EnvVar(name=key, value=value) for key, value in plain.items())
    return env


def _reference(key: str, value: str) -> re.Match[str]:
    """The parts of an sm:// reference; raises AgentStartFailed naming the variable (never the value)."""
    ref = _SECRET_REF.fullmatch(value[len(SECRET_PREFIX):])
    if ref is None:
        raise AgentStartFailed(
            f"env {key}: a secret reference must read sm://projects/PROJECT/secrets/NAME[/versions/VERSION]")
    return ref


def label_value(text: str) -> str:
    """text as a Cloud Run label value: lowercase [a-z0-9_-], at most 63, the same every time."""
    value = re.sub(r"[^a-z0-9_-]", "-", text.lower())
    if len(value) > 63:
        value = f"{value[:54]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return value


def cloud_run_memory(docker_memory: str) -> str:
    """A Docker memory size ("512m", "1g", "1gb") as a Cloud Run limit ("512Mi", "1Gi").

    Raises AgentStartFailed for anything else.
    """
    match = _DOCKER_SIZE.fullmatch(docker_memory.strip().lower())
    if match is None:
        raise AgentStartFailed(f"PARADYZE_DOCKER_MEMORY={docker_memory!r} is not a size such as 512m or 1g")
    return f"{int(match[1])}{_SIZE_UNITS[match[2]]}"


def cloud_run_cpu(cpus: float) -> str:
    """Docker's CPU count as a Cloud Run limit: 1.0 -> "1", 0.5 -> "500m"."""
    if cpus <= 0:
        raise AgentStartFailed(f"PARADYZE_DOCKER_CPUS={cpus:g} must be positive")
    return str(int(cpus)) if float(cpus).is_integer() else f"{round(cpus * 1000)}m"


def service_state(service: Service) -> tuple[str, bool]:
    """(state word, alive) from the service's Ready condition."""
    from google.cloud import run_v2

    states = run_v2.Condition.State
    if service.delete_time:
        return "deleting", False
    condition = service.terminal_condition.state
    if condition == states.CONDITION_FAILED:
        return "failed", False
    if condition == states.CONDITION_SUCCEEDED and not service.reconciling:
        return "running", True
    # Pending or reconciling: a first revision is coming up, or the last ready one still serves.
    return "deploying", True


def service_detail(service: Service) -> str:
    from google.cloud import run_v2

    condition = service.terminal_condition
    parts = [f"{condition.type_ or 'Ready'} {run_v2.Condition.State(condition.state).name}"]
    for reason in (condition.reason, condition.revision_reason):
        if reason:  # enum 0 is "undefined"
            parts.append(f"reason {reason.name}")
    if service.latest_ready_revision:
        parts.append(f"revision {service.latest_ready_revision.rsplit('/', 1)[-1]}")
    if condition.message:
        parts.append(condition.message)
    return ", ".join(parts)
