"""The `cloud_run` backend: each agent is one Cloud Run service, managed with google-cloud-run (Admin API v2)."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .. import agent_databases
from ..agent_keys import api_key
from ..errors import AgentStartFailed, ParadyzeError, RuntimeUnavailable, ValidationFailed
from ..settings import Settings
from .base import AgentSpec, Owned, RuntimeStatus, Started
from .images import agent_image, agent_memory

if TYPE_CHECKING:  # google-cloud-run loads only when this backend is used
    from google.cloud.run_v2 import EnvVar, Service, ServicesClient

LABEL_AGENT = "paradyze-agent-id"
LABEL_INSTANCE = "paradyze-instance"
LABEL_VERSION = "paradyze-character-version"
CONTAINER_NAME = "agent"
# An env value of this form is a Secret Manager reference, resolved by Cloud Run when the
# instance starts: the secret never passes through (or is stored in) the service's spec.
SECRET_PREFIX = "sm://"
# Cloud Run sets these itself and refuses a service whose container names them.
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"})
_SECRET_REF = re.compile(r"projects/([a-z0-9-]+)/secrets/([A-Za-z0-9_-]+)(?:/versions/([A-Za-z0-9_-]+))?")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_DOCKER_SIZE = re.compile(r"(\d+)\s*([bkmg]?)(?:i?b)?")
_SIZE_UNITS = {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi"}
_RPC_TIMEOUT = 30.0
# Reads retry a 503 for at most this long (the library's default is 10 s): alive() is polled
# while an agent starts, and a caller would rather see RuntimeUnavailable soon and retry.
_READ_RETRY_S = 4.0
_DISCARD_WAIT = 30.0
# Cloud Run gives an instance 10 s between SIGTERM and SIGKILL; a delete cannot shorten or extend it.
_CLOUD_RUN_GRACE = 10.0


class _Missing(Exception):
    """The service does not exist (NotFound, translated in _api_errors)."""


class CloudRunRuntime:
    """One Cloud Run service per agent, in projects/{gcp_project}/locations/{gcp_region}.

    The service id is `pz-{first 8 hex of sha256(instance_key)}-{agent UUID without dashes}`
    (44 characters; Cloud Run allows 49 of [a-z0-9-] starting with a letter). The instance
    key is hashed because it is free text; an agent id that is not a UUID is replaced by the
    first 32 hex digits of its sha256. The same agent thus always gets the same service, and
    two platform instances never share one. Labels carry the readable agent id and instance.

    An agent is a stateful singleton holding long-lived connections, so a running service
    has exactly one instance (min = max = 1) with CPU always allocated: scale-to-zero would
    drop its connections and background work. Hibernation deletes the service: nothing is
    billed while hibernated, and the agent's state lives in the platform's database and store.

    The character file cannot be bind-mounted on Cloud Run; it travels base64-encoded in
    CHARACTER_JSON, which the agent reads instead of CHARACTER_PATH. Agent env values of the
    form `sm://projects/P/secrets/NAME/versions/V` become Secret Manager references.

    The image and memory limit are the docker runtime's (images.py: the ElizaOS image and 1 GiB
    unless PARADYZE_AGENT=reference); PARADYZE_DOCKER_IMAGE must name an image Cloud Run can pull
    (Artifact Registry, e.g. REGION-docker.pkg.dev/PROJECT/paradyze/elizaos:1.7.2). A deployment
    takes tens of seconds, so PARADYZE_AGENT_START_TIMEOUT wants raising (e.g. 300) with this backend.

    The handle is the service's full resource name.
    """

    kind = "cloud_run"

    def __init__(self, settings: Settings) -> None:
        """Raises ValidationFailed when the platform has no Google Cloud project to deploy into."""
        if not settings.gcp_project:
            # Not a dependency being down (no retry helps): the runtime is not offered here.
            raise ValidationFailed(
                "the cloud_run runtime is not available on this platform: GOOGLE_CLOUD_PROJECT is not set",
                details=[{"loc": ["runtime"], "msg": "cloud_run is not configured here"}],
            )
        if not settings.cloud_run_public and not settings.cloud_run_invoker:
            raise ValidationFailed(
                "the cloud_run runtime needs PARADYZE_CLOUD_RUN_INVOKER, the service account the platform"
                " calls agents as (or PARADYZE_CLOUD_RUN_PUBLIC=true to deploy agents open to anyone)",
                details=[{"loc": ["runtime"], "msg": "cloud_run is not configured here"}],
            )
        self.settings = settings
        self._client: ServicesClient | None = None

    # -- naming ------------------------------------------------------------------------------

    @property
    def parent(self) -> str:
        return f"projects/{self.settings.gcp_project}/locations/{self.settings.gcp_region}"

    @property
    def _instance_hash(self) -> str:
        return hashlib.sha256(self.settings.instance_key.encode()).hexdigest()[:8]

    def service_id(self, agent_id: str) -> str:
        try:
            agent_part = uuid.UUID(agent_id).hex
        except ValueError:
            agent_part = hashlib.sha256(agent_id.encode()).hexdigest()[:32]
        return f"pz-{self._instance_hash}-{agent_part}"

    def service_name(self, agent_id: str) -> str:
        return f"{self.parent}/services/{self.service_id(agent_id)}"

    @property
    def instance_label(self) -> str:
        return label_value(self.settings.instance_key)

    # -- the Protocol ------------------------------------------------------------------------

    def start(self, spec: AgentSpec) -> Started:
        """Deploy the agent's service and return once Cloud Run reports it Ready.

        Cloud Run's Ready already means the container listens on its port; the platform
        still awaits the agent's health. A service left by an earlier attempt is updated
        in place. A start that fails deletes the service again, leaving nothing billed.
        Raises RuntimeUnavailable when the Admin API does not answer, AgentStartFailed
        otherwise (refused spec, revision not ready within agent_start_timeout, ...).
        """
        from google.api_core import exceptions as gexc

        service = self.build_service(spec)
        name = self.service_name(spec.agent_id)
        action = f"start agent {spec.agent_id}"
        with self._api_errors(action, start=True, secrets=spec.env.values()):
            client = self._run()
            try:
                operation = client.create_service(
                    parent=self.parent,
                    service=service,
                    service_id=self.service_id(spec.agent_id),
                    timeout=_RPC_TIMEOUT,
                )
            except gexc.Conflict:
                # An earlier attempt (a retry after a crash) left the service: deploy over it.
                service.name = name
                operation = client.update_service(service=service, timeout=_RPC_TIMEOUT)
        try:
            with self._api_errors(action, start=True, secrets=spec.env.values()):
                ready: Service = self._wait(operation, self.settings.agent_start_timeout)
                if not ready.uri:
                    raise AgentStartFailed(f"cannot {action}: Cloud Run reported no URL for {name}")
                if not self.settings.cloud_run_public:
                    self._grant_invoker(client, name)
        except ParadyzeError:
            self._discard(name)
            raise
        return Started(handle=ready.name or name, url=ready.uri)

    def stop(self, handle: str, grace: float) -> None:
        """Delete the service and wait until it is gone; a missing service is fine.

        Cloud Run itself sends SIGTERM and waits its fixed 10 s before SIGKILL, so grace
        only lengthens the wait. Raises RuntimeUnavailable when the Admin API does not answer.
        """
        with contextlib.suppress(_Missing), self._api_errors("stop agent service"):
            operation = self._run().delete_service(name=handle, timeout=_RPC_TIMEOUT)
            self._wait(operation, max(self.settings.agent_start_timeout, grace + _CLOUD_RUN_GRACE))

    def status(self, handle: str) -> RuntimeStatus:
        """The service's Ready condition; "missing" when it is gone. Raises RuntimeUnavailable.

        Cloud Run exposes no exit codes or memory use; see logs() for where both show.
        """
        try:
            with self._api_errors("read agent service status"):
                service = self._run().get_service(name=handle, retry=_read_retry(), timeout=_RPC_TIMEOUT)
        except _Missing:
            return RuntimeStatus(state="missing", alive=False, detail="service not found")
        state, alive = _state(service)
        return RuntimeStatus(state=state, alive=alive, detail=_detail(service))

    def alive(self, handle: str) -> bool:
        """Ready, or still deploying; False once failed or gone. Raises RuntimeUnavailable."""
        try:
            with self._api_errors("read agent service status"):
                service = self._run().get_service(name=handle, retry=_read_retry(), timeout=_RPC_TIMEOUT)
        except _Missing:
            return False
        return _state(service)[1]

    def logs(self, handle: str, tail: int = 200) -> list[str]:
        """One line saying where the logs are: Cloud Run sends them to Cloud Logging.

        Reading Cloud Logging needs a client this platform does not ship; the line is the
        command that shows the last `tail` entries of this agent's service.
        """
        project, service_id = _project_of(handle), handle.rsplit("/", 1)[-1]
        query = f"resource.type=cloud_run_revision AND resource.labels.service_name={service_id}"
        return [f"agent logs are in Cloud Logging: gcloud logging read '{query}' --project {project} --limit {tail}"]

    def list_owned(self) -> list[Owned]:
        """Every service in the project and region labelled with this platform instance.

        The Admin API cannot filter by label, so all services are listed (page by page) and
        filtered here, by label and by this instance's service id prefix.
        """
        prefix = f"{self.parent}/services/pz-{self._instance_hash}-"
        with self._api_errors("list agent services"):
            owned = [
                Owned(agent_id=service.labels[LABEL_AGENT], handle=service.name, url=service.uri)
                for service in self._run().list_services(parent=self.parent, retry=_read_retry(), timeout=_RPC_TIMEOUT)
                if service.name.startswith(prefix)
                and service.labels.get(LABEL_INSTANCE) == self.instance_label
                and LABEL_AGENT in service.labels
            ]
        return owned

    # -- the service spec --------------------------------------------------------------------

    def build_service(self, spec: AgentSpec) -> Service:
        """The run_v2.Service deployed for spec (public so that tests can inspect what is sent).

        Raises AgentStartFailed when the character file cannot be read or a setting or env
        value cannot be expressed on Cloud Run.
        """
        from google.cloud import run_v2

        if not _LABEL_VALUE.fullmatch(spec.agent_id):
            raise AgentStartFailed(f"agent id {spec.agent_id!r} is not a valid Cloud Run label value")
        try:
            character = spec.character_path.read_bytes()
        except OSError as exc:
            raise AgentStartFailed(f"cannot read the character file of agent {spec.agent_id}: {exc.strerror}") from exc
        labels = {
            LABEL_AGENT: spec.agent_id,
            LABEL_INSTANCE: self.instance_label,
            LABEL_VERSION: str(spec.character_version),
        }
        container = run_v2.Container(
            name=CONTAINER_NAME,
            image=agent_image(self.settings),
            ports=[run_v2.ContainerPort(container_port=self.settings.docker_agent_port)],
            env=self._environment(spec, character),
            resources=run_v2.ResourceRequirements(
                limits={
                    "memory": cloud_run_memory(agent_memory(self.settings)),
                    "cpu": cloud_run_cpu(self.settings.docker_cpus),
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
            invoker_iam_disabled=self.settings.cloud_run_public,
            template=run_v2.RevisionTemplate(
                labels=labels,
                scaling=run_v2.RevisionScaling(min_instance_count=1, max_instance_count=1),
                containers=[container],
            ),
        )

    def _environment(self, spec: AgentSpec, character: bytes) -> list[EnvVar]:
        from google.cloud import run_v2

        platform = {
            "CHARACTER_JSON": base64.b64encode(character).decode("ascii"),
            # Cloud Run sets PORT from the container port; ElizaOS's server reads SERVER_PORT.
            "SERVER_PORT": str(self.settings.docker_agent_port),
            "HOST": "0.0.0.0",
            # Cloud Run's invoker check guards the URL; the agent's own key guards its API as well, so a
            # misgranted invoker role (or PARADYZE_CLOUD_RUN_PUBLIC) still cannot drive the agent.
            "ELIZA_SERVER_AUTH_TOKEN": api_key(spec.agent_id),
            "ELIZA_NO_AUTO_INSTALL": "true",
        }
        if self.settings.agent_database_url is not None:
            # No disk outlives a Cloud Run instance: the agent's memory is a database of its own.
            platform["POSTGRES_URL"] = agent_databases.ensure(self.settings, spec.agent_id)
        env: list[EnvVar] = []
        for key, value in sorted(spec.env.items()):
            # CHARACTER_PATH would name a file that does not exist in the container.
            if value == "" or key in RESERVED_ENV or key in platform or key == "CHARACTER_PATH":
                continue
            if value.startswith(SECRET_PREFIX):
                ref = _SECRET_REF.fullmatch(value[len(SECRET_PREFIX) :])
                if ref is None:
                    raise AgentStartFailed(
                        f"env {key}: a secret reference must read sm://projects/PROJECT/secrets/NAME[/versions/VERSION]"
                    )
                project, secret, version = ref.groups()
                selector = run_v2.SecretKeySelector(
                    secret=f"projects/{project}/secrets/{secret}", version=version or "latest"
                )
                env.append(run_v2.EnvVar(name=key, value_source=run_v2.EnvVarSource(secret_key_ref=selector)))
            else:
                env.append(run_v2.EnvVar(name=key, value=value))
        env.extend(run_v2.EnvVar(name=key, value=value) for key, value in platform.items())
        return env

    # -- internals ---------------------------------------------------------------------------

    def _run(self) -> ServicesClient:
        if self._client is None:
            from google.cloud import run_v2

            if self.settings.cloud_run_api_endpoint:
                from google.auth.credentials import AnonymousCredentials

                self._client = run_v2.ServicesClient(
                    transport="rest",
                    client_options={"api_endpoint": self.settings.cloud_run_api_endpoint},
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                )
            else:
                # REST everywhere: one transport, so one set of transport errors to translate.
                self._client = run_v2.ServicesClient(transport="rest")
        return self._client

    @staticmethod
    def _wait(operation: Any, timeout: float) -> Any:
        """The long-running operation's result, polling from 0.2 s up to 2 s apart, for at most timeout."""
        from google.api_core import retry as retries
        from google.api_core.future import polling

        poll = retries.Retry(predicate=polling.POLLING_PREDICATE, initial=0.2, maximum=2.0, multiplier=1.5)
        return operation.result(timeout=timeout, polling=poll)

    def _grant_invoker(self, client: ServicesClient, name: str) -> None:
        """Let the platform's service account (and no one else) call the agent's service."""
        from google.iam.v1 import iam_policy_pb2, policy_pb2

        policy = policy_pb2.Policy(bindings=[policy_pb2.Binding(
            role="roles/run.invoker", members=[f"serviceAccount:{self.settings.cloud_run_invoker}"])])
        client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy),
                              timeout=_RPC_TIMEOUT)

    def _discard(self, name: str) -> None:
        """Best effort: delete what a failed start deployed; the start's own error is what matters."""
        with contextlib.suppress(Exception):
            self._wait(self._run().delete_service(name=name, timeout=_RPC_TIMEOUT), _DISCARD_WAIT)

    @contextlib.contextmanager
    def _api_errors(self, action: str, *, start: bool = False, secrets: Iterable[str] = ()) -> Iterator[None]:
        """The one place where Cloud Run client errors become domain errors.

        NotFound becomes _Missing (callers decide whether that is fine); an API that does not
        answer (unreachable, 503, deadline, no credentials) becomes RuntimeUnavailable; any
        other refusal or a deployment that fails or times out is AgentStartFailed while
        starting and RuntimeUnavailable otherwise. Messages never carry env values.
        """
        import requests
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exceptions

        secrets = list(secrets)
        failed = AgentStartFailed if start else RuntimeUnavailable
        try:
            yield
        except ParadyzeError:
            raise
        except gexc.NotFound as exc:
            raise _Missing(action) from exc
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError) as exc:
            raise RuntimeUnavailable(f"cannot {action}: the Cloud Run Admin API does not answer") from exc
        except (requests.RequestException, auth_exceptions.TransportError) as exc:
            raise RuntimeUnavailable(
                f"cannot {action}: the Cloud Run Admin API is unreachable ({type(exc).__name__})"
            ) from exc
        except auth_exceptions.GoogleAuthError as exc:
            raise RuntimeUnavailable(f"cannot {action}: no usable Google credentials ({type(exc).__name__})") from exc
        except concurrent.futures.TimeoutError as exc:
            raise failed(f"cannot {action}: Cloud Run did not finish in time ({exc})") from exc
        except gexc.GoogleAPICallError as exc:
            reason = _scrub(f"{type(exc).__name__}: {exc.message}", secrets)
            raise failed(f"cannot {action}: {reason}") from exc


def _read_retry() -> Any:
    from google.api_core import exceptions as gexc
    from google.api_core import retry as retries

    return retries.Retry(
        initial=0.2, maximum=1.0, timeout=_READ_RETRY_S, predicate=retries.if_exception_type(gexc.ServiceUnavailable)
    )


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


def _state(service: Service) -> tuple[str, bool]:
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


def _detail(service: Service) -> str:
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


def _project_of(name: str) -> str:
    parts = name.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "projects" else "?"


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """Blank out env values an API message might echo back (e.g. from the create request)."""
    for value in secrets:
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text
