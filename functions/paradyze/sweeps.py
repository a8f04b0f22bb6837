"""Scheduled sweeps: hibernate idle agents, and finish operations stuck in a transitional state."""

from __future__ import annotations

import concurrent.futures
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from . import agent_client, db, experiments, lifecycle, reconcile, release_store, repository, telemetry
from .auth import Caller
from .errors import ParadyzeError

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=5)


@telemetry.sweep("idle")
def hibernate_idle(caller: Caller, *, batch: int = 200, budget_s: float = 50.0, workers: int = 8) -> dict[str, Any]:
    """Hibernate running agents idle past their policy: one indexed query per batch, bounded in time.

    Safe to run twice at once: each hibernate holds the agent's lock and is idempotent.
    """
    began = time.monotonic()
    hibernated: list[str] = []
    failed: list[str] = []
    active: list[str] = []  # idle by our count, but the agent reports activity of its own
    checked = 0
    seen: set[str] = set()
    while time.monotonic() - began < budget_s:
        with db.transaction(caller) as conn:
            rows = repository.idle_agents(conn, datetime.now(UTC), batch, exclude=sorted(seen))
        if not rows:
            break
        checked += len(rows)
        seen.update(str(r["id"]) for r in rows)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_hibernate_one, caller, r): str(r["id"]) for r in rows}
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                if outcome == "hibernated":
                    hibernated.append(futures[future])
                elif outcome == "failed":
                    failed.append(futures[future])
                else:
                    active.append(futures[future])
    return {"hibernated": sorted(hibernated), "failed": sorted(failed), "active": sorted(active), "checked": checked,
            "elapsed_ms": int((time.monotonic() - began) * 1000),
            "complete": time.monotonic() - began < budget_s}


def _hibernate_one(caller: Caller, row: dict[str, Any]) -> str:
    agent_id = str(row["id"])
    cutoff = datetime.now(UTC) - timedelta(minutes=row["idle_timeout_minutes"])
    # Messages may reach an agent without us (its own Twitter or Discord client): its last memory counts.
    beat = agent_client.get_client().last_activity(row["url"], agent_id) if row["url"] else None
    if beat is not None and beat > cutoff:
        with db.transaction(caller) as conn:
            repository.record_activity(conn, agent_id, beat)
        return "active"
    try:
        after = lifecycle.hibernate(caller, agent_id, reason="idle past its policy", idle_since=cutoff)
        return "hibernated" if after.status == "hibernated" else "active"
    except ParadyzeError as exc:
        log.warning("idle hibernate of %s failed: %s", agent_id, exc.message)
        return "failed"


@telemetry.sweep("stuck")
def finish_stuck(caller: Caller, *, older_than: timedelta = STUCK_AFTER) -> list[str]:
    """Roll forward or back every agent whose transition began longer ago than older_than."""
    with db.transaction(caller) as conn:
        rows = repository.stuck_agents(conn, datetime.now(UTC) - older_than)
    for row in rows:
        try:
            reconcile.reconcile_one(row.id, actor="sweep")
        except ParadyzeError as exc:
            log.warning("sweep of %s failed: %s", row.id, exc.message)
    release_store.finish_due(actor="sweep", stuck_after=older_than)  # blue past its grace period, stuck releases
    experiments.clean_up_abandoned(caller)  # test agents of experiments whose request died
    return [r.id for r in rows]
