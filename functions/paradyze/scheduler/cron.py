"""Hibernate/wake schedules: validation and DST-correct cron evaluation (jobs.py: the jobs they become).

Cron expressions are evaluated on the wall clock of an IANA time zone, the way Cloud Scheduler
evaluates them. Daylight saving time makes the wall clock jump, so two rules fix what happens:

* a wall-clock time that does not exist (spring forward, e.g. 02:30 on 2026-03-08 in
  America/New_York) fires once, at the first valid instant after the gap (03:00 EDT); several
  such times in one gap collapse into that one firing;
* a wall-clock time that happens twice (fall back, e.g. 01:30 on 2026-11-01) fires once, at its
  first occurrence (01:30 EDT); the repeated hour does not fire again.

Google documents only that jobs in those windows "may observe execution anomalies" and advises UTC;
the local scheduler follows the rules above so that nothing is skipped and nothing runs twice.

What users may ask for is narrower than what the platform runs itself: their schedules fire at
least MIN_INTERVAL_MINUTES apart, name a time zone by its IANA name, and an agent has at most one
schedule per action.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterError, croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

Action = Literal["hibernate", "wake"]

# One token of a standard 5-field cron field: *, a number or a 3-letter name, an optional range,
# an optional step. Quartz/croniter extensions (L, W, #, ?, H, seconds) are refused because Cloud
# Scheduler would reject or misread them.
_TOKEN = r"(?:\*|\d{1,2}|[A-Za-z]{3})(?:-(?:\d{1,2}|[A-Za-z]{3}))?(?:/\d{1,2})?"
_FIELD = re.compile(rf"^{_TOKEN}(?:,{_TOKEN})*$")
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_NAMES_ALLOWED = {3, 4}  # only month and day-of-week fields take JAN.. / SUN..
_NAME_RE = re.compile(r"[A-Za-z]{3}")

# A user's schedule wakes or hibernates an agent, which starts or stops a process or a container:
# more often than this is load, not a schedule.
MIN_INTERVAL_MINUTES = 15
# Entries of the tz database that are not places: POSIX defaults, the host's own zone, a placeholder.
_NOT_ZONES = frozenset({"posixrules", "localtime", "Factory"})


def check_cron(cron: str) -> str:
    """The normalised expression (single spaces); raises ValueError saying what is wrong."""
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(f"cron must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    for index, (value, name) in enumerate(zip(fields, _FIELD_NAMES, strict=True)):
        if not _FIELD.match(value) or (index not in _NAMES_ALLOWED and _NAME_RE.search(value)):
            raise ValueError(f"cron {name} field {value!r} is not valid")
    normalised = " ".join(fields)
    try:
        # Proves the ranges and names and that the expression fires at all (e.g. not "0 0 30 2 *").
        croniter(normalised, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValueError(f"cron {normalised!r} is not valid: {exc}") from None
    return normalised


def check_timezone(name: str) -> str:
    """The IANA zone name unchanged; raises ValueError when zoneinfo does not know it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


def shortest_gap_minutes(cron: str) -> tuple[int, str, str]:
    """The shortest wall-clock gap between two fires of a valid cron, and the two times it lies between.

    Every day is taken to fire, so "0,59 0,23 * * 1" counts as one minute apart (23:59, then 00:00)
    although Tuesday does not fire: the rule errs on the side of refusing.
    """
    minutes, hours = croniter.expand(cron)[0][:2]
    times = sorted(h * 60 + m for h in (range(24) if hours == ["*"] else hours)
                   for m in (range(60) if minutes == ["*"] else minutes))
    pairs = [*zip(times, times[1:], strict=False), (times[-1], times[0] + 24 * 60)]
    first, second = min(pairs, key=lambda pair: pair[1] - pair[0])

    def clock(minute: int) -> str:
        return f"{minute // 60 % 24:02d}:{minute % 60:02d}"

    return second - first, clock(first), clock(second)


def check_user_cron(cron: str) -> str:
    """A valid cron (normalised) that fires at least MIN_INTERVAL_MINUTES apart; raises ValueError."""
    normalised = check_cron(cron)
    gap, first, second = shortest_gap_minutes(normalised)
    if gap < MIN_INTERVAL_MINUTES:
        raise ValueError(f"cron {normalised!r} fires {gap} minute{'s' if gap != 1 else ''} apart ({first} and"
                         f" {second}); schedules must fire at least {MIN_INTERVAL_MINUTES} minutes apart")
    return normalised


@functools.cache
def _iana_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def check_iana_timezone(name: str) -> str:
    """The name unchanged when it is an IANA time zone (Area/Location, or UTC); raises ValueError."""
    if name not in _iana_zones():
        raise ValueError(f"{name!r} is not an IANA time zone name; use one such as 'Europe/Berlin',"
                         " 'America/New_York' or 'UTC'")
    return check_timezone(name)


