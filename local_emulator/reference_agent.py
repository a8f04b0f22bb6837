"""A stdlib-only stand-in for an ElizaOS server: one agent, answering from its character file."""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = "paradyze-reference-1.0"
MAX_BODY = 1 << 20
MAX_CONTENT = 4000  # the Sessions API's documented limit
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
LLM_TIMEOUT = 45.0  # below the platform client's 60 s, so a slow model still falls back in time
HISTORY_TURNS = 10
_STOPWORDS = (
    "a an the and or but if of to in on at for with about is are was were be been am i "
    "you me my your we it this that what how why who do does did can could would should "
    "will so just any some there here have has had not no yes please tell"
)
STOPWORDS = frozenset(_STOPWORDS.split(" "))
_AGENT_SPEAKERS = {"{{agentname}}", "{{name}}", "{{char}}", "assistant", "agent"}
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _now() -> datetime:
    # timezone.utc, not datetime.UTC: the image's python3 may predate 3.11.
    return datetime.now(timezone.utc)  # noqa: UP017


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in STOPWORDS}


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


class Persona:
    """The character file, read once; answers offline from its own examples and lines."""

    def __init__(self, character: dict[str, Any]) -> None:
        self.character = character
        self.name = str(character.get("name") or "Agent")
        raw_id = character.get("id")
        # ElizaOS keys an agent by the character's id; a character without one still needs a stable id.
        self.id = (
            str(raw_id) if _is_uuid(raw_id) else str(uuid.uuid5(uuid.NAMESPACE_URL, f"elizaos:character:{self.name}"))
        )
        style = _mapping(character.get("style"))
        self.style = _lines(style.get("all")) + _lines(style.get("chat"))
        self.pairs = self._example_pairs(character.get("messageExamples"))
        templates = _mapping(character.get("templates"))
        self.lines = (
            _lines(character.get("postExamples"))
            + [v for v in templates.values() if isinstance(v, str)]
            + _lines(character.get("bio"))
            + _lines(character.get("lore"))
        ) or [f"I'm {self.name}."]
        voice = " ".join(self.style + _lines(character.get("system"))).lower()
        self.lowercase = "lowercase" in voice
        self.brief = any(word in voice for word in ("brief", "concise", "short"))

    def _is_agent(self, speaker: str) -> bool:
        names = {
            self.name.lower(),
            str(self.character.get("username") or "").lower(),
        } | _AGENT_SPEAKERS
        return speaker.lower() in names

    def _example_pairs(self, raw: Any) -> list[tuple[str, str]]:
        """(user text, agent reply) from both 0.x conversations and 1.x {"examples": [...]} groups."""
        conversations = []
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict) and isinstance(item.get("examples"), list):
                conversations.append(item["examples"])
            elif isinstance(item, list):
                conversations.append(item)
        pairs = []
        for conversation in conversations:
            turns = []
            for entry in conversation:
                if not isinstance(entry, dict):
                    continue
                content = entry.get("content")
                text = content.get("text") if isinstance(content, dict) else content
                if isinstance(text, str) and text.strip():
                    turns.append((str(entry.get("user") or entry.get("name") or ""), text))
            marked = any(self._is_agent(speaker) for speaker, _ in turns)
            for i in range(1, len(turns)):
                # Unrecognised speaker names: conversations alternate, the user speaking first.
                agent_turn = self._is_agent(turns[i][0]) if marked else i % 2 == 1
                if agent_turn and not (self._is_agent(turns[i - 1][0]) if marked else i % 2 == 0):
                    pairs.append((turns[i - 1][1], turns[i][1]))
        return pairs

    def fill(self, text: str, user_name: str) -> str:
        def swap(match: re.Match[str]) -> str:
            key = match.group(1).lower()
            if key in ("name", "agentname", "char", "agent"):
                return self.name
            if key.startswith("user"):
                return user_name
            return match.group(0)

        return _PLACEHOLDER.sub(swap, text)

    def offline_reply(self, text: str, user_name: str = "there") -> str:
        """The closest example's reply, else the character line nearest the message; deterministic."""
        asked = _words(text)
        pick = int(hashlib.sha256(text.strip().lower().encode()).hexdigest(), 16)
        best, best_score = None, 0.0
        for prompt, reply in self.pairs:
            known = _words(self.fill(prompt, user_name))
            if asked and known:
                score = len(asked & known) / len(asked | known)
                if score > best_score:
                    best, best_score = reply, score
        if best is not None and best_score >= 0.25:
            return self.fill(best, user_name)
        scored = [(len(asked & _words(line)), i) for i, line in enumerate(self.lines)]
        top = max(score for score, _ in scored)
        candidates = [i for score, i in scored if score == top]
        answer = self.fill(self.lines[candidates[pick % len(candidates)]], user_name).strip()
        if self.brief:
            answer = re.split(r"(?<=[.!?])\s+", answer)[0]
        return answer.lower() if self.lowercase else answer

    def system_prompt(self) -> str:
        c = self.character
        parts = [_lines(c.get("system"))[0] if _lines(c.get("system")) else f"You are {self.name}."]
        sections = [
            ("About you", _lines(c.get("bio"))),
            ("Your background", _lines(c.get("lore"))),
            ("What you know", _lines(c.get("knowledge"))[:10]),
            ("Topics you care about", _lines(c.get("topics"))),
            ("Your traits", _lines(c.get("adjectives"))),
            ("How you write", self.style),
        ]
        for title, lines in sections:
            if lines:
                parts.append(f"{title}:\n" + "\n".join(f"- {self.fill(line, 'the user')}" for line in lines))
        if self.pairs:
            shown = [
                f"User: {self.fill(q, 'the user')}\n{self.name}: {self.fill(a, 'the user')}" for q, a in self.pairs[:5]
            ]
            parts.append("Example exchanges:\n" + "\n\n".join(shown))
        parts.append(f"Stay in character as {self.name}. Reply with the message text only.")
        return "\n\n".join(parts)

    def public(self) -> dict[str, Any]:
        """The character as ElizaOS shows it, never with secrets."""
        shown = {k: v for k, v in self.character.items() if k != "secrets"}
        if isinstance(shown.get("settings"), dict):
            shown["settings"] = {k: v for k, v in shown["settings"].items() if k != "secrets"}
        return {**shown, "id": self.id, "status": "active", "enabled": True}


