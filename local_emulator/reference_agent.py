"""A stdlib-only stand-in for an ElizaOS server: one agent, answering from its character file."""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from collections import deque
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Run as a script (locally, and in the image as /app/reference_agent.py) this file's folder is on
# sys.path and there is no package; imported as local_emulator.reference_agent it is a package module.
if __package__:
    from .reference_persona import Agent, Persona, is_uuid, iso, log, utc_now
else:
    from reference_persona import Agent, Persona, is_uuid, iso, log, utc_now

VERSION = "paradyze-reference-1.0"
MAX_BODY = 1 << 20
MAX_CONTENT = 4000  # the Sessions API's documented limit
MESSAGE_SERVER = "00000000-0000-0000-0000-000000000000"  # ElizaOS's default message server
# Served without the key, as ElizaOS serves them: everything else needs X-API-KEY when a key is set.
PUBLIC_PATHS = ("/health", "/healthz")


def _healthy() -> dict[str, Any]:
    """What ElizaOS's health routes both answer."""
    return {"status": "OK", "version": VERSION, "timestamp": iso(utc_now()), "dependencies": {"agents": "healthy"}}


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = (
            status,
            code,
            message,
            details,
        )


class Memories:
    """Every message the agent heard or said, listed newest first as ElizaOS's memory routes do."""

    def __init__(self, limit: int = 1000) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def add(self, agent_id: str, entity_id: str, room_id: str, text: str) -> None:
        memory = {
            "id": str(uuid.uuid4()),
            "type": "messages",
            "createdAt": int(time.time() * 1000),
            "content": {"text": text},
            "entityId": entity_id,
            "agentId": agent_id,
            "roomId": room_id,
        }
        with self._lock:
            self._items.append(memory)

    def newest_first(self, room_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._items)
        return [m for m in reversed(items) if room_id is None or m["roomId"] == room_id]