def _checked(kind: str, check: Callable[[str], str], value: str) -> str:
    """check(value), its ValueError turned into a pydantic error of this kind with the same reason."""
    try:
        return check(value)
    except ValueError as exc:
        raise PydanticCustomError(kind, "{reason}", {"reason": str(exc)}) from None


class Schedule(BaseModel):
    """One schedule as stored: a cron Cloud Scheduler accepts and a zone zoneinfo knows."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    action: Action
    cron: str
    timezone: str = "UTC"
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _checked("cron", check_cron, value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return _checked("timezone", check_timezone, value)


class ScheduleIn(Schedule):
    """One schedule as a user sends it; stored fields (id, next_run_at) are ignored if echoed back.

    Beyond a stored schedule: it fires at least MIN_INTERVAL_MINUTES apart, and its zone is an
    IANA name, not a file of the tz database that is no zone (posixrules, localtime, Factory).
    """

    @field_validator("cron")
    @classmethod
    def _often(cls, value: str) -> str:
        return _checked("cron", check_user_cron, value)

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        return _checked("timezone", check_iana_timezone, value)


def _one_per_action(schedules: list[ScheduleIn]) -> list[ScheduleIn]:
    # One Cloud Scheduler job per agent and action, so a second schedule would have no job name.
    first: dict[str, int] = {}
    for index, schedule in enumerate(schedules):
        if schedule.action in first:
            raise PydanticCustomError(
                "duplicate_action",
                "schedules {first} and {second} are both {action} schedules; an agent has at most one"
                " schedule per action (one cron expression can list several times)",
                {"first": first[schedule.action], "second": index, "action": schedule.action},
            )
        first[schedule.action] = index
    return schedules


# At most one schedule per action, so this many in all; the bound is checked before any item is.
MAX_SCHEDULES = len(get_args(Action))

# The type of a "schedules" field: the count, each item, and the one-per-action rule.
ScheduleList = Annotated[list[ScheduleIn], Field(max_length=MAX_SCHEDULES), AfterValidator(_one_per_action)]


def _local_naive(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a naive wall-clock time fires at, per the DST rules in the module docstring."""
    first = wall.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if _local_naive(utc, zone) == wall:
        return utc  # exists; fold=0 is the first occurrence when the time is repeated
    # In a gap. fold=1 reads the time with the offset after the jump (the earlier instant),
    # fold=0 with the offset before (the later one); the jump lies between them, on a whole
    # second, so a binary search over epoch seconds finds it.
    after_offset = wall.replace(tzinfo=zone, fold=1).utcoffset()
    lo = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    hi = int(utc.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _fires(cron: str, zone: ZoneInfo, after_utc: datetime) -> Iterator[datetime]:
    """Successive fire instants strictly after after_utc, each later than the one before."""
    # Any wall time not after the local reading of `after` resolves to an instant not after it
    # (resolution is monotonic), so iterating from there misses nothing.
    walls = croniter(cron, _local_naive(after_utc, zone))
    previous = after_utc
    while True:
        try:
            wall = walls.get_next(datetime)
        except CroniterError as exc:
            raise ValueError(f"cron {cron!r} never fires: {exc}") from None
        instant = _resolve(wall, zone)
        if instant > previous:  # equal instants: several gap times collapsed into one firing
            previous = instant
            yield instant


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first instant strictly after `after` at which the schedule fires, as aware UTC.

    Raises ValueError for a naive `after` or an expression that never fires.
    """
    _require_aware(after, "after")
    return next(_fires(cron, ZoneInfo(timezone), after.astimezone(UTC)))


def last_due(cron: str, timezone: str, last_fired: datetime | None, now: datetime) -> datetime | None:
    """The latest fire instant in (last_fired, now], or None when nothing is due.

    Missed instants collapse into the latest one (a scheduler that was asleep runs a job once,
    not once per missed period). Without last_fired, only an instant within the minute ending
    at `now` counts, as classic cron checks "does the expression match this minute".
    """
    _require_aware(now, "now")
    if last_fired is None:
        since = now - timedelta(minutes=1)
    else:
        _require_aware(last_fired, "last_fired")
        since = last_fired
    now_utc = now.astimezone(UTC)
    found: datetime | None = None
    for instant in _fires(cron, ZoneInfo(timezone), since.astimezone(UTC)):
        if instant > now_utc:
            return found
        found = instant
    return found  # unreachable: _fires is endless or raises


def due(cron: str, timezone: str, last_fired: datetime | None, now: datetime) -> bool:
    """Whether the schedule fires in (last_fired, now]; see last_due for last_fired=None."""
    return last_due(cron, timezone, last_fired, now) is not None
