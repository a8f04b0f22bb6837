"""Google Cloud's agent-hosting APIs wired together as in a project: the Cloud Run Admin fake resolves
its services' secret references against the Secret Manager fake when an instance starts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from paradyze.settings import Settings
from tests.fakes.cloud_run import FakeCloudRun
from tests.fakes.secret_manager import FakeSecretManager

PROJECT = "paradyze-test"
INVOKER = "paradyze-platform@paradyze-test.iam.gserviceaccount.com"


@dataclass(frozen=True)
class CloudFakes:
    """Cloud Run Admin and Secret Manager, wired as in Google Cloud: a service's secret references
    resolve against the Secret Manager fake when its instance starts."""

    run: FakeCloudRun
    secrets: FakeSecretManager

    def settings(self, settings: Settings, **update: Any) -> Settings:
        """settings pointed at both fakes, for project paradyze-test and a private invoker."""
        return settings.model_copy(update={
            "gcp_project": PROJECT, "cloud_run_api_endpoint": self.run.endpoint,
            "secret_manager_api_endpoint": self.secrets.endpoint, "cloud_run_invoker": INVOKER, **update})


@contextmanager
def cloud_fakes(**run_options: Any) -> Iterator[CloudFakes]:
    with FakeSecretManager() as secrets, FakeCloudRun(**run_options) as run:
        run.secrets = secrets.values()  # type: ignore[assignment]
        yield CloudFakes(run=run, secrets=secrets)
