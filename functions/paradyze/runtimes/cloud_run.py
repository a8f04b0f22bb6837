"""The `cloud_run` backend: each agent is one Cloud Run service, managed with google-cloud-run (Admin API v2)."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from typing import TYPE_CHECKING

from ..errors import AgentStartFailed, ParadyzeError, ValidationFailed
from ..settings import Settings
from .base import AgentSpec, Owned, RuntimeStatus, Started
from .cloud_run_api import RPC_TIMEOUT, Missing, api_errors, read_retry, services_client, wait
from .cloud_run_secrets import AgentSecrets
from .cloud_run_service import (
    LABEL_AGENT,
    LABEL_INSTANCE,
    agent_labels,
    build_service,
    label_value,
    sensitive_environment,
    service_detail,
    service_state,
)

if TYPE_CHECKING:  # google-cloud-run loads only when this backend is used
    from google.cloud.run_v2 import Service, ServicesClient

_DISCARD_WAIT = 30.0
# Cloud Run gives an instance 10 s between SIGTERM and SIGKILL; a delete cannot shorten or extend it.
_CLOUD_RUN_GRACE = 10.0


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
    CHARACTER_JSON, which the agent reads instead of CHARACTER_PATH. The rest of the agent's
    environment (its key, model keys, the owner's secrets) is kept in a Secret Manager secret of
    the agent's own and never in the service (cloud_run_secrets.py); env values of the form
    `sm://projects/P/secrets/NAME/versions/V` stay references to the user's own secrets.

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
        self.secrets = AgentSecrets(settings)

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

    def secret_id(self, agent_id: str) -> str:
        """The Secret Manager secret holding the agent's environment: its service id and `-env`."""
        return _secret_of(self.service_id(agent_id))

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

        name = self.service_name(spec.agent_id)
        action = f"start agent {spec.agent_id}"
        secret_id = self.secret_id(spec.agent_id)
        values = sensitive_environment(self.settings, spec)
        version = self.secrets.put(secret_id, agent_labels(spec, self.instance_label), values, action=action)
        deployed = False
        try:
            service = build_service(self.settings, spec, self.instance_label, version)
            with api_errors(action, start=True, secrets=values.values()):
                client = self._run()
                try:
                    operation = client.create_service(
                        parent=self.parent, service=service, service_id=self.service_id(spec.agent_id),
                        timeout=RPC_TIMEOUT)
                except gexc.Conflict:
                    # An earlier attempt (a retry after a crash) left the service: deploy over it.
                    service.name = name
                    operation = client.update_service(service=service, timeout=RPC_TIMEOUT)
                deployed = True
                ready: Service = wait(operation, self.settings.agent_start_timeout)
                if not ready.uri:
                    raise AgentStartFailed(f"cannot {action}: Cloud Run reported no URL for {name}")
                if not self.settings.cloud_run_public:
                    self._grant_invoker(client, name)
        except ParadyzeError:
            if deployed:
                self._discard(name)
            with contextlib.suppress(ParadyzeError):
                self.secrets.delete(secret_id)  # a failed start leaves nothing of the agent's behind
            raise
        self.secrets.prune(secret_id, keep=version)
        return Started(handle=ready.name or name, url=ready.uri)

    def stop(self, handle: str, grace: float) -> None:
        """Delete the service and wait until it is gone; a missing service is fine.

        Cloud Run itself sends SIGTERM and waits its fixed 10 s before SIGKILL, so grace
        only lengthens the wait. Raises RuntimeUnavailable when the Admin API does not answer.
        """
        with contextlib.suppress(Missing), api_errors("stop agent service"):
            operation = self._run().delete_service(name=handle, timeout=RPC_TIMEOUT)
            wait(operation, max(self.settings.agent_start_timeout, grace + _CLOUD_RUN_GRACE))
        self.secrets.delete(_secret_of(handle.rsplit("/", 1)[-1]))  # the instance has read it; none is left

    def status(self, handle: str) -> RuntimeStatus:
        """The service's Ready condition; "missing" when it is gone. Raises RuntimeUnavailable.

        Cloud Run exposes no exit codes or memory use; see logs() for where both show.
        """
        try:
            with api_errors("read agent service status"):
                service = self._run().get_service(name=handle, retry=read_retry(), timeout=RPC_TIMEOUT)
        except Missing:
            return RuntimeStatus(state="missing", alive=False, detail="service not found")
        state, alive = service_state(service)
        return RuntimeStatus(state=state, alive=alive, detail=service_detail(service))

    def alive(self, handle: str) -> bool:
        """Ready, or still deploying; False once failed or gone. Raises RuntimeUnavailable."""
        try:
            with api_errors("read agent service status"):
                service = self._run().get_service(name=handle, retry=read_retry(), timeout=RPC_TIMEOUT)
        except Missing:
            return False
        return service_state(service)[1]

    def shares_server(self, handle: str) -> bool:
        return False  # a service is one agent's

    def forget(self, agent_id: str, tenant: str) -> None:
        """Delete the agent's secret, which a start interrupted before its service existed may have
        left (its memory is a database of its own, which delete drops: agent_databases)."""
        self.secrets.delete(self.secret_id(agent_id))

    def close(self) -> None:
        self._client = None
        self.secrets = AgentSecrets(self.settings)

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
        with api_errors("list agent services"):
            owned = [
                Owned(agent_id=service.labels[LABEL_AGENT], handle=service.name, url=service.uri)
                for service in self._run().list_services(parent=self.parent, retry=read_retry(), timeout=RPC_TIMEOUT)
                if service.name.startswith(prefix)
                and service.labels.get(LABEL_INSTANCE) == self.instance_label
                and LABEL_AGENT in service.labels
            ]
        return owned

    # -- internals ---------------------------------------------------------------------------

    def _run(self) -> ServicesClient:
        if self._client is None:
            self._client = services_client(self.settings)
        return self._client

    def _grant_invoker(self, client: ServicesClient, name: str) -> None:
        """Let the platform's service account (and no one else) call the agent's service."""
        from google.iam.v1 import iam_policy_pb2, policy_pb2

        policy = policy_pb2.Policy(bindings=[policy_pb2.Binding(
            role="roles/run.invoker", members=[f"serviceAccount:{self.settings.cloud_run_invoker}"])])
        client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy),
                              timeout=RPC_TIMEOUT)

    def _discard(self, name: str) -> None:
        """Best effort: delete what a failed start deployed; the start's own error is what matters."""
        with contextlib.suppress(Exception):
            wait(self._run().delete_service(name=name, timeout=RPC_TIMEOUT), _DISCARD_WAIT)


def _secret_of(service_id: str) -> str:
    return f"{service_id}-env"


def _project_of(name: str) -> str:
    parts = name.split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "projects" else "?"
