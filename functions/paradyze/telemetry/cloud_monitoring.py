"""An OpenTelemetry metric exporter that writes time series to Google Cloud Monitoring's REST API.

POST {endpoint}/v3/projects/{project}/timeSeries with at most 200 series a call, as
projects.timeSeries.create takes them: custom metrics (custom.googleapis.com/paradyze/...) on a
`generic_task` resource naming this instance, counters CUMULATIVE with their start time,
histograms as DISTRIBUTION with explicit bucket bounds, gauges GAUGE.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import requests
from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter, ObservableGauge
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData

from .google_api import rfc3339, session

log = logging.getLogger(__name__)

API = "https://monitoring.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/monitoring.write"]
MAX_SERIES = 200  # per timeSeries.create call
PREFIX = "custom.googleapis.com/"


def metric_type(name: str) -> str:
    """paradyze.agent.messages.in -> custom.googleapis.com/paradyze/agent/messages_in"""
    head, _, last = name.rpartition(".")
    return PREFIX + head.replace(".", "/") + "_" + last if head.count(".") >= 2 else PREFIX + name.replace(".", "/")


class CloudMonitoringExporter(MetricExporter):
    def __init__(self, project: str, resource_labels: dict[str, str], *, endpoint: str | None = None,
                 http: requests.Session | None = None) -> None:
        super().__init__(preferred_temporality={
            Counter: AggregationTemporality.CUMULATIVE, ObservableCounter: AggregationTemporality.CUMULATIVE,
            Histogram: AggregationTemporality.CUMULATIVE, ObservableGauge: AggregationTemporality.CUMULATIVE})
        self.url = f"{(endpoint or API).rstrip('/')}/v3/projects/{project}/timeSeries"
        self.resource = {"type": "generic_task", "labels": {"project_id": project, **resource_labels}}
        self.http = http or session(endpoint, SCOPES)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        series = list(self.time_series(metrics_data))
        ok = True
        for i in range(0, len(series), MAX_SERIES):
            try:
                response = self.http.post(self.url, json={"timeSeries": series[i:i + MAX_SERIES]},
                                          timeout=timeout_millis / 1000)
            except requests.RequestException as exc:
                log.warning("Cloud Monitoring write failed: %s", type(exc).__name__)
                return MetricExportResult.FAILURE
            if not response.ok:
                # The API names the offending series; one bad series fails its whole call, not the others.
                log.warning("Cloud Monitoring refused %d series: %s %s", len(series[i:i + MAX_SERIES]),
                            response.status_code, response.text[:300])
                ok = False
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def time_series(self, metrics_data: MetricsData) -> Iterator[dict[str, Any]]:
        for resource_metrics in metrics_data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    data = metric.data
                    for point in data.data_points:
                        kind, value_type, value = _value(data, point)
                        start = point.start_time_unix_nano if kind == "CUMULATIVE" else point.time_unix_nano
                        yield {
                            "metric": {"type": metric_type(metric.name),
                                       "labels": {k: str(v) for k, v in (point.attributes or {}).items()}},
                            "resource": self.resource, "metricKind": kind, "valueType": value_type,
                            "unit": metric.unit or "1",
                            "points": [{"interval": {"startTime": rfc3339(start),
                                                     "endTime": rfc3339(point.time_unix_nano)},
                                        "value": value}],
                        }

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.http.close()


def _value(data: Any, point: Any) -> tuple[str, str, dict[str, Any]]:
    if isinstance(data, HistogramData) and isinstance(point, HistogramDataPoint):
        mean = point.sum / point.count if point.count else 0.0
        return "CUMULATIVE", "DISTRIBUTION", {"distributionValue": {
            "count": str(point.count), "mean": mean, "sumOfSquaredDeviation": 0.0,
            "bucketOptions": {"explicitBuckets": {"bounds": list(point.explicit_bounds)}},
            "bucketCounts": [str(c) for c in point.bucket_counts]}}
    assert isinstance(point, NumberDataPoint)
    number = {"int64Value": str(point.value)} if isinstance(point.value, int) else {"doubleValue": point.value}
    value_type = "INT64" if isinstance(point.value, int) else "DOUBLE"
    if isinstance(data, Sum) and data.is_monotonic:
        return "CUMULATIVE", value_type, number
    assert isinstance(data, (Sum, Gauge))
    return "GAUGE", value_type, number
