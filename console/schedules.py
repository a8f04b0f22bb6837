"""Schedules in the console: cron presets, cron in plain words, next runs in a zone, and row checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from console.characters import validate_schedule

ACTIONS = ("hibernate", "wake")
CUSTOM = "Custom…"
# label -> cron; the first two are what operators ask for most (nights off, weekday mornings on).
PRESETS = {
    "Every night at 22:00": "0 22 * * *",
    "Weekdays at 08:00": "0 8 * * 1-5",
    "Every day at 08:00": "0 8 * * *",
    "Weekdays at 18:00": "0 18 * * 1-5",
    "Fridays at 20:00": "0 20 * * 5",
    "Mondays at 07:00": "0 7 * * 1",
    "Every 6 hours": "0 */6 * * *",
}
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]  # fmt: skip


def preset_for(cron: str) -> str:
    """The preset label whose cron this is, or CUSTOM."""
    return next((label for label, value in PRESETS.items() if value == cron.strip()), CUSTOM)


def _list(field: str, names: list[str] | None = None, offset: int = 0) -> str | None:
    """A cron field of numbers, ranges and lists in words ("1-5" -> "Monday to Friday"); None if unusual."""
    parts = []
    for piece in field.split(","):
        bounds = piece.split("-")
        if not all(b.isdigit() for b in bounds) or len(bounds) > 2:
            return None
        words = [names[(int(b) - offset) % len(names)] if names else b for b in bounds]
        parts.append(" to ".join(words))
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def describe(cron: str) -> str:
    """A five-field cron in plain words: "0 8 * * 1-5" -> "at 08:00, Monday to Friday"."""
    fields = cron.split()
    if len(fields) != 5 or not croniter.is_valid(cron.strip()):
        return "not a cron expression"
    minute, hour, dom, month, dow = fields
    if minute.isdigit() and hour.isdigit():
        when = f"at {int(hour):02d}:{int(minute):02d}"
    elif minute.isdigit() and hour.startswith("*/") and hour[2:].isdigit():
        when = f"every {hour[2:]} hours at minute {int(minute)}"
    elif minute.isdigit() and hour == "*":
        when = f"every hour at minute {int(minute)}"
    elif minute.isdigit() and (hours := _list(hour)):
        when = f"at minute {int(minute)} past hour {hours}"
    else:
        when = f"at minute {minute} of hour {hour}"
    days = []
    if dow != "*":
        named = _list(dow.replace("7", "0"), _DAYS)
        days.append(f"on {named}" if named else f"on weekdays {dow}")
    if dom != "*":
        days.append(f"on day {_list(dom) or dom} of the month")
    if month != "*":
        days.append(f"in {_list(month, _MONTHS, 1) or month}")
    return f"{when}, " + (" ".join(days) if days else "every day")


def next_runs(cron: str, timezone: str, count: int = 3, after: datetime | None = None) -> list[datetime]:
    """The next `count` times the cron fires, as wall-clock times in `timezone` (DST included)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return []
    if not croniter.is_valid(cron.strip()):
        return []
    start = (after or datetime.now(zone)).astimezone(zone)
    it = croniter(cron.strip(), start)
    return [it.get_next(datetime) for _ in range(count)]


@dataclass
class ScheduleRow:
    """One row of the schedules form as the operator left it; `action` None means not chosen yet."""

    action: str | None
    cron: str
    timezone: str
    enabled: bool = True


def check_rows(rows: list[ScheduleRow]) -> tuple[list[dict[str, object]], list[str]]:
    """(schedules to send, problems). A row that is not finished is a problem, never silently dropped."""
    schedules: list[dict[str, object]] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        if row.action not in ACTIONS:
            problems.append(f"schedule {n}: choose an action (hibernate or wake)")
        if not row.cron.strip():
            problems.append(f"schedule {n}: choose when it runs (a preset or a cron)")
        else:
            problems += [f"schedule {n} {field}: {message}"
                         for field, message in validate_schedule(row.cron, row.timezone).items()]
        if row.action in seen:
            problems.append(f"schedule {n}: schedule {seen[row.action]} is already a {row.action} schedule;"
                            " an agent has at most one of each")
        elif row.action:
            seen[row.action] = n
        schedules.append({"action": row.action, "cron": row.cron.strip(), "timezone": row.timezone.strip(),
                          "enabled": row.enabled})
    return schedules, problems
