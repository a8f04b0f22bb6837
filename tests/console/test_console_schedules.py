"""The schedules form's logic: cron in words, next runs in the schedule's zone, and unfinished rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.schedules import PRESETS, ScheduleRow, check_rows, describe, next_runs, preset_for


@pytest.mark.parametrize(("cron", "words"), [
    ("0 22 * * *", "at 22:00, every day"),
    ("0 8 * * 1-5", "at 08:00, on Monday to Friday"),
    ("30 7 * * 0,6", "at 07:30, on Sunday and Saturday"),
    ("0 */6 * * *", "every 6 hours at minute 0"),
    ("15 9 1 * *", "at 09:15, on day 1 of the month"),
    ("0 20 * 12 5", "at 20:00, on Friday in December"),
    ("not cron", "not a cron expression"),
])
def test_cron_in_plain_words(cron: str, words: str) -> None:
    assert describe(cron).startswith(words)


def test_every_preset_reads_as_its_label_says() -> None:
    for label, cron in PRESETS.items():
        assert preset_for(cron) == label
        assert describe(cron) != "not a cron expression"
    assert preset_for("7 7 7 7 *") == "Custom…"


def test_next_runs_are_wall_clock_times_in_the_zone_across_dst() -> None:
    # Paris leaves summer time on 2026-10-25: 08:00 stays 08:00 local, the UTC offset moves.
    after = datetime(2026, 10, 22, 12, tzinfo=UTC)
    runs = next_runs("0 8 * * 1-5", "Europe/Paris", count=3, after=after)
    assert [f"{t:%a %d %H:%M %Z}" for t in runs] == ["Fri 23 08:00 CEST", "Mon 26 08:00 CET", "Tue 27 08:00 CET"]
    assert next_runs("0 8 * * *", "Mars/Olympus") == []


def test_unfinished_rows_are_errors_never_dropped() -> None:
    rows = [ScheduleRow("hibernate", "0 22 * * *", "UTC"), ScheduleRow(None, "0 8 * * *", "UTC"),
            ScheduleRow("wake", "", "Europe/Paris"), ScheduleRow("hibernate", "0 23 * * *", "Nowhere/Land")]
    schedules, problems = check_rows(rows)
    assert len(schedules) == 4  # every row is accounted for
    assert "schedule 2: choose an action (hibernate or wake)" in problems
    assert "schedule 3: choose when it runs (a preset or a cron)" in problems
    assert any(p.startswith("schedule 4 timezone:") for p in problems)
    assert any(p.startswith("schedule 4: schedule 1 is already a hibernate schedule") for p in problems)


def test_finished_rows_pass_as_they_are() -> None:
    schedules, problems = check_rows([ScheduleRow("wake", " 0 8 * * 1-5 ", "Asia/Tokyo", enabled=False)])
    assert problems == []
    assert schedules == [{"action": "wake", "cron": "0 8 * * 1-5", "timezone": "Asia/Tokyo", "enabled": False}]
