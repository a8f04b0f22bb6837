"""Health: the platform's own checks, and every agent's expected against actual state."""

from __future__ import annotations

import concurrent.futures
from typing import Any

from . import agent_client, db, reconcile, repository, telemetry
from .agents import Agent
from .auth import SYSTEM
from .errors import DatabaseUnavailable, ParadyzeError, Unavailable
from .runtimes import get_runtime
from .telemetry import fleet as telemetry_fleet


@telemetry.sweep("health")
def check(*, repair: bool = True) -> dict[str, Any]:
    """Report platform and agent health; with repair, then restart agents that should run and don't.

    The agents' report shows what was found before any repair; `repairs` says what was done.
    Agents that are not as they should be make the report "degraded"; the platform itself not
    working (no database, migrations pending) raises Unavailable, answered 503 with Retry-After,
    so a load balancer or uptime check sees it.
    """
    platform: dict[str, Any] = {}
    try:
        with db.transaction(SYSTEM) as conn:
            conn.execute("select 1")
            platform["database"] = {"ok": True}
            rows = repository.list_agents(conn, limit=1_000_000)
        platform["migrations"] = db.migration_status()
    except DatabaseUnavailable as exc:
        raise DatabaseUnavailable(f"the platform is unhealthy: {exc.message}",
                                  details=[{"loc": ["platform", "database"], "msg": exc.message}]) from exc
    if not platform["migrations"]["ok"]:
        pending = ", ".join(platform["migrations"]["pending"])
        raise Unavailable(f"the platform is unhealthy: migrations pending ({pending})",
                          details=[{"loc": ["platform", "migrations"], "msg": f"pending: {pending}"}])
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        agents = list(pool.map(_agent_health, rows))
    telemetry_fleet.observe([r.model_dump() for r in rows], agents)
    report: dict[str, Any] = {"platform": platform, "agents": agents}
    # Agents in error wait for a person (or a wake); only the others are worth a reconcile pass.
    if repair and any(not a["ok"] and a["status"] != "error" for a in agents):
        done = reconcile.reconcile_all(actor="health_check")
        report["repairs"] = {"restarted": done.restarted, "adopted": done.adopted, "errored": done.errored,
                             "removed_orphans": done.removed_orphans}
    healthy = all(a["ok"] for a in agents)
    report["status"] = "ok" if healthy else "degraded"
    return report


def _agent_health(agent: Agent) -> dict[str, Any]:
    item: dict[str, Any] = {
        "agent_id": agent.id, "name": agent.name, "owner": agent.user_id, "runtime": agent.runtime,
        "status": agent.status, "desired_state": agent.desired_state, "restarts": agent.restart_count,
        "messages": agent.message_count, "runtime_state": None, "answering": False, "memory_bytes": None,
        "detail": agent.status_reason or "",
    }
    if agent.runtime_handle:
        try:
            status = get_runtime(agent.runtime).status(agent.runtime_handle)
            item.update(runtime_state=status.state, memory_bytes=status.memory_bytes,
                        detail=status.detail or item["detail"], cpu_seconds=status.cpu_seconds)
        except ParadyzeError as exc:
            item.update(runtime_state="unknown", detail=exc.message)
    else:
        item["runtime_state"] = "stopped"
    if agent.url:
        item["answering"] = agent_client.get_client().is_healthy(agent.url, agent.id, timeout=2.0)
    if agent.status == "error":
        item["ok"] = False
    elif agent.desired_state == "running":
        item["ok"] = item["answering"]
    else:
        item["ok"] = not item["answering"]
    return item
