"""A local fake of Cloud Monitoring's REST API: v3 timeSeries.create, v3 alertPolicies, v1 dashboards.

It checks what the real API checks of a write (projects.timeSeries.create): at most 200 series a
call, exactly one point each, a custom.googleapis.com/ (or workload.googleapis.com/) metric type,
metric and value kinds that agree, a CUMULATIVE start before its end, a GAUGE start equal to its
end (or absent), RFC 3339 times, and a series' points in time order at least 5 s apart ("written
more frequently than the maximum sampling period"). A refused call writes nothing and answers
Google's error body. Alert policies and dashboards are stored as sent, with a server-made name
(policies) or the name given (dashboards) and an etag. Trace's v2 traces:batchWrite is served too.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from datetime import datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from tests.fakes.server import Call, LocalApiWithFailures

_TYPE = re.compile(r"(custom|workload)\.googleapis\.com/[A-Za-z0-9_/.]{1,200}")
_LABEL_KEY = re.compile(r"[a-z_][a-z0-9_]{0,99}", re.IGNORECASE)
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
_VALUE_KEYS = {"INT64": "int64Value", "DOUBLE": "doubleValue", "DISTRIBUTION": "distributionValue",
               "BOOL": "boolValue"}
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}


def _error(code: int, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}})
    response.status_code = code
    return response


def _time(text: Any) -> datetime:
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError(f"invalid timestamp {text!r}")
    whole, _, fraction = text[:-1].partition(".")
    return datetime.fromisoformat(f"{whole}.{(fraction or '0')[:6]:0<6}+00:00")


class FakeCloudMonitoring(LocalApiWithFailures):
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.series: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # series key -> points, oldest first
        self.descriptors: dict[str, dict[str, str]] = {}  # metric type -> kinds, fixed at first write
        self.policies: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.spans: list[dict[str, Any]] = []
        super().__init__(lock=threading.RLock())

    # what tests read

    def points(self, metric_type: str, **labels: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """(metric labels, newest point) of every stored series of metric_type whose labels include labels."""
        with self._lock:
            out = []
            for key, pts in self.series.items():
                if key[0] == metric_type and set(labels.items()) <= set(dict(key[2]).items()):
                    out.append((dict(key[2]), pts[-1]))
            return out

    # the API

    def _build_app(self) -> Flask:
        app = Flask("fake-cloud-monitoring")

        @app.before_request
        def record() -> Response | None:
            failure = self._record_json_call(self.calls)
            return _error(*failure) if failure else None

        @app.post("/v3/projects/<project>/timeSeries")
        def create_time_series(project: str) -> Response | tuple[str, int]:
            series = (request.get_json(silent=True) or {}).get("timeSeries")
            if not isinstance(series, list) or not 1 <= len(series) <= 200:
                return _error(400, "timeSeries must hold between 1 and 200 series")
            with self._lock:
                try:
                    staged = [self._check(project, i, ts) for i, ts in enumerate(series)]
                except ValueError as exc:
                    return _error(400, f"One or more TimeSeries could not be written: {exc}")
                for key, point, kinds in staged:
                    self.descriptors.setdefault(key[0], kinds)
                    self.series.setdefault(key, []).append(point)
            return jsonify({})

        @app.post("/v3/projects/<project>/metricDescriptors")
        def create_descriptor(project: str) -> Response:
            body = request.get_json(silent=True) or {}
            mtype = body.get("type", "")
            if not _TYPE.fullmatch(mtype) or body.get("metricKind") not in ("GAUGE", "CUMULATIVE", "DELTA") \
                    or body.get("valueType") not in _VALUE_KEYS:
                return _error(400, f"invalid metric descriptor {mtype!r}")
            kinds = {"metricKind": body["metricKind"], "valueType": body["valueType"]}
            with self._lock:
                if self.descriptors.get(mtype, kinds) != kinds:
                    return _error(400, f"{mtype} exists with another kind: {self.descriptors[mtype]}")
                self.descriptors[mtype] = kinds
            return jsonify({**body, "name": f"projects/{project}/metricDescriptors/{mtype}"})

        @app.get("/v3/projects/<project>/alertPolicies")
        def list_policies(project: str) -> Response:
            with self._lock:
                mine = [p for n, p in self.policies.items() if n.startswith(f"projects/{project}/")]
            return jsonify({"alertPolicies": mine, "totalSize": len(mine)})

        @app.post("/v3/projects/<project>/alertPolicies")
        def create_policy(project: str) -> Response:
            body = request.get_json(silent=True) or {}
            problem = _policy_problem(body, self.descriptors)
            if problem:
                return _error(400, problem)
            with self._lock:
                name = f"projects/{project}/alertPolicies/{uuid.uuid4().int % 10**19}"
                self.policies[name] = {**copy.deepcopy(body), "name": name}
                return jsonify(self.policies[name])

        @app.patch("/v3/projects/<project>/alertPolicies/<pid>")
        def update_policy(project: str, pid: str) -> Response:
            name = f"projects/{project}/alertPolicies/{pid}"
            body = request.get_json(silent=True) or {}
            problem = _policy_problem(body, self.descriptors)
            with self._lock:
                if name not in self.policies:
                    return _error(404, f"{name} not found")
                if problem:
                    return _error(400, problem)
                self.policies[name] = {**copy.deepcopy(body), "name": name}
                return jsonify(self.policies[name])

        @app.get("/v1/projects/<project>/dashboards/<did>")
        def get_dashboard(project: str, did: str) -> Response:
            with self._lock:
                found = self.dashboards.get(f"projects/{project}/dashboards/{did}")
            return jsonify(found) if found else _error(404, "dashboard not found")

        @app.post("/v1/projects/<project>/dashboards")
        def create_dashboard(project: str) -> Response:
            body = copy.deepcopy(request.get_json(silent=True) or {})
            if not body.get("displayName") or not any(k in body for k in ("mosaicLayout", "gridLayout")):
                return _error(400, "a dashboard needs a displayName and a layout")
            name = body.get("name") or f"projects/{project}/dashboards/{uuid.uuid4()}"
            with self._lock:
                if name in self.dashboards:
                    return _error(409, f"{name} already exists")
                self.dashboards[name] = {**body, "name": name, "etag": uuid.uuid4().hex}
                return jsonify(self.dashboards[name])

        @app.patch("/v1/projects/<project>/dashboards/<did>")
        def update_dashboard(project: str, did: str) -> Response:
            name = f"projects/{project}/dashboards/{did}"
            body = copy.deepcopy(request.get_json(silent=True) or {})
            with self._lock:
                current = self.dashboards.get(name)
                if current is None:
                    return _error(404, f"{name} not found")
                if body.get("etag") and body["etag"] != current["etag"]:
                    return _error(400, "etag does not match: the dashboard changed since it was read")
                self.dashboards[name] = {**body, "name": name, "etag": uuid.uuid4().hex}
                return jsonify(self.dashboards[name])

        @app.post("/v2/projects/<project>/traces:batchWrite")
        def batch_write(project: str) -> Response:
            spans = (request.get_json(silent=True) or {}).get("spans")
            if not isinstance(spans, list) or not spans:
                return _error(400, "spans is required")
            for span in spans:
                if not re.fullmatch(rf"projects/{project}/traces/[0-9a-f]{{32}}/spans/[0-9a-f]{{16}}",
                                    str(span.get("name"))) or not span.get("displayName", {}).get("value"):
                    return _error(400, f"invalid span {span.get('name')!r}")
            with self._lock:
                self.spans.extend(spans)
            return jsonify({})

        return app

    def _check(self, project: str, i: int, ts: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Any], dict]:
        where = f"timeSeries[{i}]"
        metric, resource = ts.get("metric") or {}, ts.get("resource") or {}
        mtype = metric.get("type", "")
        if not _TYPE.fullmatch(mtype):
            raise ValueError(f"{where}: metric type {mtype!r} is not a custom metric")
        labels = metric.get("labels") or {}
        if len(labels) > 30 or not all(_LABEL_KEY.fullmatch(k) and isinstance(v, str) for k, v in labels.items()):
            raise ValueError(f"{where}: invalid metric labels")
        if resource.get("type") != "generic_task" or resource.get("labels", {}).get("project_id") != project:
            raise ValueError(f"{where}: resource must be a generic_task of project {project}")
        missing = {"location", "namespace", "job", "task_id"} - set(resource["labels"])
        if missing:
            raise ValueError(f"{where}: resource labels missing {sorted(missing)}")
        kind, vtype = ts.get("metricKind"), ts.get("valueType")
        known = self.descriptors.get(mtype)
        if known and known != {"metricKind": kind, "valueType": vtype}:
            raise ValueError(f"{where}: {mtype} is {known}, not {kind}/{vtype}")
        points = ts.get("points") or []
        if len(points) != 1:
            raise ValueError(f"{where}: exactly one point is required, got {len(points)}")
        point = points[0]
        end = _time(point["interval"]["endTime"])
        start = _time(point["interval"].get("startTime", point["interval"]["endTime"]))
        if kind == "CUMULATIVE" and not start < end:
            raise ValueError(f"{where}: a CUMULATIVE point's start must be before its end")
        if kind == "GAUGE" and start != end:
            raise ValueError(f"{where}: a GAUGE point's start must equal its end")
        if kind not in ("GAUGE", "CUMULATIVE", "DELTA") or vtype not in _VALUE_KEYS:
            raise ValueError(f"{where}: unknown metricKind/valueType {kind}/{vtype}")
        if set(point["value"]) != {_VALUE_KEYS[vtype]}:
            raise ValueError(f"{where}: a {vtype} point needs {_VALUE_KEYS[vtype]}")
        key = (mtype, repr(sorted(resource["labels"].items())), tuple(sorted(labels.items())))
        before = self.series.get(key)
        if before and (end - _time(before[-1]["interval"]["endTime"])).total_seconds() < 5:
            raise ValueError(f"{where}: points were written more frequently than the maximum sampling period")
        return key, point, {"metricKind": kind, "valueType": vtype}


def _policy_problem(body: dict[str, Any], descriptors: dict[str, Any]) -> str | None:
    if not body.get("displayName"):
        return "an alert policy needs a displayName"
    if body.get("combiner") not in ("OR", "AND", "AND_WITH_MATCHING_RESOURCE"):
        return "combiner must be OR, AND or AND_WITH_MATCHING_RESOURCE"
    conditions = body.get("conditions") or []
    if not conditions:
        return "an alert policy needs at least one condition"
    for c in conditions:
        threshold = c.get("conditionThreshold")
        if not c.get("displayName") or threshold is None or "metric.type=" not in threshold.get("filter", ""):
            return f"condition {c.get('displayName')!r} needs a displayName and a conditionThreshold with a filter"
        if threshold.get("comparison") not in ("COMPARISON_GT", "COMPARISON_LT"):
            return f"condition {c['displayName']!r}: comparison must be COMPARISON_GT or COMPARISON_LT"
        if not re.fullmatch(r"\d+s", str(threshold.get("duration", ""))):
            return f"condition {c['displayName']!r}: duration must be a number of seconds like '300s'"
        for filter_ in (threshold["filter"], threshold.get("denominatorFilter", "")):
            for mtype in re.findall(r'metric\.type="([^"]+)"', filter_):
                if _TYPE.fullmatch(mtype) and mtype not in descriptors:
                    return f"Cannot find metric(s) that match type = \"{mtype}\""
    return None
