"""Numbers behind the Health and Costs pages, computed from hand-made event histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console import analytics
from console.models import Agent, Event

NOW = datetime(2026, 1, 31, 12, tzinfo=UTC)


def _event(agent_id: str, hours_ago: float, from_status: str | None, to_status: str, **extra: str) -> Event:
    return Event(
        agent_id=agent_id,
        at=NOW - timedelta(hours=hours_ago),
        from_status=from_status,
        to_status=to_status,
        **extra,
    )


def _agent(agent_id: str, status: str, created_hours_ago: float) -> Agent:
    return Agent(
        id=agent_id, name=agent_id, status=status, created_at=NOW - timedelta(hours=created_hours_ago)
    )


def test_running_time_counts_only_running_spans() -> None:
    events = [
        _event("a", 10, None, "provisioning"),
        _event("a", 10, "provisioning", "running"),
        _event("a", 6, "running", "hibernating"),
        _event("a", 6, "hibernating", "hibernated"),
        _event("a", 2, "hibernated", "waking"),
        _event("a", 2, "waking", "running"),
    ]
    seconds = analytics.running_seconds(events, _agent("a", "running", 10), NOW, NOW - timedelta(days=30))
    assert seconds == pytest.approx(6 * 3600)  # 4h then the last 2h


def test_estimate_against_always_on() -> None:
    agents = [_agent("half", "hibernated", 10), _agent("always", "running", 10)]
    events = [
        _event("half", 10, "provisioning", "running"),
        _event("half", 5, "running", "hibernated"),
        _event("always", 10, "provisioning", "running"),
    ]
    est = analytics.estimate_costs(agents, events, now=NOW, rate=0.01, platform_fee=20)
    by_id = {a.agent_id: a for a in est.agents}
    assert by_id["half"].monthly_hours == pytest.approx(365.0)
    assert by_id["always"].monthly_hours == pytest.approx(730.0)
    assert est.always_on_total == pytest.approx(20 + 2 * 7.30)
    assert est.monthly_total == pytest.approx(20 + 3.65 + 7.30)
    assert est.saved == pytest.approx(3.65)


def test_window_clips_history_and_running_agent_without_events() -> None:
    agents = [_agent("old", "running", 24 * 90)]
    est = analytics.estimate_costs(agents, [], now=NOW, window=timedelta(days=30))
    assert est.agents[0].observed_hours == pytest.approx(24 * 30)
    assert est.agents[0].monthly_hours == pytest.approx(analytics.HOURS_PER_MONTH)


def test_default_rates_fit_the_plan_budget_for_100_agents() -> None:
    agents = [_agent(str(i), "running", 100) for i in range(100)]
    est = analytics.estimate_costs(agents, [], now=NOW)
    assert 70 <= est.always_on_total <= 170


def test_states_over_time_counts_each_state_after_each_event() -> None:
    events = [
        _event("a", 3, None, "running"),
        _event("b", 2, None, "running"),
        _event("a", 1, "running", "hibernated"),
    ]
    last = [r for r in analytics.states_over_time(events) if r["at"] == NOW - timedelta(hours=1)]
    assert {r["status"]: r["agents"] for r in last} == {"hibernated": 1, "running": 1}
    carried = [r for r in analytics.states_over_time(events, now=NOW) if r["at"] == NOW]
    assert {r["status"]: r["agents"] for r in carried} == {"hibernated": 1, "running": 1}


def test_messages_per_agent_degrades_to_none() -> None:
    agents = [_agent("a", "running", 1)]
    assert analytics.messages_per_agent(agents, [_event("a", 1, None, "running", actor="admin")]) is None
    woke = _event("a", 1, "hibernated", "waking", reason="message received")
    assert analytics.messages_per_agent(agents, [woke]) == {"a": 1}
    counted = Agent(id="b", name="b", messages_count=12)
    assert analytics.messages_per_agent([counted], []) == {"b": 12}


def test_running_hours_by_day_split_runs_across_midnight() -> None:
    # Ran from 26 h ago (30 Jan 10:00) to 2 h ago (31 Jan 10:00): 14 h on the 30th, 10 h on the 31st.
    agent = _agent("a", "hibernated", created_hours_ago=30)
    events = [_event("a", 26, "provisioning", "running"), _event("a", 2, "running", "hibernated")]
    rows = analytics.running_hours_by_day([agent], events, now=NOW, window=timedelta(days=2))
    by_day = {r["day"].day: round(r["hours"], 6) for r in rows}
    assert by_day == {29: 0.0, 30: 14.0, 31: 10.0}


def test_running_hours_by_day_counts_an_agent_still_running_up_to_now() -> None:
    agent = _agent("b", "running", created_hours_ago=5)
    rows = analytics.running_hours_by_day([agent], [_event("b", 5, "provisioning", "running")], now=NOW,
                                          window=timedelta(days=1))
    assert sum(r["hours"] for r in rows) == pytest.approx(5.0)


def test_cloud_run_prices_per_region() -> None:
    from console import pricing

    iowa, london = pricing.price("us-central1"), pricing.price("europe-west2")
    assert (iowa.tier, london.tier) == (1, 2)
    # 1 vCPU and 1 GiB for an hour, instance-based: (0.000018 + 0.000002) * 3600.
    assert iowa.per_agent_hour() == pytest.approx(0.072)
    assert london.per_agent_hour() == pytest.approx(0.1008)
    assert iowa.per_agent_hour(vcpus=2, gib=4) == pytest.approx((2 * 0.000018 + 4 * 0.000002) * 3600)
    with pytest.raises(KeyError):
        pricing.price("moon-base1")
