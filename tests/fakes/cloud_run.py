"""A local fake of the Cloud Run Admin API v2 (services and their operations) that really runs each service.

It speaks what google-cloud-run's REST transport sends and parses: requests are parsed into the
library's own run_v2.Service message (unknown fields are refused as by the API) and answered as
proto3 JSON with enum names; create, update and delete answer with a long-running Operation that
the client polls at /v2/projects/{p}/locations/{l}/operations/{id}; lists page with
pageSize/pageToken; errors use Google's body `{"error": {"code", "message", "status"}}`.

Each service's revision really runs: the reference agent (`local_emulator/reference_agent.py`, for
any image) starts with the container's env, secret references resolved from `secrets`, and PORT set
to a port on 127.0.0.1 chosen once per service, so the service's `uri` stays the same across
revisions. The service turns Ready when the agent answers health, and its revision fails when the
agent exits first. As on Cloud Run, an instance that exits after Ready is replaced (restarted), and
a delete sends SIGTERM and, after `grace` seconds, SIGKILL. Differences from Cloud Run: instances
listen on loopback (HOST is forced to 127.0.0.1), and a new revision replaces the old one in place
on the same port rather than switching traffic without a gap.

Revisions and traffic: each template change makes a revision, kept with its template. Traffic is
100% to the latest ready revision (`TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST`, the default) or 100% to
one named revision; the revision that gets it is the one running on the service's port (a split is
refused: the fake serves one revision at a time). When a new revision fails to start, the last
ready one runs again, as Cloud Run keeps serving it. `runners` maps an image prefix to what runs
for it (default: the reference agent); a runner without a health path is probed as Cloud Run's
default startup probe does, by a TCP connection to its port.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from tests.fakes.cloud_run_instance import Instance, Runner
from tests.fakes.server import Call, LocalApiWithFailures

REPO = Path(__file__).resolve().parents[2]
REFERENCE_AGENT = REPO / "local_emulator" / "reference_agent.py"
SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
_SERVICE_ID = re.compile(r"[a-z]([-a-z0-9]{0,47}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_MEMORY = re.compile(r"\d+(Ki|Mi|Gi)?")
_CPU = re.compile(r"\d+m|\d+(\.\d+)?")
_OUTPUT_ONLY = tuple(
    "uid generation createTime updateTime deleteTime creator lastModifier uri urls observedGeneration terminalCondition"
    " conditions latestReadyRevision latestCreatedRevision trafficStatuses reconciling etag".split()
)
_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 500: "INTERNAL", 503: "UNAVAILABLE"}
_FAILED_PRECONDITION = 9


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}})
    response.status_code = status
    return response


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_TRAFFIC_LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
_TRAFFIC_REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"


@dataclass
class _Operation:
    name: str
    service: str
    kind: str  # "deploy" or "delete"
    instance: Instance | None
    snapshot: dict[str, Any] | None = None  # the service as deleted


class FakeCloudRun(LocalApiWithFailures):
    """Start with `with FakeCloudRun() as fake:`; point the client at `fake.endpoint` (anonymous credentials).

    `fail_next(status, times, message)` answers the next requests with an error, touching no service.
    """

    def __init__(
        self,
        *,
        page_size: int = 2,
        grace: float = 10.0,
        startup_timeout: float = 60.0,
        health_path: str = "/health",  # open without the agent's key, as in ElizaOS
        runners: Mapping[str, Runner] | None = None,
    ) -> None:
        self.runners = dict(runners or {})
        self.page_size = page_size  # small by default so that paging is exercised
        self.grace = grace  # Cloud Run's SIGTERM-to-SIGKILL time
        self.startup_timeout = startup_timeout
        self.health_path = health_path
        self.services: dict[str, dict[str, Any]] = {}  # name -> the stored service (proto3 JSON)
        self.instances: dict[str, Instance] = {}  # name -> the running revision
        self.secrets: dict[str, str] = {}  # "projects/P/secrets/NAME" (or ".../versions/V") -> value
        self.calls: list[Call] = []
        self.policies: dict[str, dict[str, Any]] = {}  # service name -> its IAM policy
        self.revisions: dict[str, dict[str, dict[str, Any]]] = {}  # service name -> revision id -> template
        self.log_dir = Path(tempfile.mkdtemp(prefix="fake-cloud-run-"))
        self._ports: dict[str, int] = {}
        self._operations: dict[str, _Operation] = {}
        super().__init__(lock=threading.RLock())

    def _after_stop(self) -> None:
        """Stop every instance still running and remove their logs."""
        with self._lock:
            instances = list(self.instances.values())
            self.instances.clear()
        for instance in instances:
            instance.terminate(1.0)
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def service(self, service_id: str) -> dict[str, Any]:
        """The stored service whose id (last name segment) is service_id, as the API shows it."""
        with self._lock:
            for name in self.services:
                if name.rsplit("/", 1)[-1] == service_id:
                    return self._view(name)
        raise KeyError(service_id)

    def log(self, service_id: str) -> str:
        """Everything the service's instances wrote (Cloud Logging's part, for test failures)."""
        path = self.log_dir / f"{service_id}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the API ---------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("fake-cloud-run")
        base = "/v2/projects/<project>/locations/<location>"

        @app.before_request
        def record() -> Response | None:
            failure = self._record_json_call(self.calls)
            return _error(*failure) if failure else None

        @app.errorhandler(_Refused)
        def refused(exc: _Refused) -> Response:
            return _error(exc.status, exc.message)

        @app.post(base + "/services")
        def create(project: str, location: str) -> Response:
            parent = f"projects/{project}/locations/{location}"
            service_id = request.args.get("serviceId", "")
            if not _SERVICE_ID.fullmatch(service_id):
                raise _Refused(
                    400,
                    f"serviceId {service_id!r}: at most 49 of [a-z0-9-], starting with a letter, not ending with '-'",
                )
            name = f"{parent}/services/{service_id}"
            service = self._parse(request.get_json(force=True))
            with self._lock:
                if name in self.services:
                    raise _Refused(409, f"Resource '{service_id}' already exists.")
                return jsonify(self._insert(name, service))

        @app.post(base + "/services/<service_id>:setIamPolicy")
        def set_iam_policy(project: str, location: str, service_id: str) -> Response:
            name = f"projects/{project}/locations/{location}/services/{service_id}"
            with self._lock:
                if name not in self.services:
                    raise _Refused(404, f"Resource '{service_id}' does not exist.")
                policy = request.get_json(force=True).get("policy", {})
                policy["etag"] = base64.b64encode(uuid.uuid4().bytes[:8]).decode()  # bytes, as IAM etags are
                policy.setdefault("version", 1)
                self.policies[name] = policy
                return jsonify(policy)

        @app.get(base + "/services/<service_id>:getIamPolicy")
        def get_iam_policy(project: str, location: str, service_id: str) -> Response:
            name = f"projects/{project}/locations/{location}/services/{service_id}"
            with self._lock:
                if name not in self.services:
                    raise _Refused(404, f"Resource '{service_id}' does not exist.")
                return jsonify(self.policies.get(name, {"etag": "ACAB"}))

        @app.patch(base + "/services/<service_id>")
        def update(project: str, location: str, service_id: str) -> Response:
            parent = f"projects/{project}/locations/{location}"
            name = f"{parent}/services/{service_id}"
            change = self._parse(request.get_json(force=True))
            with self._lock:
                current = self.services.get(name)
                if current is None:
                    if request.args.get("allowMissing") != "true":
                        raise _Refused(404, f"Resource '{service_id}' does not exist.")
                    return jsonify(self._insert(name, change))
                running = self.instances.get(name)
                new_revision = change.get("template") != current.get("template")
                self._check_traffic(name, change)
                kept = {k: current[k] for k in _OUTPUT_ONLY if k in current}
                kept["generation"] = str(int(current["generation"]) + 1)
                kept["updateTime"] = _now()
                self.services[name] = {**change, **kept, "name": name}
                if new_revision:
                    self._new_revision(name)
                serving = self._serving(name)
                stale = (running is None or running.revision != serving or running.state in ("failed", "stopped")
                         or running.stopped.is_set())
                instance = self._deploy(name, serving) if stale else running
                return jsonify(self._operation(parent, name, "deploy", instance))

        @app.get(base + "/services/<service_id>")
        def get(project: str, location: str, service_id: str) -> Response:
            name = f"projects/{project}/locations/{location}/services/{service_id}"
            with self._lock:
                if name not in self.services:
                    raise _Refused(
                        404,
                        f"Resource '{service_id}' of kind 'SERVICE' in region '{location}' "
                        f"in project '{project}' does not exist.",
                    )
                return jsonify(self._view(name))

        @app.get(base + "/services")
        def list_services(project: str, location: str) -> Response:
            prefix = f"projects/{project}/locations/{location}/services/"
            size = int(request.args.get("pageSize") or self.page_size)
            start = int(request.args.get("pageToken") or 0)
            with self._lock:
                names = sorted(n for n in self.services if n.startswith(prefix))
                page = [self._view(n) for n in names[start : start + size]]
            result: dict[str, Any] = {"services": page} if page else {}
            if start + size < len(names):
                result["nextPageToken"] = str(start + size)
            return jsonify(result)

        @app.delete(base + "/services/<service_id>")
        def delete(project: str, location: str, service_id: str) -> Response:
            parent = f"projects/{project}/locations/{location}"
            name = f"{parent}/services/{service_id}"
            with self._lock:
                if name not in self.services:
                    raise _Refused(404, f"Resource '{service_id}' does not exist.")
                snapshot = {**self._view(name), "deleteTime": _now()}
                del self.services[name]
                self._ports.pop(name, None)
                instance = self.instances.pop(name, None)
                op = self._operation(parent, name, "delete", instance, snapshot=snapshot)
            if instance is not None:
                threading.Thread(target=self._retire, args=(instance,), daemon=True).start()
            return jsonify(op)

        @app.get(base + "/operations/<op_id>")
        def get_operation(project: str, location: str, op_id: str) -> Response:
            name = f"projects/{project}/locations/{location}/operations/{op_id}"
            with self._lock:
                op = self._operations.get(name)
                if op is None:
                    raise _Refused(404, f"Operation {name} not found.")
                return jsonify(self._operation_json(op))

        return app

    # -- internals -------------------------------------------------------------------------------

    def _insert(self, name: str, service: dict[str, Any]) -> dict[str, Any]:
        """Store a new service, deploy its first revision; the deployment's operation."""
        stamp = _now()
        identity = {"uid": str(uuid.uuid4()), "generation": "1", "creator": "anonymous", "lastModifier": "anonymous"}
        self.services[name] = {**service, **identity, "name": name, "createTime": stamp, "updateTime": stamp}
        self._ports[name] = _free_port()  # one port per service: its uri outlives revisions
        self._check_traffic(name, service)
        self._new_revision(name)
        return self._operation(name.split("/services/")[0], name, "deploy", self._deploy(name, self._serving(name)))

    @staticmethod
    def _parse(body: Any) -> dict[str, Any]:
        """The body as the library's own Service message would carry it; refuses what the API refuses."""
        from google.cloud import run_v2
        from google.protobuf import json_format

        message = run_v2.Service.pb()()
        try:
            json_format.ParseDict(body, message)
        except json_format.ParseError as exc:
            raise _Refused(400, f"Invalid JSON payload received. {exc}") from exc
        service: dict[str, Any] = json_format.MessageToDict(message)
        for key in _OUTPUT_ONLY:
            service.pop(key, None)
        for where, labels in (
            ("labels", service.get("labels", {})),
            ("template.labels", service.get("template", {}).get("labels", {})),
        ):
            for key, value in labels.items():
                if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
                    raise _Refused(400, f"{where}: invalid label {key}={value!r}")
        template = service.get("template") or {}
        containers = template.get("containers") or []
        serving = [c for c in containers if c.get("ports")]
        if len(serving) != 1 or not all(c.get("image") for c in containers):
            raise _Refused(400, "template.containers: exactly one container with a port, each with an image")
        for index, container in enumerate(containers):
            names = [e.get("name", "") for e in container.get("env", [])]
            reserved = sorted(set(names) & set(RESERVED_ENV))
            if reserved:
                raise _Refused(
                    400,
                    f"spec.template.spec.containers[{index}].env: The following reserved env names "
                    f"were provided: {', '.join(reserved)}. These values are automatically set "
                    "by the system.",
                )
            bad = [n for n in names if not _ENV_NAME.fullmatch(n)]
            if bad or len(set(names)) != len(names):
                raise _Refused(400, f"containers[{index}].env: invalid or repeated names")
            limits = (container.get("resources") or {}).get("limits") or {}
            if "memory" in limits and not _MEMORY.fullmatch(limits["memory"]):
                raise _Refused(400, f"containers[{index}].resources.limits.memory: invalid {limits['memory']!r}")
            if "cpu" in limits and not _CPU.fullmatch(limits["cpu"]):
                raise _Refused(400, f"containers[{index}].resources.limits.cpu: invalid {limits['cpu']!r}")
        scaling = template.get("scaling") or {}
        if int(scaling.get("minInstanceCount", 0)) > int(scaling.get("maxInstanceCount", 100)):
            raise _Refused(400, "template.scaling: minInstanceCount exceeds maxInstanceCount")
        return service

    def _check_traffic(self, name: str, service: dict[str, Any]) -> None:
        traffic = service.get("traffic") or []
        if len(traffic) > 1 or any(int(t.get("percent", 0)) != 100 for t in traffic):
            raise _Refused(400, "the fake serves one revision at a time: traffic must be 100% to one target")
        for target in traffic:
            if target.get("type") == _TRAFFIC_REVISION and target.get("revision") not in self.revisions.get(name, {}):
                raise _Refused(400, f"Revision named '{target.get('revision')}' does not exist.")

    def _new_revision(self, name: str) -> str:
        """Record a revision of the service's current template; its id."""
        service = self.services[name]
        service_id = name.rsplit("/", 1)[-1]
        revision = f"{service_id}-{int(service['generation']):05d}-{uuid.uuid4().hex[:3]}"
        service["latestCreatedRevision"] = f"{name}/revisions/{revision}"
        self.revisions.setdefault(name, {})[revision] = copy.deepcopy(service["template"])
        return revision

    def _serving(self, name: str) -> str:
        """The revision that gets the traffic: the named one, or the latest created (LATEST)."""
        service = self.services[name]
        for target in service.get("traffic") or []:
            if target.get("type") == _TRAFFIC_REVISION:
                return str(target["revision"])
        return str(service["latestCreatedRevision"].rsplit("/", 1)[-1])

    def _runner(self, image: str) -> Runner:
        for prefix, runner in self.runners.items():
            if image.startswith(prefix):
                return runner
        return Runner(lambda env: [sys.executable, str(REFERENCE_AGENT)], self.health_path)

    def _deploy(self, name: str, revision: str) -> Instance:
        """Replace the service's running revision with `revision`, started from its own template."""
        service_id = name.rsplit("/", 1)[-1]
        template = self.revisions[name][revision]
        old = self.instances.pop(name, None)
        if old is not None:
            old.terminate(min(self.grace, 2.0))
        port = self._ports[name]
        container = next(c for c in template["containers"] if c.get("ports"))
        runner = self._runner(container["image"])
        env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        instance = Instance(
            revision=revision,
            argv=[],
            env=env,
            port=port,
            log_path=self.log_dir / f"{service_id}.log",
            health_path=runner.health_path,
            startup_timeout=self.startup_timeout,
            on_ready=lambda: self._ready(name, revision),
            on_failure=lambda: self._fall_back(name, revision),
        )
        self.instances[name] = instance
        for var in container.get("env", []):
            source = (var.get("valueSource") or {}).get("secretKeyRef")
            if source is None:
                env[var["name"]] = var.get("value", "")
                continue
            version = source.get("version") or "latest"
            value = self.secrets.get(f"{source['secret']}/versions/{version}", self.secrets.get(source["secret"]))
            if value is None:
                instance.fail(
                    f"spec.template.spec.containers[0].env.{var['name']}: Secret "
                    f"{source['secret']}/versions/{version} was not found"
                )
                return instance
            env[var["name"]] = value
        env.update(
            {
                "PORT": str(port),
                "HOST": "127.0.0.1",
                "K_SERVICE": service_id,
                "K_REVISION": revision,
                "K_CONFIGURATION": service_id,
            }
        )
        instance.argv = runner.argv(env)
        instance.launch()
        return instance

    def _ready(self, name: str, revision: str) -> None:
        with self._lock:
            if name in self.services:
                self.services[name]["latestReadyRevision"] = f"{name}/revisions/{revision}"

    def _fall_back(self, name: str, failed: str) -> None:
        """A new revision failed to start: the last ready one serves again, as on Cloud Run."""
        with self._lock:
            service = self.services.get(name)
            instance = self.instances.get(name)
            ready = (service or {}).get("latestReadyRevision")
            if service is None or instance is None or instance.revision != failed or not ready:
                return
            previous = ready.rsplit("/", 1)[-1]
            if previous == failed or previous not in self.revisions.get(name, {}):
                return
            self._deploy(name, previous)  # the failed revision's operation still reports its failure

    def _retire(self, instance: Instance) -> None:
        instance.terminate(self.grace)
        instance.state = "stopped"
        instance.stopped.set()

    def _view(self, name: str) -> dict[str, Any]:
        """The stored service with the output-only fields Cloud Run computes from its revision."""
        service = copy.deepcopy(self.services[name])
        instance = self.instances.get(name)
        uri = f"http://127.0.0.1:{self._ports[name]}"
        service.update(uri=uri, urls=[uri], etag=f'"{service["generation"]}"')
        state = instance.state if instance is not None else "failed"
        stamp = service["updateTime"]
        if state == "ready":
            condition = {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": stamp}
            service.update(reconciling=False, observedGeneration=service["generation"])
        elif state == "starting":
            condition = {"type": "Ready", "state": "CONDITION_RECONCILING", "lastTransitionTime": stamp}
            service["reconciling"] = True
        else:
            message = instance.message if instance is not None else "no revision"
            condition = {
                "type": "Ready",
                "state": "CONDITION_FAILED",
                "reason": "REVISION_FAILED",
                "message": message,
                "lastTransitionTime": stamp,
            }
            service.update(reconciling=False, observedGeneration=service["generation"])
        service["terminalCondition"] = condition
        serving = self._serving(name) if name in self.revisions else None
        pinned = any(t.get("type") == _TRAFFIC_REVISION for t in service.get("traffic") or [])
        if serving is not None and instance is not None and instance.revision != serving:
            serving = instance.revision  # a failed latest: the last ready revision still serves
        if serving is not None:
            service["trafficStatuses"] = [{"type": _TRAFFIC_REVISION if pinned else _TRAFFIC_LATEST,
                                           "revision": serving, "percent": 100}]
        service["conditions"] = [{**condition, "type": kind} for kind in ("ConfigurationsReady", "RoutesReady")]
        return service

    def _operation(
        self, parent: str, service: str, kind: str, instance: Instance | None, snapshot: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        name = f"{parent}/operations/{uuid.uuid4()}"
        op = _Operation(name=name, service=service, kind=kind, instance=instance, snapshot=snapshot)
        self._operations[name] = op
        return self._operation_json(op)

    def _operation_json(self, op: _Operation) -> dict[str, Any]:
        body: dict[str, Any] = {"name": op.name}
        if op.kind == "delete":
            body["metadata"] = {"@type": SERVICE_TYPE, **(op.snapshot or {})}
            if op.instance is None or op.instance.stopped.is_set():
                body.update(done=True, response={"@type": SERVICE_TYPE, **(op.snapshot or {})})
            return body
        current = op.service in self.services and self.instances.get(op.service) is op.instance
        view = self._view(op.service) if current else None
        if view is not None:
            body["metadata"] = {"@type": SERVICE_TYPE, **view}
        assert op.instance is not None
        if op.instance.state == "failed":
            body.update(done=True, error={"code": _FAILED_PRECONDITION, "message": op.instance.message})
        elif not current:
            body.update(done=True, error={"code": 10, "message": "the deployment was superseded or deleted"})
        elif op.instance.state == "ready":
            body.update(done=True, response={"@type": SERVICE_TYPE, **(view or {})})
        return body
