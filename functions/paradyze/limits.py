"""Per-user limits: agent quotas, requests in flight and call rates, kept in Postgres for every instance.

Cloud Run runs as many instances of each function as the load asks for, so a counter in one
instance's memory would let a user multiply every limit by the number of instances. The counters
live in the platform's own tables instead (limits_repository), which only the service role can see.
The platform itself (the admin token, the scheduler, sweeps) is never limited; the agents the admin
creates for a user count against that user's quota.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from . import db
from . import limits_repository as repo
from .agents import Agent
from .caller import PLATFORM_OWNER, Caller
from .db import Conn
from .errors import DatabaseUnavailable, QuotaExceeded, RateLimited, TooManyInFlight
from .settings import get_settings

log = logging.getLogger(__name__)

Action = Literal["create_agent", "send_message"]

# How long an operation's slot is held if its instance dies before giving it back; longer than
# any one request runs (a wake-on-message waits 300 s at most).
_LEASE = timedelta(minutes=15)
# When a request is refused for having too many in flight: others finish within seconds.
_IN_FLIGHT_RETRY_S = 2


def check_rate(caller: Caller, action: Action) -> None:
    """Count one call of action by the calling user. Raises RateLimited (with retry_after)."""
    if caller.user_id is None:
        return
    limit, period = _rate(action)
    with db.autocommit() as conn:
        wait = repo.take_rate_slot(conn, caller.user_id, action, limit, timedelta(seconds=period))
    if wait is not None:
        raise _rate_limited(action, limit, period, wait)


@dataclass
class Slot:
    """One of a user's request slots, held until given back (id None: nothing to give back)."""

    id: str | None = None


def admit(conn: Conn, caller: Caller, action: Action | None = None, *, then_as_caller: bool = False) -> Slot:
    """As the platform (in a SYSTEM transaction, or db.autocommit: admission is one statement): take one
    of the calling user's request slots and, for action, count one call against its rate. Give the
    slot back with give_back, in the transaction that ends the work (or give_back_alone). Raises
    TooManyInFlight, RateLimited (nothing taken then). then_as_caller: the rest of the transaction runs
    as the caller (db.act_as), set by the same statement.
    """
    if caller.user_id is None:
        if then_as_caller:
            db.act_as(conn, caller)
        return Slot()
    settings = get_settings()
    rate = None
    if action is not None:
        limit, period = _rate(action)
        rate = (action, limit, timedelta(seconds=period))
    admission = repo.begin_operation(conn, caller.user_id, concurrency=settings.user_concurrency, lease=_LEASE,
                                     rate=rate, then_as=db.as_caller_params(caller) if then_as_caller else None)
    if admission.operation_id is not None:
        return Slot(admission.operation_id)
    if admission.rate_wait is not None and rate is not None:
        raise _rate_limited(rate[0], rate[1], rate[2].total_seconds(), admission.rate_wait)
    limit = settings.user_concurrency
    raise TooManyInFlight(
        f"too many requests at once: {admission.in_flight} of yours are being served and the limit is {limit};"
        f" try again in {_IN_FLIGHT_RETRY_S} s",
        retry_after=_IN_FLIGHT_RETRY_S,
        details=[{"loc": ["user"], "msg": f"at most {limit} requests in flight", "limit": limit,
                  "in_flight": admission.in_flight}],
    )


def give_back(conn: Conn, slot: Slot) -> None:
    """As the platform, in the transaction that ends the work (free the slot when it commits), or as a
    statement alone on a connection outside any transaction."""
    if slot.id is not None:
        repo.end_operation(conn, slot.id)


def give_back_alone(slot: Slot) -> None:
    """Free the slot in a statement of its own; if the database is away, its lease frees it later."""
    if slot.id is None:
        return
    try:
        with db.autocommit() as conn:
            repo.end_operation(conn, slot.id)
        slot.id = None
    except DatabaseUnavailable:
        # The answer still goes out; the slot frees itself when its lease runs out.
        log.warning("could not release request slot %s; it expires on its own", slot.id)


@contextlib.contextmanager
def in_flight(caller: Caller) -> Iterator[None]:
    """Hold one of the calling user's request slots while the block runs. Raises TooManyInFlight."""
    if caller.user_id is None:
        yield
        return
    with db.autocommit() as conn:  # admission is one statement
        slot = admit(conn, caller)
    try:
        yield
    finally:
        give_back_alone(slot)


def _rate(action: Action) -> tuple[int, float]:
    settings = get_settings()
    return {
        "create_agent": (settings.create_agent_rate, settings.create_agent_rate_period),
        "send_message": (settings.send_message_rate, settings.send_message_rate_period),
    }[action]


def _rate_limited(action: str, limit: int, period: float, wait: float) -> RateLimited:
    retry_after = max(1, math.ceil(wait))
    return RateLimited(
        f"too many {action} calls: the limit is {limit} per {period:g} seconds for each user;"
        f" try again in {retry_after} s",
        retry_after=retry_after,
        details=[{"loc": ["function"], "msg": f"{action}: at most {limit} per {period:g} s",
                  "limit": limit, "period_s": period}],
    )


def reserve_new_agent(conn: Conn, user_id: str) -> None:
    """In the transaction that inserts the agent: refuse it when the owner is at a quota.

    The owner's lock is held until that transaction ends, so two creates cannot both take the
    last slot. Raises QuotaExceeded.
    """
    if user_id == PLATFORM_OWNER:
        return
    settings = get_settings()
    repo.lock_user(conn, user_id)
    counts = repo.agent_counts(conn, user_id)
    if counts.total >= settings.agent_quota_total:
        raise _quota("agents", settings.agent_quota_total, counts.total,
                     "delete one before creating another")
    if counts.running >= settings.agent_quota_running:
        raise _quota("running agents", settings.agent_quota_running, counts.running,
                     "hibernate or delete one before creating another")


def reserve_running_slot(conn: Conn, agent: Agent) -> None:
    """In the transaction that marks the agent waking: refuse it when its owner runs the quota already.

    Raises QuotaExceeded.
    """
    if agent.user_id == PLATFORM_OWNER:
        return
    limit = get_settings().agent_quota_running
    repo.lock_user(conn, agent.user_id)
    running = repo.agent_counts(conn, agent.user_id, excluding=agent.id).running
    if running >= limit:
        raise _quota("running agents", limit, running, f"hibernate one before waking agent {agent.id}")


def _quota(what: str, limit: int, current: int, remedy: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"agent quota reached: you have {current} of at most {limit} {what}; {remedy}",
        details=[{"loc": ["agents"], "msg": f"at most {limit} {what} per user", "limit": limit,
                  "current": current}],
    )
