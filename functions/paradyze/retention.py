"""Retention: events kept by age and by count per agent, backups kept by count; applied by the sweep.

Character versions are never pruned: they are each character's history, and backups hold them.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import backup, db
from . import retention_repository as repo
from .auth import Caller
from .errors import ParadyzeError
from .settings import get_settings

log = logging.getLogger(__name__)

# Only agents with an event this recent can have gone past their count since the last sweep (every
# 5 minutes); a day covers sweeps that failed for hours.
_RECENT = timedelta(days=1)
_AGENTS_PER_BATCH = 200


def prune(caller: Caller, *, now: datetime | None = None, batch: int = 5000, budget_s: float = 20.0) -> dict[str, Any]:
    """Apply the retention policy once: events by age, then by count per agent, then expired backups.

    Each batch is its own short transaction, oldest rows first, so a sweep that runs out of its time
    budget leaves no gap: the next sweep goes on. `now` is the clock (tests inject one).
    """
    settings = get_settings()
    now = now or datetime.now(UTC)
    deadline = time.monotonic() + budget_s
    by_age = _prune_events_by_age(caller, now - timedelta(days=settings.event_keep_days), batch, deadline)
    by_count = _prune_events_by_count(caller, now - _RECENT, settings.event_keep_per_agent, batch, deadline)
    backups = _prune_backups(caller, now - timedelta(days=settings.backup_min_age_days), settings.backup_keep)
    return {"events_by_age": by_age, "events_by_count": by_count, "backups": backups,
            "complete": time.monotonic() < deadline}


def _prune_events_by_age(caller: Caller, cutoff: datetime, batch: int, deadline: float) -> int:
    pruned = 0
    while time.monotonic() < deadline:
        with db.transaction(caller) as conn, db.as_service_role(conn):
            repo.allow_event_pruning(conn)
            deleted = repo.delete_events_before(conn, cutoff, batch)
        pruned += deleted
        if deleted < batch:
            break
    return pruned


def _prune_events_by_count(caller: Caller, since: datetime, keep: int, batch: int, deadline: float) -> int:
    with db.transaction(caller) as conn:
        agents = repo.agents_with_events_since(conn, since)
    pruned = 0
    for start in range(0, len(agents), _AGENTS_PER_BATCH):
        group = agents[start:start + _AGENTS_PER_BATCH]
        while time.monotonic() < deadline:
            with db.transaction(caller) as conn, db.as_service_role(conn):
                repo.allow_event_pruning(conn)
                deleted = repo.delete_events_past_count(conn, group, keep, batch)
            pruned += deleted
            if deleted < batch:
                break
    return pruned


def _prune_backups(caller: Caller, older_than: datetime, keep: int) -> list[str]:
    """Each expired backup's row and archive go together: the row is deleted in a transaction that
    commits only once the archive is gone, so a storage outage leaves both for the next sweep."""
    with db.transaction(caller) as conn:
        expired = repo.expired_backups(conn, keep, older_than)
    removed = []
    for row in expired:
        try:
            with db.transaction(caller) as conn, db.as_service_role(conn):
                if repo.delete_backup(conn, str(row["id"])):
                    backup.remove_archive(row["location"])
        except ParadyzeError as exc:
            log.warning("backup %s kept for now: %s", row["id"], exc.message)
            continue
        removed.append(str(row["id"]))
    return removed
