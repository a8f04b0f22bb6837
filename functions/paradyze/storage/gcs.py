"""Character files in a Google Cloud Storage bucket, each object created once (ifGenerationMatch=0)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from google.api_core import exceptions as google_errors
from google.auth import exceptions as auth_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage import exceptions as storage_errors
from google.cloud.storage.retry import DEFAULT_RETRY

from ..errors import Conflict, NotFound, StoreUnavailable
from ..settings import Settings
from .base import version_key
from .cache import FileCache, character_folder, make_uri, split_uri

log = logging.getLogger(__name__)

SCHEME = "gs"


class GcsUnavailable(StoreUnavailable):
    """Google Cloud Storage did not answer, refused our credentials, or failed the request."""


class GcsStore:
    kind = "gcs"

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        """`timeout` bounds each call, retries included (connection errors, 429 and 5xx are retried)."""
        if not settings.gcs_bucket:
            raise RuntimeError("PARADYZE_STORE=gcs needs PARADYZE_GCS_BUCKET, the bucket for character files")
        self.bucket = settings.gcs_bucket
        self.prefix = f"{settings.gcs_prefix.strip('/')}/" if settings.gcs_prefix.strip("/") else ""
        self._timeout = timeout
        self._retry = DEFAULT_RETRY.with_timeout(timeout)
        self._cache = FileCache(settings, SCHEME)
        with _translated("create the Google Cloud Storage client"):
            self._client = _client(settings)

    def put(self, character_id: str, version: int, data: bytes) -> str:
        name = self.prefix + version_key(character_id, version)
        blob = self._client.bucket(self.bucket).blob(name)
        with _translated(f"store {name}"):
            try:
                # Generation 0 means "only if no live object has this name": GCS itself refuses
                # the overwrite, so two writers racing for one version cannot both win.
                blob.upload_from_string(
                    data,
                    content_type="application/json",
                    if_generation_match=0,
                    retry=self._retry,
                    timeout=self._timeout,
                )
            except google_errors.PreconditionFailed:
                # Also what a retried upload sees when its first attempt did land.
                if self._download(self.bucket, name) != data:
                    raise Conflict(f"version {version} of character {character_id} already exists") from None
        return make_uri(SCHEME, self.bucket, name)

    def get(self, uri: str) -> bytes:
        bucket, name = split_uri(uri, SCHEME)
        with _translated(f"read {name}", missing=f"character file {uri} is missing from the store"):
            return self._download(bucket, name)

    def local_path(self, uri: str) -> Path:
        bucket, name = split_uri(uri, SCHEME)
        with _translated(f"read {name}", missing=f"character file {uri} is missing from the store"):
            return self._cache.path(bucket, name, lambda: self._download(bucket, name))

    def delete_character(self, character_id: str) -> None:
        folder = self.prefix + character_folder(character_id)
        bucket = self._client.bucket(self.bucket)
        with _translated(f"delete {folder}"):
            for blob in list(bucket.list_blobs(prefix=folder, retry=self._retry, timeout=self._timeout)):
                try:
                    blob.delete(retry=self._retry, timeout=self._timeout)
                except google_errors.NotFound:
                    pass  # deleted meanwhile by a concurrent delete: the outcome we want
        self._cache.drop(self.bucket, folder)

    def _download(self, bucket: str, name: str) -> bytes:
        data: bytes = self._client.bucket(bucket).blob(name).download_as_bytes(retry=self._retry, timeout=self._timeout)
        return data


def _client(settings: Settings) -> storage.Client:
    if settings.gcs_api_endpoint:
        # An emulator or test fake: it takes no Google credentials, and asking for them would
        # fail (or worse, send real ones) on a developer machine.
        return storage.Client(
            project=settings.gcp_project or "paradyze-local",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": settings.gcs_api_endpoint},
        )
    return storage.Client(project=settings.gcp_project)


@contextmanager
def _translated(action: str, *, missing: str | None = None) -> Iterator[None]:
    """Google's errors become domain errors here and nowhere else.

    A 404 is NotFound only where an object was asked for (`missing`); elsewhere it means the
    bucket is gone, which no retry by the caller will fix but is still the store being unusable.
    """
    try:
        yield
    except google_errors.NotFound as exc:
        if missing is not None and "specified bucket does not exist" not in str(exc.message):
            raise NotFound(missing) from exc
        raise GcsUnavailable(f"cannot {action}: bucket not found in Google Cloud Storage") from exc
    except google_errors.GoogleAPICallError as exc:
        log.warning("GCS refused to %s: %s %s", action, exc.code, exc.message)
        raise GcsUnavailable(f"cannot {action}: Google Cloud Storage answered {exc.code}") from exc
    except (google_errors.RetryError, requests.RequestException, ConnectionError) as exc:
        raise GcsUnavailable(f"cannot {action}: Google Cloud Storage does not answer") from exc
    except auth_errors.GoogleAuthError as exc:
        raise GcsUnavailable(f"cannot {action}: no usable Google Cloud credentials") from exc
    except (storage_errors.DataCorruption, storage_errors.InvalidResponse) as exc:
        # A checksum mismatch or a garbled response: transient as far as the caller can tell.
        raise GcsUnavailable(f"cannot {action}: Google Cloud Storage sent a corrupt response") from exc


class GcsArchives:
    """Backup archives in `gs://bucket/prefix/`: uploaded create-only, read back for restores."""

    def __init__(self, settings: Settings, base_uri: str, *, timeout: float = 120.0) -> None:
        bucket, _, prefix = base_uri.removeprefix(f"{SCHEME}://").partition("/")
        if not base_uri.startswith(f"{SCHEME}://") or not bucket:
            raise RuntimeError(f"PARADYZE_BACKUP_URI must look like gs://bucket/prefix, not {base_uri!r}")
        self.bucket, self.prefix = bucket, f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._timeout = timeout
        self._retry = DEFAULT_RETRY.with_timeout(timeout)
        with _translated("create the Google Cloud Storage client"):
            self._client = _client(settings)

    def put(self, name: str, path: Path) -> str:
        """Upload the archive at path as `name`; returns its gs:// URI. Raises GcsUnavailable."""
        blob = self._client.bucket(self.bucket).blob(self.prefix + name)
        with _translated(f"upload backup {name}"):
            blob.upload_from_filename(str(path), content_type="application/gzip", if_generation_match=0,
                                      retry=self._retry, timeout=self._timeout)
        return make_uri(SCHEME, self.bucket, self.prefix + name)

    def delete(self, uri: str) -> None:
        """Removes the archive; one already gone is fine. Raises GcsUnavailable when GCS is down."""
        bucket, name = split_uri(uri, SCHEME)
        try:
            with _translated(f"delete backup {name}", missing=f"backup archive {uri} is missing"):
                self._client.bucket(bucket).blob(name).delete(retry=self._retry, timeout=self._timeout)
        except NotFound:
            pass

    def get(self, uri: str) -> bytes:
        """Raises NotFound for a missing archive, GcsUnavailable when GCS is down."""
        bucket, name = split_uri(uri, SCHEME)
        with _translated(f"read backup {name}", missing=f"backup archive {uri} is missing"):
            data: bytes = self._client.bucket(bucket).blob(name).download_as_bytes(
                retry=self._retry, timeout=self._timeout)
        return data
