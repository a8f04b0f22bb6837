"""An OpenTelemetry span exporter that writes to Cloud Trace's REST API (v2 traces:batchWrite)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from .google_api import rfc3339, session

log = logging.getLogger(__name__)

API = "https://cloudtrace.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/trace.append"]
_KINDS = {"INTERNAL": "INTERNAL", "SERVER": "SERVER", "CLIENT": "CLIENT", "PRODUCER": "PRODUCER",
          "CONSUMER": "CONSUMER"}


class CloudTraceExporter(SpanExporter):
    def __init__(self, project: str, *, endpoint: str | None = None, http: requests.Session | None = None) -> None:
        self.project = project
        self.url = f"{(endpoint or API).rstrip('/')}/v2/projects/{project}/traces:batchWrite"
        self.http = http or session(endpoint, SCOPES)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            response = self.http.post(self.url, json={"spans": [self.span(s) for s in spans]}, timeout=10)
        except requests.RequestException as exc:
            log.warning("Cloud Trace write failed: %s", type(exc).__name__)
            return SpanExportResult.FAILURE
        if not response.ok:
            log.warning("Cloud Trace refused %d spans: %s", len(spans), response.status_code)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def span(self, s: ReadableSpan) -> dict[str, Any]:
        ctx = s.get_span_context()
        assert ctx is not None
        trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        out: dict[str, Any] = {
            "name": f"projects/{self.project}/traces/{trace_id}/spans/{span_id}", "spanId": span_id,
            "displayName": {"value": s.name[:128], "truncatedByteCount": max(0, len(s.name.encode()) - 128)},
            "startTime": rfc3339(s.start_time or 0), "endTime": rfc3339(s.end_time or s.start_time or 0),
            "spanKind": _KINDS.get(s.kind.name, "SPAN_KIND_UNSPECIFIED"),
            "attributes": {"attributeMap": {k: _attribute(v) for k, v in (s.attributes or {}).items()}},
        }
        if s.parent is not None:
            out["parentSpanId"] = f"{s.parent.span_id:016x}"
        if s.status.status_code == StatusCode.ERROR:
            out["status"] = {"code": 2, "message": s.status.description or ""}  # google.rpc.Code UNKNOWN
        return out

    def shutdown(self) -> None:
        self.http.close()


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": {"value": str(value)[:256], "truncatedByteCount": 0}}
