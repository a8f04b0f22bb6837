"""Log lines as Cloud Logging reads them, the request's labels and trace on each, and nothing secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from paradyze.settings import get_settings
from paradyze.telemetry import context, logs, tracing
from paradyze.telemetry.pretty import pretty
from paradyze.telemetry.setup import sampler

AGENT = "3f2b8c1e-9d4a-4b7e-8f00-1234567890ab"
USER = "0b5e1d7c-2a3f-4c8e-9b10-abcdef012345"


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.CloudLoggingFormatter("my-project"))
    logger = logging.getLogger("paradyze.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, out
    logger.removeHandler(handler)


def test_a_line_carries_severity_trace_and_the_requests_labels(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    tracer = TracerProvider().get_tracer("test")  # a recording tracer of its own, not the process's
    token = context.begin("send_message", "caller-chosen-id-1")
    try:
        context.bind(agent_id=AGENT, user_id=USER)
        with tracer.start_as_current_span("POST /send_message") as span:
            logger.warning("agent %s is slow", AGENT)
        trace_id = f"{span.get_span_context().trace_id:032x}"
    finally:
        context.end(token)
    logger.info("between requests")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["severity"] == "WARNING" and first["message"] == f"agent {AGENT} is slow"
    assert first["logging.googleapis.com/trace"] == f"projects/my-project/traces/{trace_id}"
    assert len(first["logging.googleapis.com/spanId"]) == 16
    assert first["logging.googleapis.com/labels"] == {
        "request_id": "caller-chosen-id-1", "operation": "send_message", "agent_id": AGENT, "user_id": USER}
    assert second["severity"] == "INFO" and "logging.googleapis.com/labels" not in second
    assert "logging.googleapis.com/trace" not in second


def test_only_ids_become_labels_and_a_malformed_request_id_is_replaced() -> None:
    token = context.begin("get_agent", "<script>alert(1)</script> and some user text")
    try:
        context.bind(agent_id="not an id; drop table", user_id=None)
        labels = context.current()
        assert labels.agent_id == "" and labels.user_id == ""
        assert len(labels.request_id) == 32 and labels.request_id.isalnum()
        assert context.outgoing_headers()["X-Request-Id"] == labels.request_id
    finally:
        context.end(token)


def test_tokens_and_keys_in_a_message_or_traceback_are_redacted(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = lines
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    try:
        raise RuntimeError(f"upstream said: Authorization: Bearer {jwt}; api_key=sk-abcdefghijklmnop1234")
    except RuntimeError:
        logger.exception("call failed")
    entry = json.loads(out.getvalue())
    assert entry["severity"] == "ERROR" and "RuntimeError" in entry["message"]
    assert jwt not in entry["message"] and "sk-abcdefghijklmnop1234" not in entry["message"]


def test_google_trace_header_is_continued() -> None:
    parent = tracing.incoming_context([("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1")])
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("child", context=parent) as span:
        assert f"{span.get_span_context().trace_id:032x}" == "105445aa7843bc8bf206b12000100000"
    assert tracing.incoming_context([("X-Cloud-Trace-Context", "not a trace")]) is None


def test_the_pretty_printer_makes_json_lines_readable_and_leaves_others_alone() -> None:
    line = json.dumps({
        "severity": "INFO", "message": "agent a: waking -> running", "time": "2026-11-27T10:00:00.123+00:00",
        "logger": "paradyze.telemetry.hooks", "logging.googleapis.com/trace": "projects/p/traces/abcdef0123456789",
        "logging.googleapis.com/labels": {"operation": "send_message"}})
    assert pretty(line) == ("10:00:00.123 INFO    paradyze.telemetry.hooks: agent a: waking -> running"
                            "  [operation=send_message trace=abcdef012345]")
    banner = "Paradyze local emulator on http://127.0.0.1:8080"
    assert pretty(banner + "\n") == banner


def test_a_request_left_out_of_the_sampled_traces_still_logs_its_ids(
        lines: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch) -> None:
    logger, out = lines
    monkeypatch.setattr(get_settings(), "trace_sample_ratio", 0.0)
    provider = TracerProvider(sampler=sampler(get_settings()))
    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    token = context.begin("send_message", "left-out-request-01")
    try:
        with provider.get_tracer("test").start_as_current_span("POST /send_message") as span:
            assert not span.is_recording()
            logger.info("POST send_message -> 200")
            headers = context.outgoing_headers()
    finally:
        context.end(token)
    (entry,) = (json.loads(line) for line in out.getvalue().splitlines())
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert entry["logging.googleapis.com/labels"]["request_id"] == "left-out-request-01"
    assert entry["logging.googleapis.com/trace"] == f"projects/my-project/traces/{trace_id}"
    assert entry["logging.googleapis.com/trace_sampled"] is False
    assert headers["X-Request-Id"] == "left-out-request-01" and trace_id in headers["traceparent"]
    assert exported.get_finished_spans() == ()
