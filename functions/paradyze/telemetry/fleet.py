"""The fleet's state for the gauges, sampled at each health check: statuses, uptime, memory, CPU, last backup."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import db
from ..auth import SYSTEM
from .hooks import observe_fleet


def observe(rows: Iterable[Mapping[str, Any]], agents: Iterable[Mapping[str, Any]]) -> None:
    """Record what health.check found (rows: the agents' rows; agents: its per-agent report)."""
    with db.transaction(SYSTEM) as conn:
        newest = conn.execute("select max(created_at) as newest from public.backups").fetchone()
    observe_fleet(rows, agents, newest["newest"] if newest else None)


def pool_stats() -> dict[str, int] | None:
    """The database pool's statistics, once this process has opened it (never opens it itself)."""
    opened = db._pool  # noqa: SLF001 -- read only: opening the pool from an exporter thread would start the database
    return opened.get_stats() if opened is not None else None
