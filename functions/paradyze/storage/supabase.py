"""Character files in a Supabase Storage bucket, uploaded without upsert so none is ever replaced."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException

from ..errors import Conflict, NotFound, StoreUnavailable
from ..settings import Settings
from .base import version_key
from .cache import FileCache, character_folder, make_uri, split_uri

log = logging.getLogger(__name__)

SCHEME = "supabase"
# Supabase Storage removes at most 1000 paths per request; a page of the listing stays below it.
_PAGE = 100


class SupabaseStorageUnavailable(StoreUnavailable):
    """Supabase Storage did not answer, refused the service key, or failed the request."""


class SupabaseStore:
    kind = "supabase"

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        """`timeout` bounds each HTTP request; a refused connection is retried twice before giving up."""
        missing = [
            name
            for name, value in (
                ("SUPABASE_URL", settings.supabase_url),
                ("SUPABASE_SERVICE_ROLE_KEY", settings.supabase_service_key),
            )
            if not value
        ]
        if missing or settings.supabase_url is None or settings.supabase_service_key is None:
            raise RuntimeError(f"PARADYZE_STORE=supabase needs {' and '.join(missing)}")
        self.bucket = settings.supabase_bucket
        self._cache = FileCache(settings, SCHEME)
        key = settings.supabase_service_key.get_secret_value()
        self._redact = key
        # storage3 (the supabase package's storage client) directly rather than create_client:
        # the full client also builds auth and realtime clients this store never uses, and this
        # way the HTTP client carries our timeout and retries refused connections.
        http = httpx.Client(timeout=timeout, transport=httpx.HTTPTransport(retries=2))
        client = SyncStorageClient(
            url=f"{settings.supabase_url.rstrip('/')}/storage/v1/",
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
            http_client=http,
        )
        self._files = client.from_(self.bucket)

    def __repr__(self) -> str:
        return f"SupabaseStore(bucket={self.bucket!r})"

    def put(self, character_id: str, version: int, data: bytes) -> str:
        name = version_key(character_id, version)
        with self._translated(f"store {name}"):
            try:
                self._files.upload(name, data, file_options={"upsert": "false", "content-type": "application/json"})
            except StorageApiError as exc:
                if not _is_duplicate(exc):
                    raise
                # Also what a retried upload sees when its first attempt did land.
                if self._files.download(name) != data:
                    raise Conflict(f"version {version} of character {character_id} already exists") from None
        return make_uri(SCHEME, self.bucket, name)

    def get(self, uri: str) -> bytes:
        bucket, name = self._split(uri)
        with self._translated(f"read {name}", missing=f"character file {uri} is missing from the store"):
            return self._files.download(name)

    def local_path(self, uri: str) -> Path:
        bucket, name = self._split(uri)
        with self._translated(f"read {name}", missing=f"character file {uri} is missing from the store"):
            return self._cache.path(bucket, name, lambda: self._files.download(name))

    def delete_character(self, character_id: str) -> None:
        folder = character_folder(character_id)
        with self._translated(f"delete {folder}"):
            while True:
                # Always the first page: what was removed no longer shows, so offsets would skip.
                entries = self._files.list(folder, {"limit": _PAGE, "offset": 0})
                # Folders come back with no id; nothing but version files is ever written here.
                paths = [folder + e["name"] for e in entries if e.get("id") is not None]
                if not paths:
                    break
                removed = self._files.remove(paths)
                if not removed:
                    # A 200 that removed nothing (e.g. a key without delete rights) would loop forever.
                    raise SupabaseStorageUnavailable(f"cannot delete {folder}: Supabase Storage removed nothing")
        self._cache.drop(self.bucket, folder)

    def _split(self, uri: str) -> tuple[str, str]:
        bucket, name = split_uri(uri, SCHEME)
        if bucket != self.bucket:
            # The client is bound to one bucket; a URI of another was written under other settings.
            raise NotFound(f"character file {uri} is not in bucket {self.bucket!r}")
        return bucket, name

    @contextmanager
    def _translated(self, action: str, *, missing: str | None = None) -> Iterator[None]:
        """storage3 and httpx errors become domain errors here, with the service key kept out of them."""
        try:
            yield
        except StorageApiError as exc:
            if missing is not None and _is_missing(exc):
                raise NotFound(missing) from exc
            detail = self._redacted(f"{exc.status} {exc.code}: {exc.message}")[:300]
            log.warning("Supabase Storage refused to %s: %s", action, detail)
            raise SupabaseStorageUnavailable(f"cannot {action}: Supabase Storage answered {exc.status}") from exc
        except httpx.HTTPError as exc:
            raise SupabaseStorageUnavailable(f"cannot {action}: Supabase Storage does not answer") from exc
        except StorageException as exc:
            log.warning("Supabase Storage failed to %s: %s", action, self._redacted(str(exc))[:300])
            raise SupabaseStorageUnavailable(f"cannot {action}: Supabase Storage failed") from exc

    def _redacted(self, text: str) -> str:
        return text.replace(self._redact, "[service key]")


def _is_duplicate(exc: StorageApiError) -> bool:
    # Supabase answers HTTP 400 with the real status in the body: `statusCode` "409" and
    # `error` "Duplicate" (newer servers may name the code KeyAlreadyExists instead).
    return str(exc.status) == "409" or exc.code in ("Duplicate", "KeyAlreadyExists", "ResourceAlreadyExists")


def _is_missing(exc: StorageApiError) -> bool:
    # Same shape for a missing object: `statusCode` "404", `error` "not_found" (or NoSuchKey).
    # A missing bucket is also a 404, but a store with no bucket is unusable, not a missing file.
    return (str(exc.status) == "404" or exc.code in ("not_found", "NoSuchKey")) and "bucket" not in exc.message.lower()
