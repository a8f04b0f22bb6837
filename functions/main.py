"""Paradyze's functions: one thin functions-framework HTTP entry point per operation."""

from __future__ import annotations

import sys
from pathlib import Path

import flask
import functions_framework

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the paradyze package ships beside main.py

from paradyze import backup, health, lifecycle, messaging, openapi, schedules_service, sweeps  # noqa: E402
from paradyze.agents import (  # noqa: E402
    AgentCreate,
    AgentQuery,
    AgentRef,
    CharacterUpdate,
    EventsQuery,
    LogsQuery,
    MessageSend,
    PolicyUpdate,
)
from paradyze.auth import Caller  # noqa: E402
from paradyze.backup import BackupRef  # noqa: E402
from paradyze.http import body, endpoint, query  # noqa: E402
from paradyze.logs import configure_logging  # noqa: E402

configure_logging()


@functions_framework.http
@endpoint(auth="user", methods=("POST",))
def create_agent(request: flask.Request, caller: Caller) -> tuple[dict, int]:
    cmd = body(request, AgentCreate)
    agent, created = lifecycle.create(caller, cmd, request.headers.get("Idempotency-Key"))
    return {"agent": agent, "created": created}, 201 if created else 200


@functions_framework.http
@endpoint(auth="user", methods=("GET",))
def get_agent(request: flask.Request, caller: Caller) -> dict:
    return {"agent": lifecycle.get(caller, query(request, AgentRef).agent_id)}


@functions_framework.http
@endpoint(auth="user", methods=("GET",))
def list_agents(request: flask.Request, caller: Caller) -> dict:
    q = query(request, AgentQuery)
    return {"agents": lifecycle.list_all(caller, status=q.status, q=q.q, limit=q.limit)}


@functions_framework.http
@endpoint(auth="user", methods=("POST",))
def hibernate_agent(request: flask.Request, caller: Caller) -> dict:
    return {"agent": lifecycle.hibernate(caller, body(request, AgentRef).agent_id)}


@functions_framework.http
@endpoint(auth="user", methods=("POST",))
def wake_agent(request: flask.Request, caller: Caller) -> dict:
    return {"agent": lifecycle.wake(caller, body(request, AgentRef).agent_id)}


@functions_framework.http
@endpoint(auth="user", methods=("POST",))
def delete_agent(request: flask.Request, caller: Caller) -> dict:
    return {"agent": lifecycle.delete(caller, body(request, AgentRef).agent_id)}


@functions_framework.http
@endpoint(auth="user", methods=("POST",))
def send_message(request: flask.Request, caller: Caller) -> dict:
    return messaging.send(caller, body(request, MessageSend))


@functions_framework.http
@endpoint(auth="user", methods=("POST",))
def update_character(request: flask.Request, caller: Caller) -> dict:
    return {"agent": lifecycle.update_character(caller, body(request, CharacterUpdate))}


@functions_framework.http
@endpoint(auth="user", methods=("GET",))
def character_versions(request: flask.Request, caller: Caller) -> dict:
    return {"versions": lifecycle.versions(caller, query(request, AgentRef).agent_id)}


@functions_framework.http
@endpoint(auth="user", methods=("GET",))
def agent_events(request: flask.Request, caller: Caller) -> dict:
    q = query(request, EventsQuery)
    return {"events": lifecycle.events(caller, q.agent_id, q.limit)}


@functions_framework.http
@endpoint(auth="user", methods=("GET",))
def agent_logs(request: flask.Request, caller: Caller) -> dict:
    q = query(request, LogsQuery)
    return {"lines": lifecycle.logs(caller, q.agent_id, q.tail)}


@functions_framework.http
@endpoint(auth="user", methods=("POST",))
def update_policy(request: flask.Request, caller: Caller) -> dict:
    return {"agent": schedules_service.update_policy(caller, body(request, PolicyUpdate))}


@functions_framework.http
@endpoint(auth="admin", methods=("POST",))
def backup_agents(request: flask.Request, caller: Caller) -> tuple[dict, int]:
    return {"backup": backup.backup(caller)}, 201


@functions_framework.http
@endpoint(auth="admin", methods=("GET",))
def list_backups(request: flask.Request, caller: Caller) -> dict:
    return {"backups": backup.list_backups(caller)}


@functions_framework.http
@endpoint(auth="admin", methods=("POST",))
def restore_backup(request: flask.Request, caller: Caller) -> dict:
    return {"restore": backup.restore(caller, body(request, BackupRef).backup_id)}


@functions_framework.http
@endpoint(auth="admin", methods=("GET", "POST"))
def health_check(request: flask.Request, caller: Caller) -> dict:
    return health.check(repair=request.args.get("repair", "true") != "false")


@functions_framework.http
@endpoint(auth="admin", methods=("POST",))
def hibernate_idle(request: flask.Request, caller: Caller) -> dict:
    result = sweeps.hibernate_idle(caller)
    result["stuck_finished"] = sweeps.finish_stuck(caller)
    return result


@functions_framework.http
@endpoint(auth="admin", methods=("POST",))
def sync_schedules(request: flask.Request, caller: Caller) -> dict:
    return {"sync": schedules_service.sync_everything()}


@functions_framework.http
def openapi_spec(request: flask.Request) -> flask.Response:
    return openapi.response(request)
