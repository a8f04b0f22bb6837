"""An in-memory stand-in for the function API, for client tests and page development without the emulator."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import flask

from tests.fakes.server import LocalApi

TOKEN = "fake-admin-token"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FakeApi:
    """The contract's shapes from memory; `fail_next[name] = (status, body, headers)` injects an error."""

    def __init__(self) -> None:
        self.agents: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.backups: list[dict[str, Any]] = []
        self.fail_next: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {}
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.app = flask.Flask("fake_api")
        self.app.add_url_rule("/<function>", view_func=self._dispatch, methods=["GET", "POST"])

    # -- plumbing --------------------------------------------------------------------------
    def _dispatch(self, function: str) -> Any:
        req = flask.request
        body = req.get_json(silent=True) if req.method == "POST" else None
        self.requests.append((function, dict(req.headers), body if body is not None else dict(req.args)))
        if req.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error(401, "unauthenticated", "missing or invalid token")
        if function in self.fail_next:
            status, payload, headers = self.fail_next.pop(function)
            return flask.Response(flask.json.dumps(payload), status, headers, mimetype="application/json")
        handler = getattr(self, f"do_{function}", None)
        if handler is None:
            return _error(404, "not_found", f"no function {function}")
        args = body if body is not None else req.args
        return handler(args)

    def _agent(self, agent_id: str | None) -> dict[str, Any]:
        if agent_id not in self.agents:
            flask.abort(_error(404, "not_found", "agent not found"))
        return self.agents[agent_id]

    def _move(self, agent: dict[str, Any], to: str, actor: str = "admin", reason: str | None = None) -> None:
        self.events.append(
            {
                "id": len(self.events) + 1,
                "agent_id": agent["id"],
                "at": _now(),
                "from_status": agent["status"],
                "to_status": to,
                "actor": actor,
                "reason": reason,
                "duration_ms": 5,
            }
        )
        agent["status"] = to
        agent["updated_at"] = _now()
        if to == "running":
            agent["started_at"] = _now()

    # -- functions -------------------------------------------------------------------------
    def do_create_agent(self, body: dict[str, Any]) -> Any:
        character = body.get("character")
        details = []
        if not isinstance(character, dict) or not str(character.get("name") or "").strip():
            details.append({"loc": ["character", "name"], "msg": "Field required", "type": "missing"})
        if isinstance(character, dict) and "bio" not in character:
            details.append({"loc": ["character", "bio"], "msg": "Field required", "type": "missing"})
        if details:
            return _error(422, "validation_failed", "invalid fields", details)
        agent_id = str(uuid.uuid4())
        policy = {"idle_timeout_minutes": 60, "auto_hibernate": True, "schedules": []}
        policy.update(body.get("policy") or {})
        agent = {
            "id": agent_id,
            "owner": "00000000-0000-0000-0000-000000000000",
            "name": character["name"],
            "status": "provisioning",
            "desired_state": "running",
            "status_reason": None,
            "url": "http://127.0.0.1:1",
            "runtime": body.get("runtime", "process"),
            "character_id": str(uuid.uuid4()),
            "character_version": 1,
            "restart_count": 0,
            "last_activity_at": None,
            "created_at": _now(),
            "updated_at": _now(),
            "started_at": None,
            "policy": policy,
        }
        self.agents[agent_id] = agent
        self.events.append(
            {
                "id": len(self.events) + 1,
                "agent_id": agent_id,
                "at": _now(),
                "from_status": None,
                "to_status": "provisioning",
                "actor": "admin",
                "reason": "created",
                "duration_ms": None,
            }
        )
        self._move(agent, "running")
        clean = copy.deepcopy(character)
        clean.get("settings", {}).pop("secrets", None)
        self.versions[agent_id] = [
            {"version": 1, "sha256": "0" * 64, "created_at": _now(), "character": clean}
        ]
        return {"agent": agent}, 201

    def do_get_agent(self, args: Any) -> Any:
        return {"agent": self._agent(args.get("agent_id"))}

    def do_list_agents(self, args: Any) -> Any:
        agents = [a for a in self.agents.values() if not args.get("status") or a["status"] == args["status"]]
        if q := (args.get("q") or "").lower():
            agents = [a for a in agents if _found(q, a)]
        return _page("agents", agents, args)

    def do_hibernate_agent(self, body: dict[str, Any]) -> Any:
        agent = self._agent(body.get("agent_id"))
        if agent["status"] != "running":
            return _error(409, "invalid_transition", f"cannot hibernate an agent that is {agent['status']}")
        self._move(agent, "hibernating")
        self._move(agent, "hibernated")
        agent["desired_state"] = "hibernated"
        return {"agent": agent}

    def do_wake_agent(self, body: dict[str, Any]) -> Any:
        agent = self._agent(body.get("agent_id"))
        if agent["status"] != "hibernated":
            return _error(409, "invalid_transition", f"cannot wake an agent that is {agent['status']}")
        self._move(agent, "waking")
        self._move(agent, "running")
        agent["desired_state"] = "running"
        return {"agent": agent}

    def do_delete_agent(self, body: dict[str, Any]) -> Any:
        agent = self._agent(body.get("agent_id"))
        self._move(agent, "deleting")
        return {"agent": self.agents.pop(agent["id"])}

    def do_send_message(self, body: dict[str, Any]) -> Any:
        agent = self._agent(body.get("agent_id"))
        woke = agent["status"] == "hibernated"
        if woke:
            self._move(agent, "waking", actor="message")
            self._move(agent, "running", actor="message")
        agent["last_activity_at"] = _now()
        return {"replies": [{"text": f"{agent['name']} heard: {body.get('text')}"}], "woke": woke}

    def do_character_versions(self, args: Any) -> Any:
        self._agent(args.get("agent_id"))
        return _page("versions", self.versions[args["agent_id"]], args)

    def do_update_character(self, body: dict[str, Any]) -> Any:
        agent = self._agent(body.get("agent_id"))
        versions = self.versions[agent["id"]]
        versions.append(
            {
                "version": len(versions) + 1,
                "sha256": "1" * 64,
                "created_at": _now(),
                "character": body["character"],
            }
        )
        agent["character_version"] = len(versions)
        return {"agent": agent}

    def do_agent_events(self, args: Any) -> Any:
        events = [e for e in self.events if not args.get("agent_id") or e["agent_id"] == args["agent_id"]]
        return _page("events", list(reversed(events)), args)

    def do_agent_logs(self, args: Any) -> Any:
        agent = self._agent(args.get("agent_id"))
        return {"lines": [f"[agent {agent['name']}] listening"]}

    def do_update_policy(self, body: dict[str, Any]) -> Any:
        agent = self._agent(body.get("agent_id"))
        for key in ("idle_timeout_minutes", "auto_hibernate", "schedules"):
            if key in body:
                agent["policy"][key] = body[key]
        return {"agent": agent}

    def do_backup_agents(self, body: dict[str, Any]) -> Any:
        backup = {
            "id": f"b{len(self.backups) + 1}",
            "location": "/tmp/fake",
            "characters": len(self.agents),
            "versions": sum(len(v) for v in self.versions.values()),
            "agents": len(self.agents),
            "sha256": "2" * 64,
            "size_bytes": 2048,
            "created_at": _now(),
        }
        self.backups.append(backup)
        return {"backup": backup}

    def do_list_backups(self, args: Any) -> Any:
        return _page("backups", list(reversed(self.backups)), args)

    def do_restore_backup(self, body: dict[str, Any]) -> Any:
        backup = next((b for b in self.backups if b["id"] == body.get("backup_id")), None)
        if backup is None:
            return _error(404, "not_found", "backup not found")
        return {
            "restore": {
                "backup_id": backup["id"],
                "characters": backup["characters"],
                "versions": backup["versions"],
                "agents": backup["agents"],
            }
        }

    def do_health_check(self, args: Any) -> Any:
        agents = [
            {
                "agent_id": a["id"],
                "name": a["name"],
                "status": a["status"],
                "desired_state": a["desired_state"],
                "runtime_state": "running" if a["status"] == "running" else "missing",
                "answering": a["status"] == "running",
                "restarts": 0,
                "memory_bytes": 30_000_000,
                "ok": True,
                "detail": "",
            }
            for a in self.agents.values()
        ]
        return {
            "status": "ok",
            "platform": {"database": {"ok": True}, "migrations": {"ok": True, "applied": 1, "pending": 0}},
            "agents": agents,
        }

    def do_agent_messages(self, args: Any) -> Any:
        self._agent(args.get("agent_id"))
        return {"agent_id": args["agent_id"], "messages": []}

    def do_hibernate_idle(self, body: dict[str, Any]) -> Any:
        return {"hibernated": [], "checked": len(self.agents)}


