"""The cloud exporters against a fake of Cloud Monitoring's and Cloud Trace's REST APIs.

In the cloud the platform writes its metrics with projects.timeSeries.create and its spans with
traces:batchWrite; nothing real runs here, so a fake that checks what the real API checks
stands in (tests/fakes/cloud_monitoring.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from helpers import Emulator, fixture_characters, free_port
from paradyze.telemetry.cloud_monitoring import CloudMonitoringExporter
from paradyze.telemetry.cloud_setup import apply
from tests.fakes.cloud_monitoring import FakeCloudMonitoring

PROJECT = "paradyze-test"
TASK = {"location": "us-central1", "namespace": "e2e", "job": "paradyze", "task_id": "t1"}


@pytest.fixture
def monitoring() -> Iterator[FakeCloudMonitoring]:
    with FakeCloudMonitoring() as fake:
        yield fake


def wait_for(check: Any, timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def test_counters_histograms_and_gauges_become_the_time_series_the_api_takes(
        monitoring: FakeCloudMonitoring) -> None:
    exporter = CloudMonitoringExporter(PROJECT, TASK, endpoint=monitoring.endpoint)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("paradyze")
    calls = meter.create_counter("paradyze.agent.messages.in", "{message}")
    latency = meter.create_histogram("paradyze.agent.reply.latency", "s",
                                     explicit_bucket_boundaries_advisory=(0.1, 1.0))
    for i in range(250):  # more series than one call may carry
        calls.add(2, {"agent_id": f"agent-{i}"})
    for seconds in (0.05, 0.5, 0.7, 3.0):
        latency.record(seconds, {"agent_id": "agent-0"})
    time.sleep(0.01)  # a cumulative point must end after it started, to the microsecond
    provider.shutdown()  # one last export, as when an instance stops

    writes = [c for c in monitoring.calls if c.path == f"/v3/projects/{PROJECT}/timeSeries"]
    assert len(writes) == 2 and all(len(c.body["timeSeries"]) <= 200 for c in writes)
    counted = monitoring.points("custom.googleapis.com/paradyze/agent/messages_in")
    assert len(counted) == 250 and {p["value"]["int64Value"] for _, p in counted} == {"2"}
    [(labels, point)] = monitoring.points("custom.googleapis.com/paradyze/agent/reply_latency")
    assert labels == {"agent_id": "agent-0"}
    dist = point["value"]["distributionValue"]
    assert dist["count"] == "4" and dist["bucketCounts"] == ["1", "2", "1"]
    assert dist["bucketOptions"]["explicitBuckets"]["bounds"] == [0.1, 1.0]
    assert monitoring.descriptors["custom.googleapis.com/paradyze/agent/reply_latency"] == {
        "metricKind": "CUMULATIVE", "valueType": "DISTRIBUTION"}


def test_a_refused_write_is_reported_not_raised(monitoring: FakeCloudMonitoring) -> None:
    exporter = CloudMonitoringExporter(PROJECT, TASK, endpoint=monitoring.endpoint)
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, 3_600_000)])
    provider.get_meter("paradyze").create_counter("paradyze.agent.restarts").add(1, {"agent_id": "a"})
    monitoring.fail_next(503)
    time.sleep(0.01)
    provider.shutdown()  # the exporter logs and goes on: telemetry never fails a request
    assert monitoring.points("custom.googleapis.com/paradyze/agent/restarts") == []


def test_the_platform_writes_its_series_and_spans_to_cloud_monitoring_and_cloud_trace(
        tmp_path: Any, monitoring: FakeCloudMonitoring) -> None:
    emu = Emulator(home=tmp_path / "home", port=free_port(), extra_env={
        "PARADYZE_TELEMETRY": "cloud", "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PARADYZE_MONITORING_API_ENDPOINT": monitoring.endpoint, "PARADYZE_TRACE_API_ENDPOINT": monitoring.endpoint,
        "PARADYZE_METRICS_EXPORT_INTERVAL": "10"})
    emu.home.mkdir()
    apply(PROJECT, endpoint=monitoring.endpoint)  # as a deploy does: every series must match its descriptor
    emu.start()
    try:
        created = emu.post("create_agent", {"character": fixture_characters()["eliza-default"]})
        assert created.status_code == 201, created.text
        agent_id = created.json()["agent"]["id"]
        for _ in range(2):
            assert emu.post("send_message", {"agent_id": agent_id, "text": "hello"}).status_code == 200
        assert emu.get("health_check").status_code == 200

        def series() -> bool:
            got = monitoring.points("custom.googleapis.com/paradyze/agent/messages_in", agent_id=agent_id)
            return bool(got) and got[0][1]["value"]["int64Value"] == "2"

        assert wait_for(series), [c.path for c in monitoring.calls][-5:]
        [(labels, sent)] = monitoring.points("custom.googleapis.com/paradyze/function/requests",
                                             operation="send_message", status="200")
        assert sent["value"]["int64Value"] == "2"
        assert monitoring.points("custom.googleapis.com/paradyze/agent/memory_rss", agent_id=agent_id)
        assert monitoring.points("custom.googleapis.com/paradyze/agents", status="running")
        writes = [c for c in monitoring.calls if c.path.endswith("/timeSeries")]
        resource = writes[0].body["timeSeries"][0]["resource"]
        assert resource["type"] == "generic_task" and resource["labels"]["namespace"] == "e2e"
        spans = wait_for(lambda: [s for s in monitoring.spans if s["displayName"]["value"] == "POST /send_message"])
        assert len(spans) == 2 and spans[0]["spanKind"] == "SERVER"
        trace = spans[0]["name"].split("/")[3]
        assert any(s["displayName"]["value"] == "agent.http" and f"/traces/{trace}/" in s["name"]
                   for s in monitoring.spans)
    finally:
        emu.stop()
