"""A local fake of the Google Cloud Storage JSON API (objects only), served on 127.0.0.1 for tests.

It speaks what google-cloud-storage sends for small objects: multipart (and media) uploads at
`/upload/storage/v1/b/{bucket}/o` honouring `ifGenerationMatch` (0 = create only; 412 otherwise),
downloads at `/download/storage/v1/b/{bucket}/o/{name}?alt=media` (and the `/storage/v1/...?alt=media`
form) with `x-goog-hash` so the client's checksum validation runs, object metadata, list with
`prefix` and paging, and delete. Errors use Google's body `{"error": {"code", "message", "errors"}}`.
Every request is recorded in `calls`; `fail_next` injects failures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import google_crc32c
from flask import Flask, Response, jsonify, request

from tests.fakes.server import LocalApiWithFailures

_REASONS = {400: "invalid", 404: "notFound", 412: "conditionNotMet", 429: "rateLimitExceeded", 503: "backendError"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    args: dict[str, str]


@dataclass
class StoredObject:
    data: bytes
    content_type: str
    generation: int
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z"))

    @property
    def md5(self) -> str:
        return base64.b64encode(hashlib.md5(self.data).digest()).decode()

    @property
    def crc32c(self) -> str:
        return base64.b64encode(google_crc32c.value(self.data).to_bytes(4, "big")).decode()


def _error(code: int, message: str) -> Response:
    reason = _REASONS.get(code, "error")
    body = {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}],
        }
    }
    response = jsonify(body)
    response.status_code = code
    return response


class FakeGcs(LocalApiWithFailures):
    """Start with `with FakeGcs() as fake:`; point the client's api_endpoint at `fake.endpoint`.

    `fail_next(status, times)` answers the next `times` object requests with `status` (e.g. 503)
    without touching any object. Bucket metadata requests are spared: the client sends them from a
    background thread at times of its own choosing, and one of them taking the failure would make
    tests flaky.
    """

    def __init__(self, buckets: tuple[str, ...] = ("paradyze-test",), page_size: int = 2) -> None:
        self.page_size = page_size  # small by default so that the client's paging is exercised
        self.buckets: dict[str, dict[str, StoredObject]] = {b: {} for b in buckets}
        self.calls: list[Call] = []
        self._generation = 1_700_000_000_000_000
        super().__init__()

    def names(self, bucket: str) -> list[str]:
        with self._lock:
            return sorted(self.buckets[bucket])

    def _resource(self, bucket: str, name: str, obj: StoredObject) -> dict[str, Any]:
        quoted = quote(name, safe="")
        return {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/{obj.generation}",
            "selfLink": f"{self.endpoint}/storage/v1/b/{bucket}/o/{quoted}",
            "mediaLink": f"{self.endpoint}/download/storage/v1/b/{bucket}/o/{quoted}"
            f"?generation={obj.generation}&alt=media",
            "name": name,
            "bucket": bucket,
            "generation": str(obj.generation),
            "metageneration": "1",
            "contentType": obj.content_type,
            "storageClass": "STANDARD",
            "size": str(len(obj.data)),
            "md5Hash": obj.md5,
            "crc32c": obj.crc32c,
            "etag": obj.md5,
            "timeCreated": obj.created,
            "updated": obj.created,
        }

    def _build_app(self) -> Flask:
        app = Flask("fake-gcs")

        @app.before_request
        def record() -> Response | None:
            with self._lock:
                self.calls.append(Call(request.method, request.path, dict(request.args)))
                is_object = re.search(r"/b/[^/]+/o(/|$)", request.path) is not None
                failure = self._next_failure() if is_object else None
            return _error(*failure) if failure else None

        @app.get("/storage/v1/b/<bucket>")
        def get_bucket(bucket: str) -> Response:
            # google-cloud-storage fetches this in the background (project number and location
            # for its telemetry), so a fake that lacks it fills logs with 404s.
            if bucket not in self.buckets:
                return _error(404, "The specified bucket does not exist.")
            return jsonify(
                {
                    "kind": "storage#bucket",
                    "id": bucket,
                    "name": bucket,
                    "projectNumber": "1",
                    "location": "US",
                    "storageClass": "STANDARD",
                    "metageneration": "1",
                }
            )

        @app.post("/upload/storage/v1/b/<bucket>/o")
        def upload(bucket: str) -> Response:
            kind = request.args.get("uploadType")
            if kind == "multipart":
                parsed = _multipart(request.content_type or "", request.get_data())
                if parsed is None:
                    return _error(400, "malformed multipart body")
                meta, data = parsed
            elif kind == "media":
                meta, data = {"name": request.args.get("name", "")}, request.get_data()
                meta["contentType"] = request.content_type or "application/octet-stream"
            else:
                return _error(400, f"uploadType {kind!r} is not supported by this fake")
            name = meta.get("name") or request.args.get("name", "")
            if not name:
                return _error(400, "Required: object name")
            problem = _checksum_problem(meta, data)
            if problem:
                return _error(400, problem)
            with self._lock:
                objects = self.buckets.get(bucket)
                if objects is None:
                    return _error(404, "The specified bucket does not exist.")
                current = objects.get(name)
                wanted = request.args.get("ifGenerationMatch")
                if wanted is not None and int(wanted) != (current.generation if current else 0):
                    return _error(412, "At least one of the pre-conditions you specified did not hold.")
                self._generation += 1
                obj = StoredObject(data, meta.get("contentType") or "application/octet-stream", self._generation)
                objects[name] = obj
                return jsonify(self._resource(bucket, name, obj))

        def lookup(bucket: str, name: str) -> StoredObject | Response:
            """The stored object, or the 404 GCS answers for a missing bucket or object (hold _lock)."""
            objects = self.buckets.get(bucket)
            if objects is None:
                return _error(404, "The specified bucket does not exist.")
            return objects.get(name) or _error(404, f"No such object: {bucket}/{name}")

        def media(bucket: str, name: str) -> Response:
            with self._lock:
                obj = lookup(bucket, name)
            if isinstance(obj, Response):
                return obj
            response = Response(obj.data, content_type=obj.content_type)
            response.headers["x-goog-hash"] = f"crc32c={obj.crc32c},md5={obj.md5}"
            response.headers["x-goog-generation"] = str(obj.generation)
            response.headers["x-goog-stored-content-length"] = str(len(obj.data))
            return response

        @app.get("/download/storage/v1/b/<bucket>/o/<path:name>")
        def download(bucket: str, name: str) -> Response:
            if request.args.get("alt") != "media":
                return _error(400, "downloads need alt=media")
            return media(bucket, name)

        @app.get("/storage/v1/b/<bucket>/o/<path:name>")
        def get(bucket: str, name: str) -> Response:
            if request.args.get("alt") == "media":
                return media(bucket, name)
            with self._lock:
                obj = lookup(bucket, name)
                return obj if isinstance(obj, Response) else jsonify(self._resource(bucket, name, obj))

        @app.get("/storage/v1/b/<bucket>/o")
        def list_objects(bucket: str) -> Response:
            prefix = request.args.get("prefix", "")
            size = min(int(request.args.get("maxResults") or self.page_size), self.page_size)
            after = request.args.get("pageToken", "")
            with self._lock:
                objects = self.buckets.get(bucket)
                if objects is None:
                    return _error(404, "The specified bucket does not exist.")
                names = [n for n in sorted(objects) if n.startswith(prefix) and n > after]
                page = [self._resource(bucket, n, objects[n]) for n in names[:size]]
            result: dict[str, Any] = {"kind": "storage#objects"}
            if page:
                result["items"] = page
            if len(names) > size:
                result["nextPageToken"] = names[size - 1]
            return jsonify(result)

        @app.delete("/storage/v1/b/<bucket>/o/<path:name>")
        def delete(bucket: str, name: str) -> Response:
            with self._lock:
                objects = self.buckets.get(bucket)
                if objects is None:
                    return _error(404, "The specified bucket does not exist.")
                if objects.pop(name, None) is None:
                    return _error(404, f"No such object: {bucket}/{name}")
            return Response(status=204)

        return app


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes] | None:
    """(metadata, media) of a multipart/related upload: a JSON part, then the bytes.

    As GCS does, the media part's own Content-Type stands in when the metadata names none.
    """
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/related") or not match:
        return None
    delimiter = b"--" + match.group(1).encode()
    parts = body.split(delimiter)
    # ["", part1, part2, "--\r\n"]: each part is headers, a blank line, content, then CRLF.
    if len(parts) != 4 or not parts[-1].startswith(b"--"):
        return None
    split = []
    for part in parts[1:-1]:
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep or not content.endswith(b"\r\n"):
            return None
        headers = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.decode("latin-1").partition(":") for line in head.split(b"\r\n") if line)
        )
        split.append((headers, content[:-2]))
    try:
        meta = json.loads(split[0][1])
    except ValueError:
        return None
    media_headers, data = split[1]
    if not meta.get("contentType") and media_headers.get("content-type"):
        meta["contentType"] = media_headers["content-type"]
    return meta, data


def _checksum_problem(meta: dict[str, Any], data: bytes) -> str | None:
    """GCS rejects an upload whose declared checksums disagree with its bytes."""
    obj = StoredObject(data, "", 0)
    if "md5Hash" in meta and meta["md5Hash"] != obj.md5:
        return "Provided MD5 hash does not match the calculated MD5 hash"
    if "crc32c" in meta and meta["crc32c"] != obj.crc32c:
        return "Provided CRC32C does not match the calculated CRC32C"
    return None
