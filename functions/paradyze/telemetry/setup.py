"""Install telemetry once per process: the log format, and metric and trace providers with their exporters.

`PARADYZE_TELEMETRY=local` (default): metrics on a Prometheus scrape endpoint (the emulator's
/metrics) and spans to a JSON-lines file; `cloud`: Cloud Monitoring and Cloud Trace; `off`: none
(the API's no-op providers), logs still JSON with request ids.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from ..settings import Settings
from . import logs
from . import metrics as instruments
from .tracing import JsonLinesExporter

_lock = threading.Lock()
_installed: dict[str, Any] = {}  # what this process installed; OpenTelemetry's providers are process-wide


def setup(settings: Settings, pool_stats: Callable[[], dict[str, int] | None] | None = None) -> None:
    """Idempotent: functions-framework loads main.py once per function, in one process locally."""
    logs.install(settings.log_format, settings.gcp_project or "local")
    with _lock:
        if _installed or settings.telemetry == "off":
            return
        # Each instance writes its own series (Cloud Monitoring refuses two writers of one series).
        task = uuid.uuid4().hex[:12]
        resource = Resource.create({"service.name": "paradyze", "service.namespace": settings.instance,
                                    "service.instance.id": task})
        reader = _metric_reader(settings, task)
        # No exemplars: neither exporter sends them, and offering each measurement to a reservoir
        # is a third of what a metric costs.
        provider = MeterProvider(resource=resource, metric_readers=[reader], exemplar_filter=AlwaysOffExemplarFilter())
        metrics.set_meter_provider(provider)
        tracer_provider = TracerProvider(resource=resource, sampler=sampler(settings))
        tracer_provider.add_span_processor(BatchSpanProcessor(_span_exporter(settings), schedule_delay_millis=2000))
        trace.set_tracer_provider(tracer_provider)
        if pool_stats is not None:
            instruments.observe_pool(pool_stats)
        _installed.update(meter_provider=provider, tracer_provider=tracer_provider, reader=reader)


def sampler(settings: Settings) -> Sampler:
    """Which traces are kept: PARADYZE_TRACE_SAMPLE_RATIO of those the platform starts (by trace id,
    so every instance keeps the same ones), and those a caller's traceparent asks for.

    A request left out still has its request id and trace id on every log line, and passes its
    trace to the agent; only its spans are neither recorded nor exported.
    """
    return ParentBased(TraceIdRatioBased(settings.trace_sample_ratio))


def flush() -> None:
    """Write out every pending span and metric now (tests, and before an instance stops)."""
    if _installed:
        _installed["tracer_provider"].force_flush()
        _installed["meter_provider"].force_flush()


def prometheus_wsgi_app() -> Callable[..., Any]:
    """The Prometheus scrape endpoint (text exposition format) of this process's metrics."""
    from prometheus_client import make_wsgi_app

    return make_wsgi_app()


def _metric_reader(settings: Settings, task: str) -> MetricReader:
    if settings.telemetry == "cloud":
        from .cloud_monitoring import CloudMonitoringExporter

        assert settings.gcp_project is not None  # checked by Settings
        exporter = CloudMonitoringExporter(
            settings.gcp_project, {"location": settings.gcp_region, "namespace": settings.instance,
                                   "job": settings.service_name, "task_id": task},
            endpoint=settings.monitoring_api_endpoint)
        return PeriodicExportingMetricReader(exporter, export_interval_millis=settings.metrics_export_interval * 1000)
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    # Scope labels (otel_scope_*) on every series say only "paradyze": leave them out.
    return PrometheusMetricReader(scope_info_enabled=False)


def _span_exporter(settings: Settings) -> SpanExporter:
    if settings.telemetry == "cloud":
        from .cloud_trace import CloudTraceExporter

        assert settings.gcp_project is not None
        return CloudTraceExporter(settings.gcp_project, endpoint=settings.trace_api_endpoint)
    return JsonLinesExporter(settings.trace_file or settings.state_dir / "traces.jsonl")