class Handler(BaseHTTPRequestHandler):
    agent: Agent  # set on the subclass made in serve()
    memories: Memories  # likewise
    api_key = ""  # ELIZA_SERVER_AUTH_TOKEN: when set, required as X-API-KEY
    _raw = b""
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes on a kept-alive connection: without TCP_NODELAY the body
    # waits for the client's delayed ACK (about 40 ms a response).
    disable_nagle_algorithm = True
    server_version = "ParadyzeReferenceAgent/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        status = 500
        try:
            self._raw = self._read_body()
            if not self._authorized(method, path):
                # ElizaOS's own 401 body (its api-key middleware)
                status = self._send(
                    401,
                    {"error": "API key required", "message": "Missing or invalid X-API-KEY header"},
                )
                return
            status = self._route(method, path)
        except HttpError as err:
            status = err.status
            self.close_connection = status == 413  # its body was left unread
            self._send(
                status,
                {
                    "success": False,
                    "error": {
                        "code": err.code,
                        "message": err.message,
                        "details": err.details,
                    },
                },
            )
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 and stays up
            log(f"error {type(exc).__name__}: {exc}")
            self._send(
                500,
                {
                    "success": False,
                    "error": {"code": "INTERNAL", "message": "internal error"},
                },
            )
        finally:
            # The platform's X-Request-Id, so one request can be followed into the agent's own log.
            rid = (self.headers.get("X-Request-Id") or "-")[:64]
            log(f"{method} {path} {status} {(time.monotonic() - started) * 1000:.1f}ms request_id={rid}")

    def _authorized(self, method: str, path: str) -> bool:
        if not self.api_key or method == "OPTIONS" or path in PUBLIC_PATHS:
            return True
        given = self.headers.get("X-API-KEY") or ""
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def _route(self, method: str, path: str) -> int:
        a, p = self.agent, self.agent.persona
        parts = [urllib.parse.unquote(part) for part in path.split("/") if part]
        if method == "OPTIONS":
            return self._send(204, None)
        if method == "GET" and path == "/healthz":
            return self._send(200, {"status": "ok", "timestamp": iso(utc_now())})
        if method == "GET" and path == "/health":
            return self._send(200, {**_healthy(), "agentCount": 1})
        if method == "GET" and path == "/api/server/health":
            return self._send(
                200,
                {
                    **_healthy(),
                    "agentId": p.id,
                    "agentName": p.name,
                    "messages": a.message_count,
                    "last_activity": a.last_activity and iso(a.last_activity),
                    "uptime": round(time.monotonic() - a.started, 3),
                    "mode": a.mode,
                },
            )
        if method == "GET" and path == "/api/server/ping":
            return self._send(200, {"pong": True, "timestamp": int(time.time() * 1000)})
        if method == "GET" and path == "/api/agents":
            summary = {
                "id": p.id,
                "name": p.name,
                "characterName": p.name,
                "status": "active",
                "bio": p.introduction(),
            }
            return self._send(200, {"success": True, "data": {"agents": [summary]}})
        if method == "GET" and parts[:2] == ["api", "agents"] and len(parts) == 3:
            self._agent_ref(parts[2])
            return self._send(200, {"success": True, "data": p.public()})
        if parts[:3] == ["api", "messaging", "sessions"]:
            return self._sessions(method, parts[3:])
        if method == "GET" and parts == ["api", "messaging", "message-server", "current"]:
            return self._send(200, {"success": True, "data": {"messageServerId": MESSAGE_SERVER}})
        if method == "POST" and parts[:3] == ["api", "messaging", "channels"] and parts[4:] == ["messages"]:
            return self._channel_message(parts[3])
        if method == "GET" and len(parts) == 4 and parts[:2] == ["api", "memory"] and parts[3] == "memories":
            self._agent_ref(parts[2])
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            room = (query.get("roomId") or query.get("channelId") or [None])[0]
            return self._send(200, {"success": True, "data": {"memories": self.memories.newest_first(room)}})
        raise HttpError(404, "NOT_FOUND", f"no route for {method} {path}")

    def _agent_ref(self, ref: str) -> None:
        p = self.agent.persona
        if ref != p.id and ref.lower() != p.name.lower():
            raise HttpError(404, "NOT_FOUND", "Agent not found", {"agentId": ref})

    def _channel_message(self, channel_id: str) -> int:
        """ElizaOS 1.x channels: the channel is made on first use; transport "http" answers the reply."""
        body = self._json_body()
        mode = str(body.get("mode") or "")
        transport = body.get("transport") or {"sync": "http", "stream": "sse"}.get(mode, mode or None)
        if transport not in (None, "http", "websocket", "sse"):
            raise HttpError(400, "INVALID_TRANSPORT", "transport must be one of http, sse, websocket")
        author, content = body.get("author_id"), body.get("content")
        if not (is_uuid(channel_id) and is_uuid(author) and is_uuid(body.get("message_server_id"))) or not (
            isinstance(content, str) and content.strip()
        ):
            raise HttpError(
                400,
                "BAD_REQUEST",
                "Missing required fields: channelId, message_server_id, author_id, content",
            )
        agent_id = self.agent.persona.id
        user_message = {
            "id": str(uuid.uuid4()),
            "channel_id": channel_id,
            "message_server_id": body["message_server_id"],
            "author_id": author,
            "content": content,
            "created_at": int(time.time() * 1000),
            "source_type": body.get("source_type") or "eliza_gui",
            "metadata": body.get("metadata") or {},
        }
        self.memories.add(agent_id, author, channel_id, content)

        def answer() -> dict[str, Any]:
            text = self.agent.reply(content, f"channel:{channel_id}")
            self.memories.add(agent_id, agent_id, channel_id, text)
            # As ElizaOS's Content: the thought is the agent's own and the platform must not pass it on.
            return {"thought": "Answering from the character file.", "actions": ["REPLY"], "providers": [],
                    "text": text, "simple": True}

        if transport == "http":
            return self._send(201, {"success": True, "userMessage": user_message, "agentResponse": answer()})
        if transport == "sse":
            return self._send_events([("user_message", user_message), ("done", answer())])
        threading.Thread(target=answer, daemon=True).start()
        return self._send(201, {"success": True, "userMessage": user_message})

    def _sessions(self, method: str, rest: list[str]) -> int:
        if method == "POST" and not rest:
            return self._create_session()
        if not rest:
            raise HttpError(404, "NOT_FOUND", "no such sessions route")
        session = self.agent.sessions.use(rest[0])
        if session is None:
            raise HttpError(404, "SESSION_NOT_FOUND", "Session not found", {"sessionId": rest[0]})
        if len(rest) == 1 and method == "GET":
            return self._send(200, self._session_info(session))
        if len(rest) == 1 and method == "DELETE":
            self.agent.sessions.pop(rest[0], None)
            return self._send(
                200,
                {"success": True, "message": f"Session {rest[0]} deleted successfully"},
            )
        if rest[1:] == ["messages"] and method == "POST":
            return self._session_message(session)
        if rest[1:] == ["messages"] and method == "GET":
            newest_first = list(reversed(session["messages"]))
            return self._send(
                200,
                {"messages": newest_first[:100], "hasMore": len(newest_first) > 100},
            )
        raise HttpError(404, "NOT_FOUND", "no such sessions route")

    def _create_session(self) -> int:
        body = self._json_body()
        for field in ("agentId", "userId"):
            if not is_uuid(body.get(field)):
                raise HttpError(
                    400,
                    "INVALID_REQUEST",
                    f"'{field}' must be a UUID",
                    {"field": field},
                )
        self._agent_ref(body["agentId"])
        now = utc_now()
        session = {
            "sessionId": str(uuid.uuid4()),
            "channelId": str(uuid.uuid4()),
            "agentId": self.agent.persona.id,
            "userId": body["userId"],
            "createdAt": iso(now),
            "lastActivity": iso(now),
            "metadata": body.get("metadata") or {},
            "expiresAt": iso(now + timedelta(minutes=30)),
            "timeoutConfig": {
                "timeoutMinutes": 30,
                "autoRenew": True,
                "maxDurationMinutes": 720,
                "warningThresholdMinutes": 5,
            },
            "messages": deque(maxlen=self.agent.session_messages),
        }
        self.agent.sessions[session["sessionId"]] = session
        return self._send(201, {k: v for k, v in session.items() if k != "messages"})

    def _session_info(self, session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if k != "messages"}

    def _session_message(self, session: dict[str, Any]) -> int:
        body = self._json_body()
        content = body.get("content")
        if not isinstance(content, str) or not content.strip():
            raise HttpError(400, "INVALID_CONTENT", "Content must be a non-empty string")
        if len(content) > MAX_CONTENT:
            raise HttpError(
                400,
                "INVALID_CONTENT",
                f"Content exceeds maximum length of {MAX_CONTENT} characters",
            )
        # "mode" is the older name ElizaOS still accepts: sync, stream, websocket.
        mode = str(body.get("mode") or "")
        transport = body.get("transport") or {"sync": "http", "stream": "sse"}.get(mode, mode or None)
        if transport not in (None, "http", "websocket", "sse"):
            raise HttpError(
                400,
                "INVALID_TRANSPORT",
                "transport must be one of http, sse, websocket",
            )
        now = utc_now()
        session["lastActivity"] = iso(now)
        user_message = {
            "id": str(uuid.uuid4()),
            "channel_id": session["channelId"],
            "author_id": session["userId"],
            "content": content,
            "created_at": int(now.timestamp() * 1000),
            "source_type": "user",
            "metadata": {
                "sessionId": session["sessionId"],
                **(body.get("metadata") or {}),
            },
        }
        self.memories.add(self.agent.persona.id, session["userId"], session["channelId"], content)
        session["messages"].append(
            {
                "id": user_message["id"],
                "content": content,
                "authorId": session["userId"],
                "isAgent": False,
                "createdAt": iso(now),
                "metadata": {},
            }
        )
        status = {
            "sessionStatus": {
                "expiresAt": session["expiresAt"],
                "renewalCount": 0,
                "wasRenewed": False,
                "isNearExpiration": False,
            }
        }

        def answer() -> dict[str, Any]:
            text = self.agent.reply(content, f"session:{session['sessionId']}")
            self.memories.add(self.agent.persona.id, self.agent.persona.id, session["channelId"], text)
            session["messages"].append(
                {
                    "id": str(uuid.uuid4()),
                    "content": text,
                    "authorId": self.agent.persona.id,
                    "isAgent": True,
                    "createdAt": iso(utc_now()),
                    "metadata": {},
                }
            )
            return {"text": text, "actions": ["REPLY"], "source": "reference-agent"}

        if transport == "http":
            return self._send(
                201,
                {
                    "success": True,
                    "userMessage": user_message,
                    "agentResponse": answer(),
                    **status,
                },
            )
        if transport == "sse":
            return self._send_events([("user_message", user_message), ("done", answer())])
        # websocket (ElizaOS's default): answer now, the reply arrives later in the session's messages.
        threading.Thread(target=answer, daemon=True).start()
        return self._send(201, {"success": True, "userMessage": user_message, **status})

    def _read_body(self) -> bytes:
        # Read every body up front: an unread one would be taken for the next keep-alive request.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise HttpError(400, "BAD_REQUEST", "invalid Content-Length") from None
        if length > MAX_BODY:
            raise HttpError(413, "PAYLOAD_TOO_LARGE", f"body over {MAX_BODY} bytes")
        return self.rfile.read(length) if length > 0 else b""

    def _json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self._raw or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HttpError(400, "BAD_REQUEST", f"body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise HttpError(400, "BAD_REQUEST", "body must be a JSON object")
        return body

    def _send(self, status: int, payload: Any) -> int:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return status

    def _send_events(self, events: list[tuple[str, Any]]) -> int:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for name, data in events:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        return 200


def load_character(character_path: str, env: dict[str, str]) -> dict[str, Any]:
    """The character from CHARACTER_JSON (base64 of the file) when set, else from the file.

    Cloud Run cannot bind-mount a host file, so there the platform passes the file in the
    environment; it wins over CHARACTER_PATH, which an image may set as a default.
    Raises ValueError (or OSError for the file) saying what is wrong.
    """
    encoded = env.get("CHARACTER_JSON", "").strip()
    if encoded:
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"CHARACTER_JSON is not base64: {exc}") from exc
    else:
        with open(character_path, "rb") as fh:
            raw = fh.read()
    character = json.loads(raw.decode("utf-8"))
    if not isinstance(character, dict):
        raise ValueError("not a JSON object")
    return character


