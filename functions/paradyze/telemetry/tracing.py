"""Traces: spans for HTTP, the database, the runtime and the agent, and where they go.

Locally spans are written as JSON lines to a file (`PARADYZE_TRACE_FILE`, default
`$PARADYZE_HOME/traces.jsonl`); in the cloud to Cloud Trace (cloud_trace.py). The tracer comes from
OpenTelemetry's global API, so a span costs next to nothing until setup() installs a provider.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

P = ParamSpec("P")
T = TypeVar("T")

tracer = trace.get_tracer("paradyze")
# Cloud Run and Cloud Functions put the caller's trace here: TRACE_ID/SPAN_ID(decimal);o=1
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})/(\d{1,20})(?:;o=([01]))?")


def incoming_context(items: Iterable[tuple[str, str]]) -> Context | None:
    """The caller's trace (from its headers): W3C traceparent, else Google's X-Cloud-Trace-Context, else none."""
    headers = {k.lower(): v for k, v in items}
    if headers.get("traceparent"):
        return propagate.extract(headers)
    match = _CLOUD_TRACE.fullmatch(headers.get("x-cloud-trace-context", "").strip())
    if match is None or int(match.group(2)) >= 2**64 or int(match.group(1), 16) == 0:
        return None
    parent = SpanContext(trace_id=int(match.group(1), 16), span_id=int(match.group(2)) or 1, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED if match.group(3) != "0" else 0))
    return trace.set_span_in_context(NonRecordingSpan(parent))


@contextlib.contextmanager
def span(name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: str | int | float | bool) -> Iterator[None]:
    """A span around a block; an exception marks it failed (its type only: messages may hold user text)."""
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes, record_exception=False,
                                      set_status_on_exception=False) as current:
        try:
            yield
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def traced(name: str, kind: SpanKind = SpanKind.INTERNAL) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a function to run in a span named name."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with span(name, kind):
                return fn(*args, **kwargs)
        return wrapper

    return decorate


def traced_cm(name: str) -> Callable[[Callable[P, contextlib.AbstractContextManager[T]]],
                                     Callable[P, contextlib.AbstractContextManager[T]]]:
    """Decorate a function that returns a context manager (db.transaction) so its block runs in a span."""

    def decorate(fn: Callable[P, contextlib.AbstractContextManager[T]]
                 ) -> Callable[P, contextlib.AbstractContextManager[T]]:
        @functools.wraps(fn)
        @contextlib.contextmanager
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            with span(name, SpanKind.CLIENT), fn(*args, **kwargs) as value:
                yield value
        return wrapper

    return decorate


class JsonLinesExporter(SpanExporter):
    """Writes each finished span as one JSON line: the local stand-in for Cloud Trace."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(span_record(s)) + "\n" for s in spans]
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.writelines(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def span_record(s: ReadableSpan) -> dict[str, Any]:
    ctx = s.get_span_context()
    assert ctx is not None
    return {
        "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{s.parent.span_id:016x}" if s.parent else None, "name": s.name,
        "kind": s.kind.name, "start_ns": s.start_time, "end_ns": s.end_time,
        "status": s.status.status_code.name, "attributes": dict(s.attributes or {}),
    }
