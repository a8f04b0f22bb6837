"""Schedules through the functions: Cloud Scheduler (a local fake of its REST API) follows every edit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import Functions, User, fixture_characters
from paradyze.settings import get_settings
from tests.fakes.cloud_scheduler import FakeCloudScheduler

NY = "America/New_York"
SA = "scheduler@proj.iam.gserviceaccount.com"


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudScheduler]:
    settings = get_settings()
    with FakeCloudScheduler() as fake:
        for name, value in {"scheduler_backend": "cloud", "scheduler_api_endpoint": fake.endpoint,
                            "gcp_project": "proj", "scheduler_service_account": SA}.items():
            monkeypatch.setattr(settings, name, value)
        yield fake


def job_ids(fake: FakeCloudScheduler) -> set[str]:
    return {name.rsplit("/", 1)[-1] for name in fake.jobs}


def test_jobs_follow_schedules_as_they_change(functions: Functions, alice: User, admin_token: str,
                                              scheduler: FakeCloudScheduler) -> None:
    resp = functions.post("create_agent", alice.token, {"character": fixture_characters()["eliza-default"]})
    agent_id = resp.get_json()["agent"]["id"]
    prefix = f"paradyze-{get_settings().instance}-{agent_id}-"
    nights = [{"action": "hibernate", "cron": "0 0 * * *", "timezone": NY},
              {"action": "wake", "cron": "0 8 * * *", "timezone": NY}]

    resp = functions.post("update_policy", alice.token, {"agent_id": agent_id, "schedules": nights})
    assert resp.status_code == 200, resp.get_json()
    assert {s["action"] for s in resp.get_json()["agent"]["policy"]["schedules"]} == {"hibernate", "wake"}
    assert job_ids(scheduler) == {prefix + "hibernate", prefix + "wake"}
    wake = scheduler.job(prefix + "wake")
    assert (wake["schedule"], wake["timeZone"]) == ("0 8 * * *", NY)
    assert wake["httpTarget"]["uri"].endswith("/wake_agent")
    assert wake["httpTarget"]["oidcToken"]["serviceAccountEmail"] == SA

    later = [nights[0], {**nights[1], "cron": "30 9 * * 1-5"}]
    scheduler.clear_calls()
    functions.post("update_policy", alice.token, {"agent_id": agent_id, "schedules": later})
    assert scheduler.job(prefix + "wake")["schedule"] == "30 9 * * 1-5"
    assert [c.method for c in scheduler.mutations()] == ["PATCH"]

    functions.post("update_policy", alice.token, {"agent_id": agent_id, "schedules": [nights[0]]})
    assert job_ids(scheduler) == {prefix + "hibernate"}

    synced = functions.post("sync_schedules", admin_token)
    assert synced.status_code == 200, synced.get_json()
    platform = {f"paradyze-{get_settings().instance}-{n}" for n in ("hibernate-idle", "backup", "health")}
    assert platform <= job_ids(scheduler)

    functions.post("delete_agent", alice.token, {"agent_id": agent_id})
    assert not any(j.startswith(prefix) for j in job_ids(scheduler))


def test_bad_schedules_are_422_with_their_path(functions: Functions, alice: User, cleanup_agents: list[str],
                                               scheduler: FakeCloudScheduler) -> None:
    resp = functions.post("create_agent", alice.token, {"character": fixture_characters()["sam-altman"]})
    agent_id = resp.get_json()["agent"]["id"]
    cleanup_agents.append(agent_id)
    bad = functions.post("update_policy", alice.token, {"agent_id": agent_id, "schedules": [
        {"action": "wake", "cron": "61 * * * *", "timezone": NY},
        {"action": "hibernate", "cron": "0 0 * * *", "timezone": "Mars/Olympus"}]})
    assert bad.status_code == 422
    locs = [d["loc"] for d in bad.get_json()["error"]["details"]]
    assert ["schedules", 0, "cron"] in locs and ["schedules", 1, "timezone"] in locs
    assert scheduler.jobs == {}


def test_scheduler_refusing_is_503_and_the_retry_syncs(functions: Functions, alice: User, cleanup_agents: list[str],
                               scheduler: FakeCloudScheduler) -> None:
    resp = functions.post("create_agent", alice.token, {"character": fixture_characters()["sam-altman"]})
    agent_id = resp.get_json()["agent"]["id"]
    cleanup_agents.append(agent_id)
    scheduler.fail_next(403, times=50)  # refused: not retried, so the answer comes at once
    resp = functions.post("update_policy", alice.token, {"agent_id": agent_id, "schedules": [
        {"action": "wake", "cron": "0 8 * * *", "timezone": NY}]})
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
    scheduler.clear_failures()
    # The schedule was stored; the same request again brings the scheduler in line.
    again = functions.post("update_policy", alice.token, {"agent_id": agent_id, "schedules": [
        {"action": "wake", "cron": "0 8 * * *", "timezone": NY}]})
    assert again.status_code == 200
    assert job_ids(scheduler) == {f"paradyze-{get_settings().instance}-{agent_id}-wake"}
