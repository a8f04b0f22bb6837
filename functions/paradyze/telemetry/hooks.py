"""The calls the rest of the platform makes into telemetry, each one line at its call site."""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import flask
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from ..errors import AgentFailed, AgentUnreachable, BadRequest
from . import context, metrics, tracing

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger(__name__)


def instrument(operation: str, serve: Callable[[flask.Request], flask.Response]
               ) -> Callable[[flask.Request], flask.Response]:
    """Wrap a function's entry point: request id, a server span continuing the caller's trace,
    latency and status per operation, and the scheduler's job outcomes."""

    @functools.wraps(serve)
    def wrapper(request: flask.Request) -> flask.Response:
        token = context.begin(operation, request.headers.get(context.REQUEST_ID_HEADER))
        summed, db_token = tracing.sum_request_transactions()
        began = time.perf_counter()
        try:
            parent = None
            if "traceparent" in request.headers or "X-Cloud-Trace-Context" in request.headers:
                parent = tracing.incoming_context(request.headers.items())
            with tracing.span(f"{request.method} /{operation}", SpanKind.SERVER, parent=parent,
                              **{"http.request.method": request.method, "http.route": f"/{operation}",
                                 "paradyze.request_id": context.current().request_id}) as server:
                response = serve(request)
                about = context.current()
                server.current.set_attributes({"http.response.status_code": response.status_code,
                                               "db.transactions": int(summed[0]), "db.seconds": summed[1],
                                               **{f"paradyze.{k}": v for k, v in (("agent_id", about.agent_id),
                                                                                 ("user_id", about.user_id)) if v}})
            status = response.status_code
            labels = {"operation": operation, "status": str(status)}
            metrics.function_duration.record(time.perf_counter() - began, labels)
            metrics.function_calls.add(1, labels)
            if request.headers.get("X-CloudScheduler") == "true":
                metrics.scheduler_jobs.add(1, {"operation": operation, "outcome": "ok" if status < 400 else "error"})
            response.headers[context.REQUEST_ID_HEADER] = context.current().request_id
            return response
        finally:
            tracing.end_request_transactions(db_token)
            context.end(token)

    return wrapper


def message_done(agent_id: str, sent_at: float, replies: int) -> None:
    """After a send to an agent (call it in a finally): counts, reply latency, or the error's kind."""
    failure = sys.exc_info()[1]
    labels = {"agent_id": agent_id}
    if failure is None or isinstance(failure, AgentFailed):
        metrics.messages_in.add(1, labels)
    if failure is None:
        metrics.messages_out.add(replies, labels)
        metrics.reply_latency.record(time.monotonic() - sent_at, labels)
    elif isinstance(failure, (AgentFailed, AgentUnreachable, BadRequest)):
        kind = {AgentFailed: "failed", AgentUnreachable: "unreachable"}.get(type(failure), "rejected")
        metrics.agent_errors.add(1, {**labels, "kind": kind})


def transitioned(agent_id: str, before: str, after: str, *, reason: str, duration_ms: int | None,
                 fields: Mapping[str, Any] | None) -> None:
    """After a committed status change: wakes and their latency, restarts after crashes, errors."""
    labels = {"agent_id": agent_id}
    trace.get_current_span().add_event("agent.transition", {"from": before, "to": after})
    if after == "running" and before == "waking":
        cause = "message" if reason == "message arrived" else "reconcile" if "reconcile" in reason else "request"
        metrics.wakes.add(1, {**labels, "cause": cause})
        if duration_ms is not None:
            metrics.wake_latency.record(duration_ms / 1000, labels)
    elif after == "waking" and before == "running" and fields and "restart_count" in fields:
        metrics.restarts.add(1, labels)
    elif after == "error":
        metrics.agent_errors.add(1, {**labels, "kind": "crash_loop" if fields and "crash_times" in fields
                                     else "start_failed"})
    log.info("agent %s: %s -> %s", agent_id, before, after)


def sweep(name: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a sweep: its duration, and a span."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            began = time.perf_counter()
            try:
                with tracing.span(f"sweep {name}"):
                    return fn(*args, **kwargs)
            finally:
                metrics.sweep_duration.record(time.perf_counter() - began, {"sweep": name})
        return wrapper

    return decorate


def observe_fleet(rows: Iterable[Mapping[str, Any]], agents: Iterable[Mapping[str, Any]],
                  newest_backup: datetime | None) -> None:
    """From a health check: agents by status, uptime, memory and CPU, and the newest backup's age."""
    now = datetime.now(UTC)
    sample = metrics.Sample(taken=time.time())
    for row in rows:
        sample.by_status[row["status"]] = sample.by_status.get(row["status"], 0) + 1
        if row["status"] == "running" and row.get("started_at"):
            sample.uptime[str(row["id"])] = (now - row["started_at"]).total_seconds()
    for item in agents:
        if item.get("memory_bytes"):
            sample.rss[item["agent_id"]] = int(item["memory_bytes"])
        if item.get("cpu_seconds") is not None:
            sample.cpu[item["agent_id"]] = float(item["cpu_seconds"])
    for status in ("error", "running", "hibernated"):
        sample.by_status.setdefault(status, 0)
    sample.backup_age = (now - newest_backup).total_seconds() if newest_backup else None
    metrics.fleet.put(sample)
