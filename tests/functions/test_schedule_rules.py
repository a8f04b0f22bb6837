"""What users may schedule, through update_policy and create_agent: each abuse a 422 that says why, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import Functions, fixture_characters, make_user
from paradyze.scheduler.cron import MIN_INTERVAL_MINUTES, shortest_gap_minutes

NY = "America/New_York"
NIGHTS = [{"action": "hibernate", "cron": "0 0 * * *", "timezone": NY},
          {"action": "wake", "cron": "0 8 * * *", "timezone": NY}]


@pytest.fixture(scope="module")
def owned(functions: Functions) -> Iterator[tuple[str, str]]:
    """(token, agent id): one agent of one user, with the NIGHTS schedules, for every case here."""
    user = make_user()
    resp = functions.post("create_agent", user.token,
                          {"character": fixture_characters()["eliza-default"], "policy": {"schedules": NIGHTS}})
    assert resp.status_code == 201, resp.get_json()
    agent_id = resp.get_json()["agent"]["id"]
    yield user.token, agent_id
    functions.post("delete_agent", user.token, {"agent_id": agent_id})


def update(functions: Functions, owned: tuple[str, str], schedules: list[dict[str, Any]]) -> Any:
    token, agent_id = owned
    return functions.post("update_policy", token, {"agent_id": agent_id, "schedules": schedules})


def stored(functions: Functions, owned: tuple[str, str]) -> list[tuple[str, str, str]]:
    token, agent_id = owned
    agent = functions.get("get_agent", token, agent_id=agent_id).get_json()["agent"]
    return sorted((s["action"], s["cron"], s["timezone"]) for s in agent["policy"]["schedules"])


def refused(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 422, resp.get_json()
    return dict(resp.get_json()["error"])


@pytest.mark.parametrize("cron", ["* * * * *", "*/5 * * * *", "0,10 8 * * *", "5,59 0,23 * * *"])
def test_schedules_firing_more_often_than_the_minimum_are_422(
        functions: Functions, owned: tuple[str, str], cron: str) -> None:
    error = refused(update(functions, owned, [{"action": "wake", "cron": cron, "timezone": NY}]))
    assert error["details"][0]["loc"] == ["schedules", 0, "cron"]
    assert f"at least {MIN_INTERVAL_MINUTES} minutes apart" in error["details"][0]["msg"]
    assert stored(functions, owned) == sorted((s["action"], s["cron"], s["timezone"]) for s in NIGHTS)


def test_a_schedule_at_the_minimum_interval_is_accepted(functions: Functions, owned: tuple[str, str]) -> None:
    every_quarter = [{"action": "wake", "cron": "*/15 9-17 * * 1-5", "timezone": NY}, NIGHTS[0]]
    assert update(functions, owned, every_quarter).status_code == 200
    assert ("wake", "*/15 9-17 * * 1-5", NY) in stored(functions, owned)
    assert update(functions, owned, NIGHTS).status_code == 200


@pytest.mark.parametrize("zone", ["posixrules", "localtime", "Factory", "posix/America/New_York"])
def test_time_zones_that_are_not_iana_places_are_422(functions: Functions, owned: tuple[str, str], zone: str) -> None:
    error = refused(update(functions, owned, [{"action": "wake", "cron": "0 8 * * *", "timezone": zone}]))
    assert error["details"][0]["loc"] == ["schedules", 0, "timezone"]
    assert "IANA" in error["details"][0]["msg"]


def test_two_schedules_with_one_action_are_422_naming_both(functions: Functions, owned: tuple[str, str]) -> None:
    twice = [NIGHTS[1], {"action": "wake", "cron": "0 9 * * *", "timezone": NY}]
    for resp in (update(functions, owned, twice),
                 functions.post("create_agent", owned[0], {"character": fixture_characters()["eliza-default"],
                                                           "policy": {"schedules": twice}})):
        error = refused(resp)
        assert "schedules 0 and 1 are both wake schedules" in error["details"][0]["msg"]


def test_ten_thousand_schedules_are_422(functions: Functions, owned: tuple[str, str]) -> None:
    many = [{"action": "wake", "cron": f"{i % 60} {i // 60 % 24} * * *", "timezone": NY} for i in range(10_000)]
    error = refused(update(functions, owned, many))
    assert error["details"][0]["loc"] == ["schedules"]
    assert "at most 2" in error["details"][0]["msg"]


def test_shortest_gap_counts_across_midnight() -> None:
    assert shortest_gap_minutes("0 0 * * *") == (24 * 60, "00:00", "00:00")
    assert shortest_gap_minutes("*/20 9-17 * * 1-5") == (20, "09:00", "09:20")
    assert shortest_gap_minutes("0,59 0,23 * * *") == (1, "23:59", "00:00")
