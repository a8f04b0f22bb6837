"""The Google Cloud clients the deploy uses, each pointed at its API or, for tests, at a local endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field


class Endpoints(BaseModel):
    """API endpoints other than Google's (local fakes, emulators); those set get anonymous credentials."""

    run: str | None = Field(default=None, alias="PARADYZE_DEPLOY_RUN_ENDPOINT")
    scheduler: str | None = Field(default=None, alias="PARADYZE_DEPLOY_SCHEDULER_ENDPOINT")
    secrets: str | None = Field(default=None, alias="PARADYZE_DEPLOY_SECRETS_ENDPOINT")


@dataclass
class Clients:
    run: Any  # run_v2.ServicesClient
    scheduler: Any  # scheduler_v1.CloudSchedulerClient
    secrets: Any  # secretmanager_v1.SecretManagerServiceClient


def make_clients(endpoints: Endpoints) -> Clients:
    """REST clients (one transport for Google and the fakes alike), on application default credentials."""
    from google.cloud import run_v2, scheduler_v1, secretmanager_v1

    return Clients(
        run=run_v2.ServicesClient(**_options(endpoints.run)),
        scheduler=scheduler_v1.CloudSchedulerClient(**_options(endpoints.scheduler)),
        secrets=secretmanager_v1.SecretManagerServiceClient(**_options(endpoints.secrets)),
    )


def _options(endpoint: str | None) -> dict[str, Any]:
    if endpoint is None:
        return {"transport": "rest"}
    from google.auth.credentials import AnonymousCredentials

    return {"transport": "rest", "client_options": {"api_endpoint": endpoint},
            "credentials": AnonymousCredentials()}  # type: ignore[no-untyped-call]
