"""CloudSchedulerSink against a local fake of the Cloud Scheduler REST API; FileJobSink on disk."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.api_core import retry as retries

from paradyze.errors import Unavailable
from paradyze.scheduler.base import JobSink
from paradyze.scheduler.cloud import CloudSchedulerSink
from paradyze.scheduler.file import FileJobSink
from paradyze.scheduler.jobs import JobSpec
from paradyze.scheduler.sync import get_job_sink, sync_agent, sync_all
from paradyze.settings import Settings
from tests.fakes.cloud_scheduler import FakeCloudScheduler

NY = "America/New_York"
A1 = "6f1c2b7e-8d9a-4c3b-9e2f-1a2b3c4d5e6f"
A2 = "0b9d4c1e-2f3a-4b5c-8d7e-6f5a4b3c2d1e"
SA = "paradyze-scheduler@proj.iam.gserviceaccount.com"
PUBLIC = "https://us-central1-proj.cloudfunctions.net"
PLATFORM = {"paradyze-prod-hibernate-idle", "paradyze-prod-backup", "paradyze-prod-health"}

NIGHTS = [
    {"action": "hibernate", "cron": "0 0 * * *", "timezone": NY},
    {"action": "wake", "cron": "0 8 * * *", "timezone": NY},
]


@pytest.fixture
def fake() -> Iterator[FakeCloudScheduler]:
    with FakeCloudScheduler(page_size=2) as server:
        yield server


def make_settings(endpoint: str, **extra: str) -> Settings:
    values = {
        "GOOGLE_CLOUD_PROJECT": "proj",
        "PARADYZE_GCP_REGION": "us-east1",
        "PARADYZE_SCHEDULER": "cloud",
        "PARADYZE_SCHEDULER_API_ENDPOINT": endpoint,
        "PARADYZE_SCHEDULER_SERVICE_ACCOUNT": SA,
        "PARADYZE_INSTANCE": "prod",
        "PARADYZE_PUBLIC_URL": PUBLIC + "/",
        "PARADYZE_TIMEZONE": NY,
    }
    values.update(extra)
    return Settings(**values)


@pytest.fixture
def settings(fake: FakeCloudScheduler) -> Settings:
    return make_settings(fake.endpoint)


@pytest.fixture
def sink(settings: Settings) -> CloudSchedulerSink:
    return CloudSchedulerSink(settings)


def job_ids(fake: FakeCloudScheduler) -> set[str]:
    return {name.rsplit("/", 1)[-1] for name in fake.jobs}


def test_get_job_sink_builds_the_cloud_sink_with_the_rest_transport(settings: Settings) -> None:
    sink = get_job_sink(settings)
    assert isinstance(sink, CloudSchedulerSink)
    assert isinstance(sink, JobSink)
    assert type(sink._client.transport).__name__ == "CloudSchedulerRestTransport"


def test_creates_platform_and_agent_jobs_with_http_target_oidc_and_retries(
    fake: FakeCloudScheduler, settings: Settings, sink: CloudSchedulerSink
) -> None:
    result = sync_all(sink, settings, {A1: NIGHTS})

    wanted = PLATFORM | {f"paradyze-prod-{A1}-hibernate", f"paradyze-prod-{A1}-wake"}
    assert set(result.created) == wanted and not result.updated and not result.deleted
    assert job_ids(fake) == wanted
    assert all(n.startswith("projects/proj/locations/us-east1/jobs/") for n in fake.jobs)

    wake = fake.job(f"paradyze-prod-{A1}-wake")
    target = wake["httpTarget"]
    assert (wake["schedule"], wake["timeZone"]) == ("0 8 * * *", NY)
    assert target["uri"] == f"{PUBLIC}/wake_agent"
    assert target["httpMethod"] == "POST"
    assert json.loads(base64.b64decode(target["body"])) == {"agent_id": A1}
    assert target["headers"]["Content-Type"] == "application/json"
    assert target["oidcToken"] == {"serviceAccountEmail": SA, "audience": PUBLIC}
    retry = wake["retryConfig"]
    assert retry["retryCount"] == 3
    assert (retry["minBackoffDuration"], retry["maxBackoffDuration"]) == ("10s", "300s")
    assert wake["attemptDeadline"] == "180s"

    health = fake.job("paradyze-prod-health")
    assert (health["httpTarget"]["httpMethod"], health["schedule"], health["timeZone"]) == ("GET", "*/2 * * * *", NY)
    assert "body" not in health["httpTarget"]
    assert fake.job("paradyze-prod-backup")["httpTarget"]["uri"] == f"{PUBLIC}/backup_agents"
    assert fake.job("paradyze-prod-hibernate-idle")["httpTarget"]["uri"] == f"{PUBLIC}/hibernate_idle"


def test_same_schedules_again_change_nothing(
    fake: FakeCloudScheduler, settings: Settings, sink: CloudSchedulerSink
) -> None:
    sync_all(sink, settings, {A1: NIGHTS})
    fake.clear_calls()

    result = sync_all(sink, settings, {A1: NIGHTS})

    assert not result.changed
    assert len(result.unchanged) == 5
    assert fake.mutations() == []
    # Listing went through every page (5 jobs, 2 per page).
    assert [c.query.get("pageToken") for c in fake.calls] == [None, "2", "4"]


def test_cron_change_updates_only_that_job_with_a_field_mask(
    fake: FakeCloudScheduler, settings: Settings, sink: CloudSchedulerSink
) -> None:
    sync_all(sink, settings, {A1: NIGHTS})
    fake.clear_calls()

    changed = [NIGHTS[0], {**NIGHTS[1], "cron": "30 7 * * 1-5"}]
    result = sync_agent(sink, "prod", A1, changed)

    assert result.updated == [f"paradyze-prod-{A1}-wake"]
    assert result.unchanged == [f"paradyze-prod-{A1}-hibernate"]
    [patch] = fake.mutations()
    assert patch.method == "PATCH" and patch.path.endswith(f"/jobs/paradyze-prod-{A1}-wake")
    assert patch.query["updateMask"] == "schedule"
    assert fake.job(f"paradyze-prod-{A1}-wake")["schedule"] == "30 7 * * 1-5"


def test_timezone_and_target_changes_are_updated(fake: FakeCloudScheduler, settings: Settings) -> None:
    sync_agent(CloudSchedulerSink(settings), "prod", A1, NIGHTS)
    fake.clear_calls()
    moved = make_settings(fake.endpoint, PARADYZE_PUBLIC_URL="https://paradyze.example.com")

    result = sync_agent(CloudSchedulerSink(moved), "prod", A1, [{**NIGHTS[0], "timezone": "Europe/Berlin"}, NIGHTS[1]])

    assert sorted(result.updated) == [f"paradyze-prod-{A1}-hibernate", f"paradyze-prod-{A1}-wake"]
    masks = {c.path.rsplit("-", 1)[-1]: set(c.query["updateMask"].split(",")) for c in fake.mutations()}
    assert masks == {"hibernate": {"timeZone", "httpTarget"}, "wake": {"httpTarget"}}
    hibernate = fake.job(f"paradyze-prod-{A1}-hibernate")
    assert hibernate["timeZone"] == "Europe/Berlin"
    assert hibernate["httpTarget"]["uri"] == "https://paradyze.example.com/hibernate_agent"
    assert hibernate["httpTarget"]["oidcToken"]["audience"] == "https://paradyze.example.com"


def test_removed_or_disabled_schedule_deletes_its_job_and_leaves_others(
    fake: FakeCloudScheduler, settings: Settings, sink: CloudSchedulerSink
) -> None:
    sync_all(sink, settings, {A1: NIGHTS, A2: NIGHTS})
    fake.clear_calls()

    removed = sync_agent(sink, "prod", A1, [NIGHTS[0]])
    disabled = sync_agent(sink, "prod", A2, [NIGHTS[0], {**NIGHTS[1], "enabled": False}])

    assert removed.deleted == [f"paradyze-prod-{A1}-wake"]
    assert disabled.deleted == [f"paradyze-prod-{A2}-wake"]
    assert [c.method for c in fake.mutations()] == ["DELETE", "DELETE"]
    assert job_ids(fake) == PLATFORM | {f"paradyze-prod-{A1}-hibernate", f"paradyze-prod-{A2}-hibernate"}


def test_deleted_agent_loses_all_jobs_and_full_sync_removes_orphans(
    fake: FakeCloudScheduler, settings: Settings, sink: CloudSchedulerSink
) -> None:
    sync_all(sink, settings, {A1: NIGHTS, A2: NIGHTS})

    assert sorted(sync_agent(sink, "prod", A1, []).deleted) == [
        f"paradyze-prod-{A1}-hibernate",
        f"paradyze-prod-{A1}-wake",
    ]
    result = sync_all(sink, settings, {})  # A2 vanished from the database
    assert sorted(result.deleted) == [f"paradyze-prod-{A2}-hibernate", f"paradyze-prod-{A2}-wake"]
    assert job_ids(fake) == PLATFORM


def test_jobs_of_other_instances_and_foreign_jobs_are_never_touched(
    fake: FakeCloudScheduler, settings: Settings
) -> None:
    staging = make_settings(fake.endpoint, PARADYZE_INSTANCE="staging")
    sync_all(CloudSchedulerSink(staging), staging, {A1: NIGHTS})
    before = set(fake.jobs)

    sync_all(CloudSchedulerSink(settings), settings, {})

    assert before <= set(fake.jobs)
    assert job_ids(fake) - {n.rsplit("/", 1)[-1] for n in before} == PLATFORM


def test_changed_platform_settings_update_platform_jobs(fake: FakeCloudScheduler, settings: Settings) -> None:
    sync_all(CloudSchedulerSink(settings), settings, {})
    changed = make_settings(fake.endpoint, PARADYZE_BACKUP_CRON="0 2 * * *", PARADYZE_TIMEZONE="UTC")

    result = sync_all(CloudSchedulerSink(changed), changed, {})

    assert sorted(result.updated) == sorted(PLATFORM)  # all three changed time zone
    assert fake.job("paradyze-prod-backup")["schedule"] == "0 2 * * *"
    assert {fake.job(n)["timeZone"] for n in PLATFORM} == {"UTC"}


def test_without_service_account_the_platform_does_not_start(fake: FakeCloudScheduler) -> None:
    # Jobs without an OIDC token could not call the functions: refused at start, not at the first sweep.
    with pytest.raises(ValueError, match="PARADYZE_SCHEDULER_SERVICE_ACCOUNT"):
        make_settings(fake.endpoint, PARADYZE_SCHEDULER_SERVICE_ACCOUNT="")


def test_job_created_concurrently_is_reconciled_not_failed(
    fake: FakeCloudScheduler, settings: Settings, sink: CloudSchedulerSink
) -> None:
    other = CloudSchedulerSink(settings)
    # Another instance creates the job between our list and our create.
    original_list = sink._client.list_jobs

    def list_then_race(*args: object, **kwargs: object) -> object:
        listed = list(original_list(*args, **kwargs))
        other.apply(
            [JobSpec(f"paradyze-prod-{A1}-wake", "0 9 * * *", NY, "POST", "/wake_agent", {"agent_id": A1})],
            f"paradyze-prod-{A1}-",
        )
        return listed

    sink._client.list_jobs = list_then_race  # type: ignore[method-assign]
    result = sync_agent(sink, "prod", A1, NIGHTS)

    assert result.created == [f"paradyze-prod-{A1}-hibernate"]
    assert result.updated == [f"paradyze-prod-{A1}-wake"]
    assert fake.job(f"paradyze-prod-{A1}-wake")["schedule"] == "0 8 * * *"


def test_scheduler_errors_become_unavailable(fake: FakeCloudScheduler, settings: Settings) -> None:
    quick = CloudSchedulerSink(settings, retry=retries.Retry(initial=0.01, maximum=0.02, timeout=0.3))
    fake.fail_next(503, times=100)
    with pytest.raises(Unavailable) as info:
        sync_agent(quick, "prod", A1, NIGHTS)
    assert info.value.__cause__ is not None

    fake.clear_failures()
    fake.fail_next(403)
    with pytest.raises(Unavailable, match="Forbidden"):
        sync_agent(quick, "prod", A1, NIGHTS)


def test_transient_error_is_retried_then_succeeds(fake: FakeCloudScheduler, settings: Settings) -> None:
    sink = CloudSchedulerSink(settings, retry=retries.Retry(initial=0.01, maximum=0.02, timeout=5))
    fake.fail_next(503, times=2)
    result = sync_agent(sink, "prod", A1, NIGHTS)
    assert len(result.created) == 2


def test_unreachable_scheduler_is_unavailable() -> None:
    settings = make_settings("http://127.0.0.1:9")  # discard port: nothing listens
    sink = CloudSchedulerSink(settings, retry=retries.Retry(initial=0.01, maximum=0.02, timeout=0.3))
    with pytest.raises(Unavailable):
        sync_agent(sink, "prod", A1, NIGHTS)


def test_desired_job_outside_scope_is_refused(sink: CloudSchedulerSink, fake: FakeCloudScheduler) -> None:
    spec = JobSpec(f"paradyze-prod-{A2}-wake", "0 8 * * *", NY, "POST", "/wake_agent", {"agent_id": A2})
    with pytest.raises(ValueError):
        sink.apply([spec], f"paradyze-prod-{A1}-")
    assert fake.calls == []


def test_missing_project_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="GOOGLE_CLOUD_PROJECT"):
        CloudSchedulerSink(Settings(PARADYZE_SCHEDULER="cloud"))


def test_file_sink_creates_updates_deletes_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    first = FileJobSink(path)
    spec = JobSpec(f"paradyze-local-{A1}-wake", "0 8 * * *", NY, "POST", "/wake_agent", {"agent_id": A1})

    assert first.apply([spec], f"paradyze-local-{A1}-").created == [spec.name]
    assert FileJobSink(path).apply([spec], f"paradyze-local-{A1}-").unchanged == [spec.name]
    moved = JobSpec(spec.name, "0 9 * * *", NY, "POST", "/wake_agent", {"agent_id": A1})
    assert FileJobSink(path).apply([moved], f"paradyze-local-{A1}-").updated == [spec.name]
    assert FileJobSink(path).load() == {spec.name: moved}
    assert FileJobSink(path).apply([], f"paradyze-local-{A1}-").deleted == [spec.name]
    assert json.loads(path.read_text()) == {"jobs": {}}


def test_local_backend_gets_the_file_sink(tmp_path: Path) -> None:
    sink = get_job_sink(Settings(PARADYZE_HOME=str(tmp_path)))
    assert isinstance(sink, FileJobSink) and isinstance(sink, JobSink)
    assert sink.path == tmp_path.resolve() / "scheduler-jobs.json"
