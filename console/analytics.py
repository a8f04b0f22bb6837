"""Numbers for the Health and Costs pages, derived from agents and their status events (pure functions)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from console.models import Agent, Event

HOURS_PER_MONTH = 730.0  # 365 * 24 / 12, the figure cloud price sheets use
# Defaults chosen to fit the plan's $70-170 a month for 100 agents: always-on 100 agents cost
# 20 + 100 * 730 * 0.002 = $166, and hibernation brings it down from there.
DEFAULT_RATE_PER_AGENT_HOUR = 0.002
DEFAULT_PLATFORM_FEE = 20.0


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _by_agent(events: Iterable[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.agent_id:
            grouped[event.agent_id].append(event)
    for items in grouped.values():
        items.sort(key=lambda e: _utc(e.at))
    return grouped


def states_over_time(events: Iterable[Event], now: datetime | None = None) -> list[dict[str, object]]:
    """After every event (and at `now`), how many agents were in each state: rows of {at, status, agents}."""
    ordered = sorted((e for e in events if e.agent_id and e.to_status), key=lambda e: _utc(e.at))
    current: dict[str, str] = {}
    rows: list[dict[str, object]] = []
    for event in ordered:
        assert event.agent_id and event.to_status
        current[event.agent_id] = event.to_status
        counts = Counter(current.values())
        seen = set(counts) | {r["status"] for r in rows}
        rows.extend({"at": _utc(event.at), "status": s, "agents": counts.get(s, 0)} for s in sorted(seen))
    if rows and now is not None:
        # Carry the last counts to the present, so the chart ends in today's state.
        last = rows[-1]["at"]
        rows.extend({**r, "at": _utc(now)} for r in rows if r["at"] == last)
    return rows


def running_seconds(events: list[Event], agent: Agent | None, now: datetime, since: datetime) -> float:
    """Seconds the agent spent in "running" between `since` and `now`, from its ordered events."""
    total = 0.0
    # A window that opens mid-run: the first event leaves "running", so it ran from the start.
    running_from = since if events and events[0].from_status == "running" else None
    for event in events:
        at = max(_utc(event.at), since)
        if event.to_status == "running" and running_from is None:
            running_from = at
        elif event.to_status != "running" and running_from is not None:
            total += max((at - running_from).total_seconds(), 0.0)
            running_from = None
    if running_from is None and not events and agent and agent.status == "running":
        # No history in the window (older than the events we fetched): running since it started.
        start = agent.started_at or agent.created_at
        running_from = max(_utc(start), since) if start else None
    if running_from is not None and (agent is None or agent.status == "running"):
        total += max((now - running_from).total_seconds(), 0.0)
    return total


@dataclass(frozen=True)
class AgentCost:
    agent_id: str
    name: str
    status: str
    running_hours: float  # observed in the window
    observed_hours: float  # how long the agent existed in the window
    monthly_hours: float  # running share projected over a month
    monthly_cost: float
    always_on_cost: float


@dataclass(frozen=True)
class CostEstimate:
    agents: list[AgentCost]
    platform_fee: float
    rate: float

    @property
    def monthly_total(self) -> float:
        return self.platform_fee + sum(a.monthly_cost for a in self.agents)

    @property
    def always_on_total(self) -> float:
        return self.platform_fee + sum(a.always_on_cost for a in self.agents)

    @property
    def saved(self) -> float:
        return self.always_on_total - self.monthly_total


def estimate_costs(
    agents: list[Agent],
    events: list[Event],
    *,
    now: datetime,
    rate: float = DEFAULT_RATE_PER_AGENT_HOUR,
    platform_fee: float = DEFAULT_PLATFORM_FEE,
    window: timedelta = timedelta(days=30),
) -> CostEstimate:
    """Project each agent's observed running share over a month and price it against always-on."""
    now = _utc(now)
    since = now - window
    history = _by_agent(events)
    rows: list[AgentCost] = []
    for agent in agents:
        mine = [e for e in history.get(agent.id, []) if _utc(e.at) <= now]
        born_candidates = [_utc(e.at) for e in mine[:1]]
        if agent.created_at:
            born_candidates.append(_utc(agent.created_at))
        born = min(born_candidates, default=now)
        start = max(born, since)
        observed = max((now - start).total_seconds(), 0.0)
        running = min(running_seconds(mine, agent, now, start), observed)
        share = running / observed if observed > 0 else (1.0 if agent.status == "running" else 0.0)
        monthly_hours = share * HOURS_PER_MONTH
        rows.append(
            AgentCost(
                agent_id=agent.id,
                name=agent.name,
                status=agent.status,
                running_hours=running / 3600,
                observed_hours=observed / 3600,
                monthly_hours=monthly_hours,
                monthly_cost=monthly_hours * rate,
                always_on_cost=HOURS_PER_MONTH * rate,
            )
        )
    return CostEstimate(agents=rows, platform_fee=platform_fee, rate=rate)


def messages_per_agent(agents: list[Agent], events: list[Event]) -> dict[str, int] | None:
    """Messages handled per agent name, or None when neither agents nor events carry that information."""
    names = {a.id: a.name for a in agents}
    counted: dict[str, int] = {}
    for agent in agents:
        extra = agent.model_extra or {}
        for key in ("message_count", "messages_count", "messages"):
            if isinstance(extra.get(key), int):
                counted[agent.name] = extra[key]
                break
    if counted:
        return counted
    tally: Counter[str] = Counter()
    for event in events:
        words = f"{event.actor or ''} {event.reason or ''}".lower()
        if "message" in words and event.agent_id:
            tally[names.get(event.agent_id, event.agent_id[:8])] += 1
    return dict(tally) or None


def restarts_per_agent(agents: list[Agent]) -> dict[str, int]:
    return {a.name or a.id[:8]: a.restart_count for a in agents}


def running_intervals(agent: Agent, events: list[Event], now: datetime) -> list[tuple[datetime, datetime]]:
    """The spans in which the agent was running, from its ordered events (and its status now)."""
    spans: list[tuple[datetime, datetime]] = []
    opened: datetime | None = None
    if events and events[0].from_status == "running":
        # Running before the history we hold begins: count from its creation, or the first event we have.
        opened = min(_utc(agent.created_at), _utc(events[0].at)) if agent.created_at else _utc(events[0].at)
    for event in events:
        at = _utc(event.at)
        if event.to_status == "running" and opened is None:
            opened = at
        elif event.to_status != "running" and opened is not None:
            spans.append((opened, at))
            opened = None
    if not events and agent.status == "running":
        start = agent.started_at or agent.created_at
        opened = _utc(start) if start else None
    if opened is not None and agent.status == "running":
        spans.append((opened, _utc(now)))
    return spans


def running_hours_by_day(
    agents: list[Agent], events: list[Event], *, now: datetime, window: timedelta
) -> list[dict[str, object]]:
    """Hours each agent spent running on each UTC day of the window: rows of {day, agent_id, name, hours}."""
    now = _utc(now)
    history = _by_agent(events)
    first_day = (now - window).replace(hour=0, minute=0, second=0, microsecond=0)
    rows: list[dict[str, object]] = []
    for agent in agents:
        spans = running_intervals(agent, [e for e in history.get(agent.id, []) if _utc(e.at) <= now], now)
        day = first_day
        while day <= now:
            end = day + timedelta(days=1)
            seconds = sum(max((min(b, end) - max(a, day)).total_seconds(), 0.0) for a, b in spans)
            rows.append({"day": day, "agent_id": agent.id, "name": agent.name, "hours": seconds / 3600})
            day = end
    return rows
