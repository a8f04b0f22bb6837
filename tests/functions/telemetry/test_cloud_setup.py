"""The dashboard and alert policies in monitoring/, created by cloud_setup.apply against the Monitoring API fake."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from paradyze.telemetry.cloud_setup import MONITORING_DIR, MonitoringSetupError, apply
from tests.fakes.cloud_monitoring import FakeCloudMonitoring

PROJECT = "paradyze-test"
CHANNEL = f"projects/{PROJECT}/notificationChannels/123"


@pytest.fixture
def monitoring() -> Iterator[FakeCloudMonitoring]:
    with FakeCloudMonitoring() as fake:
        yield fake


def test_apply_creates_then_updates_the_dashboard_and_every_alert(monitoring: FakeCloudMonitoring) -> None:
    first = apply(PROJECT, instance="prod", notification_channels=(CHANNEL,), endpoint=monitoring.endpoint)
    names = {p["displayName"] for p in monitoring.policies.values()}
    assert {"Paradyze: function error rate above 5%", "Paradyze: reply latency p95 above 20 s",
            "Paradyze: an agent is crash-looping", "Paradyze: agents in error",
            "Paradyze: no backup for 8 days", "Paradyze: an agent answers less than half its messages"} <= names
    assert len(first.created) == len(monitoring.policies) + 1 and not first.updated
    assert all(p["notificationChannels"] == [CHANNEL] for p in monitoring.policies.values())
    [dashboard] = monitoring.dashboards.values()
    assert dashboard["name"] == f"projects/{PROJECT}/dashboards/paradyze-prod"
    assert len(dashboard["mosaicLayout"]["tiles"]) >= 15

    again = apply(PROJECT, instance="prod", endpoint=monitoring.endpoint)  # a second deploy changes, never adds
    assert not again.created and len(again.updated) == len(first.created)
    assert len(monitoring.policies) == len(first.created) - 1 and len(monitoring.dashboards) == 1
    assert all(p["notificationChannels"] == [] for p in monitoring.policies.values())


def test_every_chart_and_alert_names_a_metric_the_platform_declares() -> None:
    declared = {d["type"] for d in json.loads((MONITORING_DIR / "metric_descriptors.json").read_text())
                ["metricDescriptors"]}
    text = (MONITORING_DIR / "dashboard.json").read_text() + "".join(
        p.read_text() for p in (MONITORING_DIR / "alert_policies").glob("*.json"))
    named = set(re.findall(r'metric\.type=\\"(custom\.googleapis\.com/[^\\"]+)\\"', text))
    assert named and named <= declared, named - declared
    assert {t for t in declared if "reply_latency" in t or "backup/age" in t or "restarts" in t} <= named


def test_a_refused_file_is_named(monitoring: FakeCloudMonitoring, tmp_path: object) -> None:
    monitoring.fail_next(403, message="Permission monitoring.metricDescriptors.create denied")
    with pytest.raises(MonitoringSetupError, match="custom.googleapis.com/paradyze/agent/messages_in.*403.*denied"):
        apply(PROJECT, endpoint=monitoring.endpoint)
