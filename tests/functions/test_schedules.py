"""Schedules: validation, next_fire/due across both DST changes, and the jobs they become."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from paradyze.errors import ValidationFailed
from paradyze.scheduler.cron import ScheduleIn, ScheduleList, due, last_due, next_fire
from paradyze.scheduler.jobs import agent_jobs, platform_jobs
from paradyze.settings import Settings

NY = "America/New_York"
AGENT = "6f1c2b7e-8d9a-4c3b-9e2f-1a2b3c4d5e6f"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(cron: str, tz: str, after: datetime, count: int) -> list[str]:
    """The next `count` firings as local ISO strings (what a user reads on a clock)."""
    out = []
    for _ in range(count):
        after = next_fire(cron, tz, after)
        out.append(after.astimezone(ZoneInfo(tz)).isoformat())
    return out


# The plan's example: hibernate at 00:00, wake at 08:00, America/New_York.
# 2026 DST: spring forward Sun 2026-03-08 02:00 EST -> 03:00 EDT; fall back Sun 2026-11-01 02:00 EDT -> 01:00 EST.


def test_midnight_and_eight_keep_local_time_across_spring_forward() -> None:
    start = utc(2026, 3, 6, 12)
    assert [next_fire("0 0 * * *", NY, start + timedelta(days=d)) for d in range(4)] == [
        utc(2026, 3, 7, 5),  # 00:00 EST = 05:00Z
        utc(2026, 3, 8, 5),  # the change is at 02:00, so this midnight is still EST
        utc(2026, 3, 9, 4),  # 00:00 EDT = 04:00Z
        utc(2026, 3, 10, 4),
    ]
    # Asked at 07:00 EST on the 6th: 08:00 that day is next. 08:00 = 13:00Z, then 12:00Z.
    assert fires("0 8 * * *", NY, start, 4) == [
        "2026-03-06T08:00:00-05:00",
        "2026-03-07T08:00:00-05:00",
        "2026-03-08T08:00:00-04:00",
        "2026-03-09T08:00:00-04:00",
    ]
    assert next_fire("0 8 * * *", NY, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 12)


def test_midnight_and_eight_keep_local_time_across_fall_back() -> None:
    start = utc(2026, 10, 30, 12)
    assert [next_fire("0 0 * * *", NY, start + timedelta(days=d)) for d in range(4)] == [
        utc(2026, 10, 31, 4),  # 00:00 EDT
        utc(2026, 11, 1, 4),  # 00:00 EDT, before the 02:00 change
        utc(2026, 11, 2, 5),  # 00:00 EST
        utc(2026, 11, 3, 5),
    ]
    assert next_fire("0 8 * * *", NY, utc(2026, 11, 1, 5)) == utc(2026, 11, 1, 13)  # 08:00 EST


def test_time_in_spring_forward_gap_fires_once_at_end_of_gap() -> None:
    assert fires("30 2 * * *", NY, utc(2026, 3, 6, 12), 4) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",  # 02:30 does not exist; 03:00 EDT is the first instant after
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


def test_several_gap_times_collapse_into_one_firing() -> None:
    # 02:00, 02:20, 02:40 do not exist and 03:00 is the end of the gap: one firing, not four.
    assert fires("*/20 * * * *", NY, utc(2026, 3, 8, 6, 30), 4) == [
        "2026-03-08T01:40:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:20:00-04:00",
        "2026-03-08T03:40:00-04:00",
    ]


def test_repeated_time_fires_once_at_first_occurrence() -> None:
    assert fires("30 1 * * *", NY, utc(2026, 10, 30, 12), 3) == [
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-04:00",  # the second 01:30 (EST) does not fire again
        "2026-11-02T01:30:00-05:00",
    ]
    # Asked from inside the repeated hour (01:10 EST), the next firing is the next day's.
    assert next_fire("30 1 * * *", NY, utc(2026, 11, 1, 6, 10)) == utc(2026, 11, 2, 6, 30)


def test_repeated_hour_of_a_frequent_cron_is_not_run_twice() -> None:
    assert fires("*/30 * * * *", NY, utc(2026, 11, 1, 4, 50), 4) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T02:30:00-05:00",
    ]


def test_whole_skipped_day_fires_once() -> None:
    # Samoa skipped 2011-12-30 entirely (UTC-10 -> UTC+14 at the end of the 29th).
    apia = "Pacific/Apia"
    assert fires("0 12 * * *", apia, utc(2011, 12, 29, 12), 3) == [
        "2011-12-29T12:00:00-10:00",
        "2011-12-31T00:00:00+14:00",  # the 30th's noon, at the end of the gap
        "2011-12-31T12:00:00+14:00",
    ]


def test_next_fire_is_strictly_after_and_utc() -> None:
    at = utc(2026, 3, 9, 4)  # exactly a midnight EDT firing
    result = next_fire("0 0 * * *", NY, at)
    assert result == utc(2026, 3, 10, 4)
    assert result.tzinfo == UTC
    # Any aware input zone is accepted and the answer is the same instant.
    assert next_fire("0 0 * * *", NY, at.astimezone(ZoneInfo("Asia/Tokyo"))) == result
    with pytest.raises(ValueError):
        next_fire("0 0 * * *", NY, datetime(2026, 3, 9))


def test_due_over_window_and_once_per_instant() -> None:
    last = utc(2026, 3, 8, 4)  # 23:00 EST on the 7th
    assert not due("0 0 * * *", NY, last, utc(2026, 3, 8, 4, 59))
    assert due("0 0 * * *", NY, last, utc(2026, 3, 8, 5))  # window end is inclusive
    # Having fired at 05:00Z, the same instant is not due again.
    assert not due("0 0 * * *", NY, utc(2026, 3, 8, 5), utc(2026, 3, 8, 5, 0, 30))
    # Across the change: the next midnight is 04:00Z, not 05:00Z.
    assert not due("0 0 * * *", NY, utc(2026, 3, 8, 5), utc(2026, 3, 9, 3, 59))
    assert due("0 0 * * *", NY, utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))


def test_last_due_collapses_missed_instants_into_the_latest() -> None:
    assert last_due("0 8 * * *", NY, utc(2026, 3, 1), utc(2026, 3, 10)) == utc(2026, 3, 9, 12)
    assert last_due("0 8 * * *", NY, utc(2026, 3, 9, 12), utc(2026, 3, 10, 11)) is None


def test_due_without_last_fired_checks_the_minute_ending_now() -> None:
    assert due("0 8 * * *", NY, None, utc(2026, 3, 9, 12, 0, 30))
    assert not due("0 8 * * *", NY, None, utc(2026, 3, 9, 12, 1, 30))


def test_schedule_in_accepts_and_normalises() -> None:
    s = ScheduleIn.model_validate(
        {"action": "wake", "cron": " 0  8 * *  MON-FRI ", "timezone": NY, "id": "ignored", "next_run_at": None}
    )
    assert (s.action, s.cron, s.timezone, s.enabled) == ("wake", "0 8 * * MON-FRI", NY, True)


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"action": "sleep", "cron": "0 0 * * *"}, ("action",), "literal_error"),
        ({"action": "wake", "cron": "0 0 * *"}, ("cron",), "cron"),
        ({"action": "wake", "cron": "0 0 0 * * *"}, ("cron",), "cron"),  # seconds field
        ({"action": "wake", "cron": "61 0 * * *"}, ("cron",), "cron"),
        ({"action": "wake", "cron": "0 0 L * *"}, ("cron",), "cron"),  # Quartz extension
        ({"action": "wake", "cron": "0 0 30 2 *"}, ("cron",), "cron"),  # never fires
        ({"action": "wake", "cron": "0 MON * * *"}, ("cron",), "cron"),
        ({"action": "wake", "cron": "0 0 * * *", "timezone": "Mars/Olympus"}, ("timezone",), "timezone"),
        ({"action": "wake", "cron": "0 0 * * *", "timezone": "../../etc/passwd"}, ("timezone",), "timezone"),
        ({"cron": "0 0 * * *"}, ("action",), "missing"),
    ],
)
def test_schedule_in_rejects_with_field_paths(body: dict, loc: tuple, type_: str) -> None:
    with pytest.raises(ValidationError) as info:
        ScheduleIn.model_validate(body)
    errors = info.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, type_)]
    assert "{" not in errors[0]["msg"]  # a readable message, not a template


def test_schedule_list_rejects_two_schedules_with_one_action() -> None:
    class Policy(BaseModel):
        schedules: ScheduleList

    ok = Policy.model_validate(
        {"schedules": [{"action": "hibernate", "cron": "0 0 * * *"}, {"action": "wake", "cron": "0 8 * * *"}]}
    )
    assert len(ok.schedules) == 2
    with pytest.raises(ValidationError) as info:
        Policy.model_validate(
            {"schedules": [{"action": "wake", "cron": "0 8 * * *"}, {"action": "wake", "cron": "0 9 * * *"}]}
        )
    assert [e["loc"] for e in info.value.errors()] == [("schedules",)]
    # Item errors carry their index.
    with pytest.raises(ValidationError) as info:
        Policy.model_validate(
            {"schedules": [{"action": "wake", "cron": "0 8 * * *"}, {"action": "hibernate", "cron": "nope"}]}
        )
    assert [e["loc"] for e in info.value.errors()] == [("schedules", 1, "cron")]


def test_agent_jobs_one_per_enabled_schedule() -> None:
    jobs = agent_jobs(
        "prod",
        AGENT,
        [
            {"action": "hibernate", "cron": "0 0 * * *", "timezone": NY},
            ScheduleIn(action="wake", cron="0 8 * * *", timezone=NY),
        ],
    )
    assert [(j.name, j.cron, j.timezone, j.method, j.path, j.body) for j in jobs] == [
        (f"paradyze-prod-{AGENT}-hibernate", "0 0 * * *", NY, "POST", "/hibernate_agent", {"agent_id": AGENT}),
        (f"paradyze-prod-{AGENT}-wake", "0 8 * * *", NY, "POST", "/wake_agent", {"agent_id": AGENT}),
    ]
    disabled = agent_jobs("prod", AGENT, [{"action": "wake", "cron": "0 8 * * *", "enabled": False}])
    assert disabled == []


def test_agent_jobs_refuses_two_enabled_schedules_for_one_action() -> None:
    with pytest.raises(ValidationFailed) as info:
        agent_jobs("prod", AGENT, [{"action": "wake", "cron": "0 8 * * *"}, {"action": "wake", "cron": "0 9 * * *"}])
    assert info.value.details[0]["loc"] == ["schedules", 1, "action"]


def test_platform_jobs_follow_settings() -> None:
    settings = Settings(PARADYZE_INSTANCE="prod", PARADYZE_TIMEZONE=NY, PARADYZE_BACKUP_CRON="15 4 * * *")
    jobs = {j.name: j for j in platform_jobs(settings)}
    assert set(jobs) == {"paradyze-prod-hibernate-idle", "paradyze-prod-backup", "paradyze-prod-health"}
    assert (jobs["paradyze-prod-backup"].cron, jobs["paradyze-prod-backup"].path) == ("15 4 * * *", "/backup_agents")
    assert (jobs["paradyze-prod-health"].method, jobs["paradyze-prod-health"].body) == ("GET", None)
    assert jobs["paradyze-prod-hibernate-idle"].path == "/hibernate_idle"
    assert {j.timezone for j in jobs.values()} == {NY}