def serve(character_path: str, host: str, port: int, env: dict[str, str]) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit code."""
    source = "CHARACTER_JSON" if env.get("CHARACTER_JSON", "").strip() else character_path
    try:
        character = load_character(character_path, env)
    except (OSError, ValueError) as exc:
        log(f"cannot load character {source}: {exc}")
        return 2
    agent = Agent(Persona(character), env)
    key = env.get("ELIZA_SERVER_AUTH_TOKEN", "")
    handler = type("BoundHandler", (Handler,), {"agent": agent, "memories": Memories(), "api_key": key})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True

    def stop(signum: int, _frame: Any) -> None:
        log(f"received {signal.Signals(signum).name}; shutting down")
        # shutdown() waits for serve_forever() to return, which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    who = f"agent {agent.persona.name} ({agent.persona.id})"
    guard = "X-API-KEY required" if key else "open: ELIZA_SERVER_AUTH_TOKEN is not set"
    log(f"{who} listening on http://{host}:{server.server_port} [{agent.mode}; {guard}]")
    try:
        # The loop notices shutdown() only between polls: a short poll keeps hibernate quick.
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
    log("stopped")
    return 0


def spread_agent_env(env: dict[str, str]) -> dict[str, str]:
    """env with PARADYZE_AGENT_ENV (a JSON object of names and values, from the agent's secret on
    Cloud Run) spread into it and removed. Raises ValueError when it is not such an object."""
    raw = env.pop("PARADYZE_AGENT_ENV", "")
    if not raw:
        return env
    values = json.loads(raw)
    if not isinstance(values, dict) or not all(
            isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) and isinstance(v, str)
            for k, v in values.items()):
        raise ValueError("PARADYZE_AGENT_ENV must be a JSON object of variable names and string values")
    return {**env, **values}


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("PARADYZE_AGENT_ENV"):
        # As the ElizaOS image's entrypoint does: run again in the environment the secret gives.
        try:
            env = spread_agent_env(dict(os.environ))
        except ValueError as exc:
            log(f"cannot start: {exc}")
            return 2
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    env = dict(os.environ)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--character",
        default=env.get("CHARACTER_PATH") or "/app/characters/default.character.json",
    )
    parser.add_argument("--port", type=int, default=int(env.get("PORT") or 3000))
    parser.add_argument("--host", default=env.get("HOST") or "0.0.0.0")
    args = parser.parse_args(argv)
    return serve(args.character, args.host, args.port, env)


if __name__ == "__main__":
    sys.exit(main())
