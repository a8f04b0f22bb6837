"""A local fake of the Secret Manager v1 REST API: secrets (created, deleted), their versions (added,
listed, accessed, destroyed), and IAM policies.

It speaks what google-cloud-secret-manager's REST transport sends and parses: proto3 JSON with
camelCase fields, payloads as base64 with their CRC32C (checked on addVersion, as the API does when
one is given), `latest` as an alias of the newest enabled version, and Google's error body
`{"error": {"code", "message", "status"}}`. Every request is recorded in `calls`; payloads never are
(the recorded body has `payload.data` blanked), so a test can assert what was sent without
holding the secret twice.

`values()` is a read-only view that FakeCloudRun takes as its `secrets`, so a service's
`secretKeyRef` resolves against this fake, as Cloud Run resolves it against Secret Manager.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import google_crc32c
from flask import Flask, Response, jsonify, request

from tests.fakes.server import Call, LocalApiWithFailures

_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 403: "PERMISSION_DENIED",
           500: "INTERNAL", 503: "UNAVAILABLE"}


def _error(code: int, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}})
    response.status_code = code
    return response


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Values(Mapping[str, str]):
    """ "projects/P/secrets/S" or ".../versions/V" (V may be "latest") -> the payload, as text."""

    def __init__(self, fake: FakeSecretManager) -> None:
        self._fake = fake

    def __getitem__(self, key: str) -> str:
        name, _, version = key.partition("/versions/")
        data = self._fake.payload(name, version or "latest")
        if data is None:
            raise KeyError(key)
        return data.decode()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._fake.secrets))

    def __len__(self) -> int:
        return len(self._fake.secrets)


class FakeSecretManager(LocalApiWithFailures):
    """Start with `with FakeSecretManager() as fake:`; point the client at `fake.endpoint`."""

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}  # name -> the Secret as the API shows it
        self.versions: dict[str, list[dict[str, Any]]] = {}  # secret name -> versions, oldest first
        self.policies: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self._payloads: dict[str, bytes] = {}  # version name -> data
        super().__init__()

    def values(self) -> Mapping[str, str]:
        return _Values(self)

    def payload(self, secret: str, version: str = "latest") -> bytes | None:
        with self._lock:
            found = self._version(secret, version)
            return None if found is None or found["state"] != "ENABLED" else self._payloads[found["name"]]

    def add(self, secret: str, value: str) -> str:
        """Seed a version of secret ("projects/P/secrets/S", created if need be) as a user would have
        with gcloud; returns the version's name."""
        with self._lock:
            if secret not in self.secrets:
                self.secrets[secret] = {"name": secret, "replication": {"automatic": {}}, "createTime": _now()}
                self.versions[secret] = []
            return self._add_version(secret, value.encode())["name"]

    def live(self, prefix: str = "") -> dict[str, list[str]]:
        """Every secret whose name starts with prefix, with the names of its enabled versions."""
        with self._lock:
            return {name: [v["name"] for v in self.versions[name] if v["state"] == "ENABLED"]
                    for name in self.secrets if name.startswith(prefix)}

    def _add_version(self, secret: str, data: bytes) -> dict[str, Any]:
        version = {"name": f"{secret}/versions/{len(self.versions[secret]) + 1}", "createTime": _now(),
                   "state": "ENABLED", "replicationStatus": {"automatic": {}}}
        self.versions[secret].append(version)
        self._payloads[version["name"]] = data
        return version

    def mutations(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PATCH", "DELETE") and not c.path.endswith(":access")]

    def _version(self, secret: str, version: str) -> dict[str, Any] | None:
        versions = self.versions.get(secret, [])
        if version == "latest":
            enabled = [v for v in versions if v["state"] == "ENABLED"]
            return enabled[-1] if enabled else None
        return next((v for v in versions if v["name"] == f"{secret}/versions/{version}"), None)

    def _build_app(self) -> Flask:
        app = Flask("fake-secret-manager")
        secret_path = "/v1/projects/<project>/secrets/<secret_id>"

        @app.before_request
        def record() -> Response | None:
            body = request.get_json(silent=True) if request.data else None
            if isinstance(body, dict) and "payload" in body:
                body = {**copy.deepcopy(body), "payload": {**body["payload"], "data": "<redacted>"}}
            with self._lock:
                self.calls.append(Call(request.method, request.path, dict(request.args), body))
                failure = self._next_failure()
            return _error(*failure) if failure else None

        @app.post("/v1/projects/<project>/secrets")
        def create(project: str) -> Response:
            secret_id = request.args.get("secretId", "")
            if not secret_id or len(secret_id) > 255 or not all(c.isalnum() or c in "-_" for c in secret_id):
                return _error(400, f"Invalid secret id {secret_id!r}")
            body = request.get_json(force=True) or {}
            if not body.get("replication"):
                return _error(400, "Secret.replication is required")
            name = f"projects/{project}/secrets/{secret_id}"
            with self._lock:
                if name in self.secrets:
                    return _error(409, f"Secret [{name}] already exists.")
                secret = {**body, "name": name, "createTime": _now(), "etag": '"1"'}
                self.secrets[name] = secret
                self.versions[name] = []
                return jsonify(secret)

        @app.get(secret_path)
        def get(project: str, secret_id: str) -> Response:
            name = f"projects/{project}/secrets/{secret_id}"
            with self._lock:
                if name not in self.secrets:
                    return _error(404, f"Secret [{name}] not found or has no versions.")
                return jsonify(self.secrets[name])

        @app.post(secret_path + ":addVersion")
        def add_version(project: str, secret_id: str) -> Response:
            name = f"projects/{project}/secrets/{secret_id}"
            payload = (request.get_json(force=True) or {}).get("payload") or {}
            data = base64.b64decode(payload.get("data", ""))
            if "dataCrc32c" in payload and int(payload["dataCrc32c"]) != google_crc32c.value(data):
                return _error(400, "Checksum mismatch: the payload's dataCrc32c does not match its data.")
            with self._lock:
                if name not in self.secrets:
                    return _error(404, f"Secret [{name}] not found.")
                return jsonify(self._add_version(name, data))

        @app.delete(secret_path)
        def delete(project: str, secret_id: str) -> Response:
            name = f"projects/{project}/secrets/{secret_id}"
            with self._lock:
                if name not in self.secrets:
                    return _error(404, f"Secret [{name}] not found.")
                del self.secrets[name]
                for version in self.versions.pop(name):
                    self._payloads.pop(version["name"], None)
                self.policies.pop(name, None)
                return jsonify({})

        @app.post(secret_path + "/versions/<version>:destroy")
        def destroy(project: str, secret_id: str, version: str) -> Response:
            name = f"projects/{project}/secrets/{secret_id}"
            with self._lock:
                found = self._version(name, version) if version != "latest" else None
                if found is None:
                    return _error(404, f"Secret Version [{name}/versions/{version}] not found.")
                if found["state"] == "DESTROYED":
                    return _error(400, f"Secret Version [{found['name']}] is already in DESTROYED state.")
                found.update(state="DESTROYED", destroyTime=_now())
                self._payloads.pop(found["name"], None)
                return jsonify(found)

        @app.get(secret_path + "/versions")
        def list_versions(project: str, secret_id: str) -> Response:
            name = f"projects/{project}/secrets/{secret_id}"
            with self._lock:
                if name not in self.secrets:
                    return _error(404, f"Secret [{name}] not found.")
                versions = list(reversed(self.versions[name]))  # newest first, as the API lists them
                if request.args.get("filter") == "state:ENABLED":
                    versions = [v for v in versions if v["state"] == "ENABLED"]
                return jsonify({"versions": versions, "totalSize": len(versions)} if versions else {})

        @app.get(secret_path + "/versions/<version>:access")
        def access(project: str, secret_id: str, version: str) -> Response:
            name = f"projects/{project}/secrets/{secret_id}"
            with self._lock:
                found = self._version(name, version)
                if found is None:
                    return _error(404, f"Secret Version [{name}/versions/{version}] not found.")
                if found["state"] != "ENABLED":
                    return _error(400, f"Secret Version [{found['name']}] is in DISABLED state.")
                data = self._payloads[found["name"]]
            return jsonify({"name": found["name"], "payload": {"data": base64.b64encode(data).decode(),
                                                               "dataCrc32c": str(google_crc32c.value(data))}})

        @app.get(secret_path + ":getIamPolicy")
        def get_iam_policy(project: str, secret_id: str) -> Response:
            name = f"projects/{project}/secrets/{secret_id}"
            with self._lock:
                if name not in self.secrets:
                    return _error(404, f"Secret [{name}] not found.")
                return jsonify(self.policies.get(name, {"version": 1, "etag": "ACAB"}))

        @app.post(secret_path + ":setIamPolicy")
        def set_iam_policy(project: str, secret_id: str) -> Response:
            name = f"projects/{project}/secrets/{secret_id}"
            policy = (request.get_json(force=True) or {}).get("policy") or {}
            with self._lock:
                if name not in self.secrets:
                    return _error(404, f"Secret [{name}] not found.")
                current = self.policies.get(name)
                if current is not None and policy.get("etag") not in (None, current.get("etag")):
                    return _error(409, "There were concurrent policy changes: the etag does not match.")
                etag = base64.b64encode(len(self.calls).to_bytes(8, "big")).decode()  # bytes, as IAM etags are
                stored = {**policy, "version": policy.get("version", 1), "etag": etag}
                self.policies[name] = stored
                return jsonify(stored)

        return app
