"""The Cloud Scheduler job sink: one HTTP-target job per JobSpec, in one project and region.

google-cloud-scheduler is imported inside the methods, so that it loads only when this sink is used.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..errors import Unavailable
from ..google_rest import rest_client
from .base import SyncResult, check_scope
from .jobs import JobSpec

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger(__name__)

# Retry policy Cloud Scheduler applies when a target answers with an error or times out.
RETRY_COUNT = 3
MIN_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(minutes=5)
MAX_DOUBLINGS = 3
# A wake waits for the agent to answer health, so allow well over the start timeout.
ATTEMPT_DEADLINE = timedelta(minutes=3)



def _duration(value: Any) -> timedelta:
    # proto-plus gives timedelta for Duration fields; accept a protobuf Duration too.
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=getattr(value, "seconds", 0), microseconds=getattr(value, "nanos", 0) // 1000)


class CloudSchedulerSink:
    """A JobSink over Cloud Scheduler: one HTTP-target job per JobSpec, in one project and region."""

    def __init__(self, settings: Settings, client: Any = None, *, timeout: float = 30.0, retry: Any = None) -> None:
        if not settings.gcp_project:
            raise ValueError("Cloud Scheduler sync needs GOOGLE_CLOUD_PROJECT")
        from google.api_core import retry as retries

        self._settings = settings
        self._parent = f"projects/{settings.gcp_project}/locations/{settings.gcp_region}"
        self._timeout = timeout
        # The library's default retry keeps going for up to 10 minutes; a request handler
        # should rather fail in seconds and let its caller retry.
        self._retry = retry or retries.Retry(initial=0.5, maximum=4.0, timeout=timeout)
        self._client = client or self._make_client(settings)

    @staticmethod
    def _make_client(settings: Settings) -> Any:
        from google.cloud import scheduler_v1

        return rest_client(scheduler_v1.CloudSchedulerClient, settings.scheduler_api_endpoint)

    def _job_path(self, name: str) -> str:
        return f"{self._parent}/jobs/{name}"

    def build_job(self, spec: JobSpec) -> Any:
        """The scheduler_v1.Job for spec (public so that callers can inspect what is sent)."""
        from google.cloud import scheduler_v1

        public_url = self._settings.public_url.rstrip("/")
        target = scheduler_v1.HttpTarget(
            uri=function_url(public_url, spec.path),
            http_method=getattr(scheduler_v1.HttpMethod, spec.method),
        )
        if spec.body is not None:
            target.body = json.dumps(spec.body, sort_keys=True, separators=(",", ":")).encode()
            target.headers = {"Content-Type": "application/json"}
        if self._settings.scheduler_service_account:
            target.oidc_token = scheduler_v1.OidcToken(
                service_account_email=self._settings.scheduler_service_account,
                audience=self._settings.scheduler_oidc_audience or public_url,
            )
        return scheduler_v1.Job(
            name=self._job_path(spec.name),
            description=spec.description,
            schedule=spec.cron,
            time_zone=spec.timezone,
            http_target=target,
            retry_config=scheduler_v1.RetryConfig(
                retry_count=RETRY_COUNT,
                max_retry_duration=timedelta(0),
                min_backoff_duration=MIN_BACKOFF,
                max_backoff_duration=MAX_BACKOFF,
                max_doublings=MAX_DOUBLINGS,
            ),
            attempt_deadline=ATTEMPT_DEADLINE,
        )

    @staticmethod
    def _differences(current: Any, wanted: Any) -> list[str]:
        """Top-level fields (update mask paths) where the live job differs from the wanted one."""
        paths = []
        for path in ("description", "schedule", "time_zone"):
            if getattr(current, path) != getattr(wanted, path):
                paths.append(path)
        have, want = current.http_target, wanted.http_target
        # The service may add headers of its own (User-Agent); only ours must match.
        headers_match = all(have.headers.get(k) == v for k, v in want.headers.items())
        if (
            have.uri != want.uri
            or have.http_method != want.http_method
            or have.body != want.body
            or not headers_match
            or have.oidc_token.service_account_email != want.oidc_token.service_account_email
            or have.oidc_token.audience != want.oidc_token.audience
            or bool(have.oauth_token.service_account_email)
        ):
            paths.append("http_target")
        have_retry, want_retry = current.retry_config, wanted.retry_config
        if (
            have_retry.retry_count != want_retry.retry_count
            or have_retry.max_doublings != want_retry.max_doublings
            or any(
                _duration(getattr(have_retry, f)) != _duration(getattr(want_retry, f))
                for f in ("max_retry_duration", "min_backoff_duration", "max_backoff_duration")
            )
        ):
            paths.append("retry_config")
        if _duration(current.attempt_deadline) != _duration(wanted.attempt_deadline):
            paths.append("attempt_deadline")
        return paths

    def apply(self, desired: list[JobSpec], scope_prefix: str) -> SyncResult:
        """See JobSink.apply. Raises Unavailable when Cloud Scheduler fails or refuses."""
        check_scope(desired, scope_prefix)
        from google.api_core import exceptions as gexc
        from google.protobuf import field_mask_pb2

        result = SyncResult()
        try:
            live = {
                job.name.rsplit("/", 1)[-1]: job
                for job in self._client.list_jobs(parent=self._parent, retry=self._retry, timeout=self._timeout)
                if job.name.rsplit("/", 1)[-1].startswith(scope_prefix)
            }
            for spec in desired:
                wanted = self.build_job(spec)
                current = live.pop(spec.name, None)
                if current is None:
                    try:
                        self._client.create_job(parent=self._parent, job=wanted, timeout=self._timeout)
                        result.created.append(spec.name)
                        continue
                    except gexc.Conflict:
                        # 409 (ALREADY_EXISTS over REST): a concurrent sync created it since we
                        # listed; reconcile it like any other.
                        current = self._client.get_job(name=wanted.name, retry=self._retry, timeout=self._timeout)
                paths = self._differences(current, wanted)
                if not paths:
                    result.unchanged.append(spec.name)
                    continue
                self._client.update_job(
                    job=wanted, update_mask=field_mask_pb2.FieldMask(paths=paths), timeout=self._timeout
                )
                result.updated.append(spec.name)
            for name in sorted(live):
                try:
                    self._client.delete_job(name=self._job_path(name), retry=self._retry, timeout=self._timeout)
                except gexc.NotFound:
                    pass  # deleted concurrently: the outcome wanted anyway
                result.deleted.append(name)
        except gexc.GoogleAPICallError as exc:
            raise Unavailable(f"Cloud Scheduler refused the sync: {type(exc).__name__}: {exc.message}") from exc
        except gexc.RetryError as exc:
            raise Unavailable("Cloud Scheduler did not answer in time") from exc
        except Exception as exc:
            if _is_transport_error(exc):
                raise Unavailable(f"Cloud Scheduler is unreachable: {type(exc).__name__}") from exc
            raise
        if result.changed:
            log.info(
                "scheduler sync %s: created=%s updated=%s deleted=%s",
                scope_prefix,
                result.created,
                result.updated,
                result.deleted,
            )
        return result


def function_url(public_url: str, path: str) -> str:
    """The URL of the function at path: public_url + path, or, when each function is a service of
    its own (Cloud Run), public_url with `{function}` replaced by its name as a service id."""
    if "{function}" in public_url:
        return public_url.replace("{function}", path.strip("/").replace("_", "-"))
    return public_url + path


def _is_transport_error(exc: Exception) -> bool:
    import requests
    from google.auth import exceptions as auth_exceptions

    return isinstance(exc, (requests.RequestException, auth_exceptions.TransportError))
