"""Traces: spans for HTTP, the database, the runtime and the agent, and where they go.

Locally spans are written as JSON lines to a file (`PARADYZE_TRACE_FILE`, default
`$PARADYZE_HOME/traces.jsonl`); in the cloud to Cloud Trace (cloud_trace.py). The tracer comes from
OpenTelemetry's global API, so a span costs next to nothing until setup() installs a provider.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
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


class span:  # noqa: N801 -- used like the context-manager function it replaces
    """A span around a block; an exception marks it failed (its type only: messages may hold user text).

    A class rather than start_as_current_span's generator layers: a message makes half a dozen
    spans, and this is about half the cost per span.
    """

    __slots__ = ("_span", "_token")

    def __init__(self, name: str, kind: SpanKind = SpanKind.INTERNAL, *, parent: Context | None = None,
                 **attributes: str | int | float | bool) -> None:
        self._span = tracer.start_span(name, context=parent, kind=kind, attributes=attributes or None)
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    @property
    def current(self) -> trace.Span:
        return self._span

    def __enter__(self) -> span:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is not None:
            self._span.set_status(Status(StatusCode.ERROR, kind.__name__))
        otel_context.detach(self._token)
        self._span.end()


def traced(name: str, kind: SpanKind = SpanKind.INTERNAL) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a function to run in a span named name."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with span(name, kind):
                return fn(*args, **kwargs)
        return wrapper

    return decorate


# A request's own database transactions, summed: [count, seconds] (see traced_cm).
_in_request: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("paradyze_db_sum", default=None)


def traced_cm(name: str) -> Callable[[Callable[P, contextlib.AbstractContextManager[T]]],
                                     Callable[P, contextlib.AbstractContextManager[T]]]:
    """Decorate a function that returns a context manager (db.transaction) so its block is traced.

    Inside a step of its own (an agent's start or stop, a sweep) each block is a span. Directly
    under a request's span, blocks are counted and timed on that span instead (db.transactions,
    db.seconds): a message makes four transactions, and four spans would double what tracing
    costs it.
    """

    def decorate(fn: Callable[P, contextlib.AbstractContextManager[T]]
                 ) -> Callable[P, contextlib.AbstractContextManager[T]]:
        @functools.wraps(fn)
        @contextlib.contextmanager
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            summed = _in_request.get()
            if summed is not None and getattr(trace.get_current_span(), "kind", None) == SpanKind.SERVER:
                began = time.perf_counter()
                try:
                    with fn(*args, **kwargs) as value:
                        yield value
                finally:
                    summed[0] += 1
                    summed[1] += time.perf_counter() - began
                return
            with span(name, SpanKind.CLIENT), fn(*args, **kwargs) as value:
                yield value
        return wrapper

    return decorate


def sum_request_transactions() -> tuple[list[float], contextvars.Token[list[float] | None]]:
    """Start summing the transactions of the request about to run; end_request_transactions(token) after."""
    summed = [0.0, 0.0]
    return summed, _in_request.set(summed)


def end_request_transactions(token: contextvars.Token[list[float] | None]) -> None:
    _in_request.reset(token)


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
