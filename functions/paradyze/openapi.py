"""The OpenAPI 3.1 document for every function URL, built from the same pydantic models."""

from __future__ import annotations

import json
from typing import Any

import flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .agents import AgentCreate, AgentPublic, AgentRef, CharacterUpdate, MessageSend, PolicyUpdate
from .backup import BackupRef
from .settings import get_settings

# (function, method, auth, request model, summary, response key)
OPERATIONS: list[tuple[str, str, str, Any, str, str]] = [
    ("create_agent", "post", "user", AgentCreate, "Create an agent from a character file and start it", "agent"),
    ("get_agent", "get", "user", AgentRef, "One agent", "agent"),
    ("list_agents", "get", "user", None, "The caller's agents (every agent for the admin)", "agents"),
    ("hibernate_agent", "post", "user", AgentRef, "Stop the agent's compute, keep everything else", "agent"),
    ("wake_agent", "post", "user", AgentRef, "Start the agent again; answers once it is healthy", "agent"),
    ("delete_agent", "post", "user", AgentRef, "Stop the agent and remove its rows and files", "agent"),
    ("send_message", "post", "user", MessageSend, "Send a message; a hibernated agent is woken first", "replies"),
    ("update_character", "post", "user", CharacterUpdate, "Store a new character version", "agent"),
    ("character_versions", "get", "user", AgentRef, "Every version of the agent's character", "versions"),
    ("agent_events", "get", "user", None, "The agent's transitions, newest first", "events"),
    ("agent_logs", "get", "user", AgentRef, "Recent lines of the agent's log", "lines"),
    ("update_policy", "post", "user", PolicyUpdate, "Idle policy and hibernate/wake schedules", "agent"),
    ("backup_agents", "post", "admin", None, "Write one archive of every character version", "backup"),
    ("list_backups", "get", "admin", None, "Backups, newest first", "backups"),
    ("restore_backup", "post", "admin", BackupRef, "Restore what an archive has and the database lacks", "restore"),
    ("health_check", "get", "admin", None, "Platform and per-agent health; restarts crashed agents", "status"),
    ("hibernate_idle", "post", "admin", None, "Hibernate agents idle past their policy", "hibernated"),
    ("sync_schedules", "post", "admin", None, "Make the scheduler's jobs match the stored schedules", "sync"),
]

_ERRORS = {
    "400": "Malformed JSON", "401": "Missing or invalid token", "403": "Admin only", "404": "Missing or not yours",
    "409": "Invalid transition", "413": "Body over 1 MiB", "422": "Invalid fields",
    "502": "The agent got the message but failed to reply; sending it again would repeat it",
    "503": "A dependency is down; see Retry-After",
}


def document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [AgentCreate, AgentPublic, AgentRef, CharacterUpdate, MessageSend, PolicyUpdate,
                                     BackupRef]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}}}}},
    }
    paths: dict[str, Any] = {}
    for name, method, auth, model, summary, key in OPERATIONS:
        op: dict[str, Any] = {
            "operationId": name, "summary": summary, "tags": ["admin" if auth == "admin" else "agents"],
            "security": [{"bearer": []}],
            "responses": {"200" if name not in ("create_agent", "backup_agents") else "201": {
                "description": f"JSON object with `{key}`",
                "content": {"application/json": {"schema": _response_schema(key)}}}},
        }
        for status, text in _ERRORS.items():
            op["responses"][status] = {"description": text, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}
        if model is not None and method == "post":
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
        elif model is not None:
            op["parameters"] = [{"name": field, "in": "query", "required": info.is_required(),
                                 "schema": {"type": "string"}} for field, info in model.model_fields.items()]
        if name == "create_agent":
            op.setdefault("parameters", []).append({"name": "Idempotency-Key", "in": "header", "required": False,
                                                    "schema": {"type": "string", "maxLength": 200}})
        paths[f"/{name}"] = {method: op}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Paradyze functions", "version": "2.0.0",
                 "description": "Each path is one Cloud Function URL. Bearer JWTs as Supabase issues them."},
        "servers": [{"url": get_settings().public_url}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _response_schema(key: str) -> dict[str, Any]:
    if key == "agent":
        return {"type": "object", "properties": {"agent": {"$ref": "#/components/schemas/AgentPublic"}}}
    if key == "agents":
        return {"type": "object", "properties": {"agents": {
            "type": "array", "items": {"$ref": "#/components/schemas/AgentPublic"}}}}
    return {"type": "object", "properties": {key: {}}}


def response(request: flask.Request) -> flask.Response:
    resp = flask.Response(json.dumps(document(), default=str), mimetype="application/json")
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp
