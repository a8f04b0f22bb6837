"""A local fake of the Supabase Storage REST API (objects only), served on 127.0.0.1 for tests.

It speaks what storage3 sends under `/storage/v1`: multipart uploads at `POST /object/{bucket}/{path}`
(a duplicate without `x-upsert: true` is refused), downloads at `GET /object/{bucket}/{path}` (and
`/object/authenticated/...`), `POST /object/list/{bucket}` (one folder level, limit/offset) and
`DELETE /object/{bucket}` with `{"prefixes": [...]}`. Errors have the server's shape: HTTP 400 (500
for server faults) with the real status inside the body, e.g. `{"statusCode": "409", "error":
"Duplicate", ...}`. Every request must carry the service key as both `apikey` and Bearer token.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from tests.fakes.server import LocalApiWithFailures


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class StoredObject:
    data: bytes
    mimetype: str
    cache_control: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z"))

    def entry(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "id": self.id,
            "updated_at": self.created,
            "created_at": self.created,
            "last_accessed_at": self.created,
            "metadata": {
                "eTag": f'"{hashlib.md5(self.data).hexdigest()}"',
                "size": len(self.data),
                "mimetype": self.mimetype,
                "cacheControl": f"max-age={self.cache_control}",
                "lastModified": self.created,
                "contentLength": len(self.data),
                "httpStatusCode": 200,
            },
        }


def _error(status: int, error: str, message: str, code: str | None = None) -> Response:
    # The server renders its errors like this: the HTTP status is 400 unless the fault is its own.
    response = jsonify({"statusCode": str(status), "code": code or error, "error": error, "message": message})
    response.status_code = 500 if status >= 500 else 400
    return response


class FakeSupabaseStorage(LocalApiWithFailures):
    """Start with `with FakeSupabaseStorage(key) as fake:`; use `fake.url` as SUPABASE_URL.

    `fail_next(status, times)` answers the next requests with an error without touching any object.
    """

    def __init__(self, service_key: str, buckets: tuple[str, ...] = ("character-files",)) -> None:
        self.service_key = service_key
        self.buckets: dict[str, dict[str, StoredObject]] = {b: {} for b in buckets}
        self.calls: list[Call] = []
        self.echo_auth_in_errors = False  # a hostile server, to prove the key never leaks through us
        super().__init__()

    @property
    def url(self) -> str:
        return self.endpoint

    def names(self, bucket: str = "character-files") -> list[str]:
        with self._lock:
            return sorted(self.buckets[bucket])

    def _build_app(self) -> Flask:
        app = Flask("fake-supabase-storage")
        base = "/storage/v1/object"

        @app.before_request
        def check() -> Response | None:
            with self._lock:
                self.calls.append(Call(request.method, request.path, dict(request.headers)))
                failure = self._next_failure()
            if failure:
                status, message = failure
                echoed = f" ({request.headers.get('Authorization')})" if self.echo_auth_in_errors else ""
                return _error(status, "InternalError", f"{message}{echoed}")
            bearer = request.headers.get("Authorization", "")
            if request.headers.get("apikey") != self.service_key or bearer != f"Bearer {self.service_key}":
                echoed = f": {bearer}" if self.echo_auth_in_errors else ""
                return _error(400, "InvalidJWT", f"invalid signature{echoed}")
            return None

        def objects_of(bucket: str) -> dict[str, StoredObject] | Response:
            objects = self.buckets.get(bucket)
            if objects is None:
                return _error(404, "Bucket not found", "Bucket not found", code="NoSuchBucket")
            return objects

        @app.post(f"{base}/<bucket>/<path:name>")
        def upload(bucket: str, name: str) -> Response:
            upload = request.files.get("file")
            if upload is None:
                return _error(400, "InvalidRequest", "No content provided")
            data = upload.read()
            upsert = request.headers.get("x-upsert", "false").lower() == "true"
            with self._lock:
                objects = objects_of(bucket)
                if isinstance(objects, Response):
                    return objects
                if name in objects and not upsert:
                    return _error(409, "Duplicate", "The resource already exists", code="KeyAlreadyExists")
                stored = StoredObject(
                    data, upload.mimetype or "application/octet-stream", request.form.get("cacheControl", "3600")
                )
                objects[name] = stored
            return jsonify({"Key": f"{bucket}/{name}", "Id": stored.id})

        @app.get(f"{base}/<bucket>/<path:name>")
        @app.get(f"{base}/authenticated/<bucket>/<path:name>")
        def download(bucket: str, name: str) -> Response:
            with self._lock:
                objects = objects_of(bucket)
                if isinstance(objects, Response):
                    return objects
                stored = objects.get(name)
                if stored is None:
                    return _error(404, "not_found", "Object not found", code="NoSuchKey")
            return Response(
                stored.data, content_type=stored.mimetype, headers={"Cache-Control": f"max-age={stored.cache_control}"}
            )

        @app.post(f"{base}/list/<bucket>")
        def list_objects(bucket: str) -> Response:
            body = request.get_json(silent=True) or {}
            prefix = str(body.get("prefix") or "")
            if prefix and not prefix.endswith("/"):
                prefix += "/"
            search = str(body.get("search") or "")
            limit, offset = int(body.get("limit", 100)), int(body.get("offset", 0))
            descending = (body.get("sortBy") or {}).get("order") == "desc"
            with self._lock:
                objects = objects_of(bucket)
                if isinstance(objects, Response):
                    return objects
                level: dict[str, dict[str, Any]] = {}
                for full, stored in objects.items():
                    if not full.startswith(prefix):
                        continue
                    rest = full[len(prefix) :]
                    if "/" in rest:  # deeper down: shown as a folder, as the server does
                        folder = rest.split("/", 1)[0]
                        level[folder] = {
                            "name": folder,
                            "id": None,
                            "updated_at": None,
                            "created_at": None,
                            "last_accessed_at": None,
                            "metadata": None,
                        }
                    else:
                        level[rest] = stored.entry(rest)
            names = sorted((n for n in level if n.lower().startswith(search.lower())), reverse=descending)
            return jsonify([level[n] for n in names[offset : offset + limit]])

        @app.delete(f"{base}/<bucket>")
        def remove(bucket: str) -> Response:
            prefixes = (request.get_json(silent=True) or {}).get("prefixes")
            if not isinstance(prefixes, list) or not 1 <= len(prefixes) <= 1000:
                return _error(400, "InvalidRequest", "prefixes must be a list of 1 to 1000 paths")
            removed = []
            with self._lock:
                objects = objects_of(bucket)
                if isinstance(objects, Response):
                    return objects
                for name in prefixes:
                    stored = objects.pop(name, None)
                    if stored is not None:
                        removed.append({"bucket_id": bucket, **stored.entry(name)})
            return jsonify(removed)

        return app
