"""An agent's sensitive environment on Cloud Run: kept in Secret Manager, never in its service.

A Cloud Run service's spec, its env included, is readable by anyone with run.services.get on the
project, and every revision keeps a copy. So all an agent's environment that could be sensitive (its
key, its database URL, the platform's model keys for its plugin and its owner's secrets) is one JSON
object in a secret of its own, `<service id>-env`, a version per start. The service names that
version in PARADYZE_AGENT_ENV, a secret reference Cloud Run resolves when the instance starts, and the
agent's image spreads it into the environment before the agent runs (elizaos-entrypoint.sh,
reference_agent.py). The agents' service account (PARADYZE_CLOUD_RUN_AGENT_ACCOUNT) may read that
secret and no other of the platform's. Versions older than the one deployed are destroyed once a
start succeeds; the secret goes with the service when the agent stops or is deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from ..errors import ParadyzeError
from ..google_rest import rest_client
from ..settings import Settings
from .cloud_run_api import RPC_TIMEOUT, Missing, api_errors, read_retry
from .cloud_run_service import AGENT_ENV

if TYPE_CHECKING:  # google-cloud-secret-manager loads only when this backend is used
    from google.cloud.secretmanager_v1 import SecretManagerServiceClient

log = logging.getLogger(__name__)

__all__ = ["AGENT_ENV", "AgentSecrets"]
ACCESSOR = "roles/secretmanager.secretAccessor"
API = "Secret Manager"


class AgentSecrets:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: SecretManagerServiceClient | None = None

    def name(self, secret_id: str) -> str:
        return f"projects/{self.settings.gcp_project}/secrets/{secret_id}"

    def put(self, secret_id: str, labels: dict[str, str], values: dict[str, str], *, action: str) -> str:
        """Store values as a new version of the agent's secret (created on first use) that only the
        agents' account may read; returns the version's resource name. Raises AgentStartFailed, or
        RuntimeUnavailable when Secret Manager does not answer. Messages never carry the values."""
        import google_crc32c
        from google.api_core import exceptions as gexc
        from google.cloud import secretmanager_v1 as sm

        data = json.dumps(values, sort_keys=True).encode()
        with api_errors(action, start=True, secrets=values.values(), api=API):
            client = self._secrets()
            with contextlib.suppress(gexc.Conflict):  # ALREADY_EXISTS: over REST a 409, a Conflict
                client.create_secret(
                    parent=f"projects/{self.settings.gcp_project}", secret_id=secret_id,
                    secret=sm.Secret(replication=sm.Replication(automatic=sm.Replication.Automatic()), labels=labels),
                    timeout=RPC_TIMEOUT)
            if self.settings.cloud_run_agent_account:
                self._grant_reader(client, self.name(secret_id))
            version = client.add_secret_version(
                parent=self.name(secret_id), payload=sm.SecretPayload(data=data, data_crc32c=google_crc32c.value(data)),
                timeout=RPC_TIMEOUT)
        return str(version.name)

    def prune(self, secret_id: str, keep: str) -> None:
        """Destroy every enabled version but keep (the one the service now runs with). Best effort:
        a version left over is destroyed by the next start, or with the secret."""
        try:
            with api_errors("prune agent secret versions", api=API):
                client = self._secrets()
                versions = client.list_secret_versions(
                    request={"parent": self.name(secret_id), "filter": "state:ENABLED"}, retry=read_retry(),
                    timeout=RPC_TIMEOUT)
                for version in versions:
                    if version.name != keep:
                        client.destroy_secret_version(name=version.name, timeout=RPC_TIMEOUT)
        except (Missing, ParadyzeError) as exc:
            log.warning("old versions of agent secret %s are left for the next start: %s", secret_id, exc)

    def delete(self, secret_id: str) -> None:
        """Delete the agent's secret; a missing one is fine. Raises RuntimeUnavailable."""
        with contextlib.suppress(Missing), api_errors("delete agent secret", api=API):
            self._secrets().delete_secret(name=self.name(secret_id), timeout=RPC_TIMEOUT)

    def _grant_reader(self, client: Any, name: str) -> None:
        from google.iam.v1 import iam_policy_pb2, policy_pb2

        policy = policy_pb2.Policy(bindings=[policy_pb2.Binding(
            role=ACCESSOR, members=[f"serviceAccount:{self.settings.cloud_run_agent_account}"])])
        client.set_iam_policy(request=iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=policy),
                              timeout=RPC_TIMEOUT)

    def _secrets(self) -> SecretManagerServiceClient:
        if self._client is None:
            from google.cloud import secretmanager_v1

            self._client = rest_client(secretmanager_v1.SecretManagerServiceClient,
                                       self.settings.secret_manager_api_endpoint)
        return self._client