def _page(key: str, rows: list[dict[str, Any]], args: Any) -> Any:
    """One page as the functions answer it: `limit` rows (50 unless given, 422 past 200) after the
    cursor, here simply the offset reached so far, and `next_cursor` while rows remain."""
    limit, start = int(args.get("limit", 50)), int(args.get("cursor") or 0)
    if not 1 <= limit <= 200:
        return _error(422, "validation_failed", "invalid fields: limit",
                      [{"loc": ["limit"], "in": "query", "msg": "between 1 and 200"}])
    more = start + limit < len(rows)
    return {key: rows[start:start + limit], "next_cursor": str(start + limit) if more else None}


def _error(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> flask.Response:
    payload = {"error": {"code": code, "message": message, "details": details or []}}
    return flask.Response(flask.json.dumps(payload), status, mimetype="application/json")


class FakeServer(LocalApi):
    """Runs a FakeApi on 127.0.0.1 in a thread; `url` is its base URL."""

    def __init__(self) -> None:
        self.api = FakeApi()
        super().__init__()

    def _build_app(self) -> flask.Flask:
        return self.api.app

    @property
    def url(self) -> str:
        return self.endpoint


def _found(q: str, agent: dict[str, Any]) -> bool:
    """list_agents' q, as the real one reads it: every word of q begins a word of the name, or q is the id."""
    words, names = re.findall(r"[^\W_]+", q), re.findall(r"[^\W_]+", agent["name"].lower())
    return q.strip() == agent["id"] or bool(words) and all(any(n.startswith(w) for n in names) for w in words)
