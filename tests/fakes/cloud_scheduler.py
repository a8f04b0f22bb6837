"""A local fake of the Cloud Scheduler v1 REST API (jobs only), served on 127.0.0.1 for tests.

It speaks what google-cloud-scheduler's REST transport sends and parses: proto3 JSON with
camelCase fields, enums as numbers or names, bytes as base64, FieldMask as a comma-separated
`updateMask` query parameter, list paging with pageSize/pageToken, and Google's error body
`{"error": {"code", "message", "status"}}`. Every request is recorded in `calls`.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from tests.fakes.server import Call, LocalApiWithFailures

_HTTP_METHODS = {
    0: "HTTP_METHOD_UNSPECIFIED",
    1: "POST",
    2: "GET",
    3: "HEAD",
    4: "PUT",
    5: "DELETE",
    6: "PATCH",
    7: "OPTIONS",
}
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
_OUTPUT_ONLY = ("state", "status", "userUpdateTime", "scheduleTime", "lastAttemptTime")
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    403: "PERMISSION_DENIED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _error(code: int, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "status": _STATUS_NAMES.get(code, "UNKNOWN")}})
    response.status_code = code
    return response


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalise(job: dict[str, Any]) -> dict[str, Any]:
    job = copy.deepcopy(job)
    target = job.get("httpTarget")
    if target:
        # Enum numbers (the client asks for enum-encoding=int) are kept as names, as the API answers.
        if isinstance(target.get("httpMethod"), int):
            target["httpMethod"] = _HTTP_METHODS[target["httpMethod"]]
        # The service sets User-Agent itself and shows it among the job's headers.
        target.setdefault("headers", {})["User-Agent"] = "Google-Cloud-Scheduler"
    return job


def _set_path(job: dict[str, Any], source: dict[str, Any], path: str) -> None:
    parts = path.split(".")
    dst, src = job, source
    for part in parts[:-1]:
        dst = dst.setdefault(part, {})
        src = src.get(part, {}) if isinstance(src, dict) else {}
    if parts[-1] in src:
        dst[parts[-1]] = copy.deepcopy(src[parts[-1]])
    else:
        dst.pop(parts[-1], None)


def _snake_to_camel(path: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)


class FakeCloudScheduler(LocalApiWithFailures):
    """Start with `with FakeCloudScheduler() as fake:`; point the client at `fake.endpoint`.

    `fail_next(status, times)` answers the next requests with an error without touching jobs.
    """

    def __init__(self, page_size: int = 2) -> None:
        self.page_size = page_size  # small by default so that paging is exercised
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        super().__init__()

    def mutations(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PATCH", "DELETE")]

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def job(self, job_id: str) -> dict[str, Any]:
        """The stored job whose id (last name segment) is job_id."""
        for name, job in self.jobs.items():
            if name.rsplit("/", 1)[-1] == job_id:
                return job
        raise KeyError(job_id)

    def _build_app(self) -> Flask:
        app = Flask("fake-cloud-scheduler")
        base = "/v1/projects/<project>/locations/<location>/jobs"

        @app.before_request
        def record() -> Response | None:
            failure = self._record_json_call(self.calls)
            return _error(*failure) if failure else None

        @app.post(base)
        def create(project: str, location: str) -> Response:
            parent = f"projects/{project}/locations/{location}"
            job = _normalise(request.get_json(force=True))
            name = job.get("name", "")
            if not name.startswith(parent + "/jobs/") or not _JOB_ID.match(name.rsplit("/", 1)[-1]):
                return _error(400, f"invalid job name {name!r} for parent {parent}")
            problem = self._invalid(job)
            if problem:
                return _error(400, problem)
            with self._lock:
                if name in self.jobs:
                    return _error(409, f"Job {name} already exists")
                for field in _OUTPUT_ONLY:
                    job.pop(field, None)
                job.update(state="ENABLED", userUpdateTime=_now())
                self.jobs[name] = job
                return jsonify(job)

        @app.get(base)
        def list_jobs(project: str, location: str) -> Response:
            parent = f"projects/{project}/locations/{location}/jobs/"
            size = int(request.args.get("pageSize") or self.page_size)
            start = int(request.args.get("pageToken") or 0)
            with self._lock:
                names = sorted(n for n in self.jobs if n.startswith(parent))
                page = [copy.deepcopy(self.jobs[n]) for n in names[start : start + size]]
            result: dict[str, Any] = {"jobs": page} if page else {}
            if start + size < len(names):
                result["nextPageToken"] = str(start + size)
            return jsonify(result)

        @app.get(base + "/<job_id>")
        def get(project: str, location: str, job_id: str) -> Response:
            name = f"projects/{project}/locations/{location}/jobs/{job_id}"
            with self._lock:
                if name not in self.jobs:
                    return _error(404, f"Job not found: {name}")
                return jsonify(self.jobs[name])

        @app.patch(base + "/<job_id>")
        def patch(project: str, location: str, job_id: str) -> Response:
            name = f"projects/{project}/locations/{location}/jobs/{job_id}"
            change = _normalise(request.get_json(force=True))
            mask = [_snake_to_camel(p) for p in request.args.get("updateMask", "").split(",") if p]
            with self._lock:
                if name not in self.jobs:
                    return _error(404, f"Job not found: {name}")
                job = copy.deepcopy(self.jobs[name])
                if mask:
                    for path in mask:
                        if path.split(".")[0] in _OUTPUT_ONLY or path == "name":
                            return _error(400, f"field {path} cannot be updated")
                        _set_path(job, change, path)
                else:
                    kept = {k: job[k] for k in _OUTPUT_ONLY if k in job}
                    job = {**change, **kept, "name": name}
                problem = self._invalid(job)
                if problem:
                    return _error(400, problem)
                job["userUpdateTime"] = _now()
                self.jobs[name] = job
                return jsonify(job)

        @app.delete(base + "/<job_id>")
        def delete(project: str, location: str, job_id: str) -> Response:
            name = f"projects/{project}/locations/{location}/jobs/{job_id}"
            with self._lock:
                if self.jobs.pop(name, None) is None:
                    return _error(404, f"Job not found: {name}")
            return jsonify({})

        return app

    @staticmethod
    def _invalid(job: dict[str, Any]) -> str | None:
        """What the real API would refuse (a subset), or None."""
        if not job.get("schedule"):
            return "schedule is required"
        target = job.get("httpTarget")
        if not target or not target.get("uri", "").startswith(("http://", "https://")):
            return "httpTarget.uri must be an http(s) URL"
        if target.get("body") and target.get("httpMethod") not in ("POST", "PUT", "PATCH"):
            return "httpTarget.body is only allowed with POST, PUT or PATCH"
        return None