class Agent:
    """Conversation state and reply generation (OpenRouter when configured, else offline)."""

    def __init__(self, persona: Persona, env: dict[str, str]) -> None:
        self.persona = persona
        self._key = env.get("OPENROUTER_API_KEY") or None
        self._base = (env.get("OPENROUTER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._model = env.get("OPENROUTER_MODEL") or DEFAULT_MODEL
        self.started = time.monotonic()
        self.message_count = 0
        self.last_activity: datetime | None = None
        self.sessions: dict[str, dict[str, Any]] = {}
        self._history: dict[str, deque[dict[str, str]]] = {}
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        return "openrouter" if self._key else "offline"

    def reply(self, text: str, conversation: str, user_name: str = "there") -> str:
        with self._lock:
            self.message_count += 1
            self.last_activity = _now()
            history = self._history.setdefault(conversation, deque(maxlen=2 * HISTORY_TURNS))
            earlier = list(history)
        answer = (self._ask_llm(text, earlier) if self._key else None) or self.persona.offline_reply(text, user_name)
        with self._lock:
            history.extend(
                [
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": answer},
                ]
            )
        return answer

    def _ask_llm(self, text: str, earlier: list[dict[str, str]]) -> str | None:
        messages = [
            {"role": "system", "content": self.persona.system_prompt()},
            *earlier,
            {"role": "user", "content": text},
        ]
        request = urllib.request.Request(
            f"{self._base}/chat/completions",
            data=json.dumps({"model": self._model, "messages": messages}).encode(),
            headers={
                "Authorization": f"Bearer {self._key}",
                "Content-Type": "application/json",
                "X-Title": "Paradyze reference agent",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=LLM_TIMEOUT) as response:
                answer = json.loads(response.read())["choices"][0]["message"]["content"]
            if not isinstance(answer, str) or not answer.strip():
                raise ValueError("empty completion")
            return answer.strip()
        except Exception as exc:  # noqa: BLE001 - any failure means the offline answer
            status = f" HTTP {exc.code}" if isinstance(exc, urllib.error.HTTPError) else ""
            # Only the exception's type and status: its text could echo the request back.
            log(f"openrouter failed ({type(exc).__name__}{status}); answering offline")
            return None


def log(line: str) -> None:
    print(f"{_iso(_now())} {line}", flush=True)


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = (
            status,
            code,
            message,
            details,
        )


class Handler(BaseHTTPRequestHandler):
    agent: Agent  # set on the subclass made in serve()
    _raw = b""
    protocol_version = "HTTP/1.1"
    server_version = "ParadyzeReferenceAgent/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        path = self.path.split("?", 1)[0]
        status = 500
        try:
            self._raw = self._read_body()
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
            log(f"{method} {path} {status} {(time.monotonic() - started) * 1000:.1f}ms")

    def _route(self, method: str, path: str) -> int:
        a, p = self.agent, self.agent.persona
        parts = [urllib.parse.unquote(part) for part in path.split("/") if part]
        if method == "GET" and path == "/api/server/health":
            return self._send(
                200,
                {
                    "status": "OK",
                    "version": VERSION,
                    "timestamp": _iso(_now()),
                    "dependencies": {"agents": "healthy"},
                    "agentId": p.id,
                    "agentName": p.name,
                    "messages": a.message_count,
                    "last_activity": a.last_activity and _iso(a.last_activity),
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
                "bio": p.fill((_lines(p.character.get("bio")) or [""])[0], "there"),
            }
            return self._send(200, {"success": True, "data": {"agents": [summary]}})
        if method == "GET" and parts[:2] == ["api", "agents"] and len(parts) == 3:
            self._agent_ref(parts[2])
            return self._send(200, {"success": True, "data": p.public()})
        if parts[:3] == ["api", "messaging", "sessions"]:
            return self._sessions(method, parts[3:])
        if method == "POST" and len(parts) == 2 and parts[1] == "message":
            return self._classic_message(parts[0])
        raise HttpError(404, "NOT_FOUND", f"no route for {method} {path}")

    def _agent_ref(self, ref: str) -> None:
        p = self.agent.persona
        if ref != p.id and ref.lower() != p.name.lower():
            raise HttpError(404, "NOT_FOUND", "Agent not found", {"agentId": ref})

    def _classic_message(self, ref: str) -> int:
        """ElizaOS 0.x direct client: POST /{agentId}/message answers a list of replies."""
        self._agent_ref(ref)
        body = self._json_body()
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise HttpError(400, "BAD_REQUEST", "'text' must be a non-empty string")
        user = str(body.get("userId") or "user")
        conversation = f"room:{body.get('roomId') or user}"
        answer = self.agent.reply(text, conversation, str(body.get("userName") or "there"))
        return self._send(200, [{"text": answer, "user": self.agent.persona.name, "action": "NONE"}])

    def _sessions(self, method: str, rest: list[str]) -> int:
        if method == "POST" and not rest:
            return self._create_session()
        if not rest:
            raise HttpError(404, "NOT_FOUND", "no such sessions route")
        session = self.agent.sessions.get(rest[0])
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
            if not _is_uuid(body.get(field)):
                raise HttpError(
                    400,
                    "INVALID_REQUEST",
                    f"'{field}' must be a UUID",
                    {"field": field},
                )
        self._agent_ref(body["agentId"])
        now = _now()
        session = {
            "sessionId": str(uuid.uuid4()),
            "channelId": str(uuid.uuid4()),
            "agentId": self.agent.persona.id,
            "userId": body["userId"],
            "createdAt": _iso(now),
            "lastActivity": _iso(now),
            "metadata": body.get("metadata") or {},
            "expiresAt": _iso(now + timedelta(minutes=30)),
            "timeoutConfig": {
                "timeoutMinutes": 30,
                "autoRenew": True,
                "maxDurationMinutes": 720,
                "warningThresholdMinutes": 5,
            },
            "messages": [],
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
        now = _now()
        session["lastActivity"] = _iso(now)
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
        session["messages"].append(
            {
                "id": user_message["id"],
                "content": content,
                "authorId": session["userId"],
                "isAgent": False,
                "createdAt": _iso(now),
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
            session["messages"].append(
                {
                    "id": str(uuid.uuid4()),
                    "content": text,
                    "authorId": self.agent.persona.id,
                    "isAgent": True,
                    "createdAt": _iso(_now()),
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
        data = json.dumps(payload).encode()
        self.send_response(status)
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
    handler = type("BoundHandler", (Handler,), {"agent": agent})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True

    def stop(signum: int, _frame: Any) -> None:
        log(f"received {signal.Signals(signum).name}; shutting down")
        # shutdown() waits for serve_forever() to return, which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    who = f"agent {agent.persona.name} ({agent.persona.id})"
    log(f"{who} listening on http://{host}:{server.server_port} [{agent.mode}]")
    try:
        # The loop notices shutdown() only between polls: a short poll keeps hibernate quick.
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
    log("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
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
