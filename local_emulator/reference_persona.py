"""What the reference agent says: its persona from the character file, offline or via OpenRouter."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import OrderedDict, deque
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
LLM_TIMEOUT = 45.0  # below the platform client's 60 s, so a slow model still falls back in time
HISTORY_TURNS = 10
# What one agent keeps, so a long test cannot grow it without bound: the conversations (channels and
# sessions) it remembers, the least recently used forgotten first, and each session's newest messages.
MAX_CONVERSATIONS = 1000
SESSION_MESSAGES = 200
_STOPWORDS = (
    "a an the and or but if of to in on at for with about is are was were be been am i "
    "you me my your we it this that what how why who do does did can could would should "
    "will so just any some there here have has had not no yes please tell"
)
STOPWORDS = frozenset(_STOPWORDS.split(" "))
_AGENT_SPEAKERS = {"{{agentname}}", "{{name}}", "{{char}}", "assistant", "agent"}
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def utc_now() -> datetime:
    # timezone.utc, not datetime.UTC: the image's python3 may predate 3.11.
    return datetime.now(timezone.utc)  # noqa: UP017


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def log(line: str) -> None:
    print(f"{iso(utc_now())} {line}", flush=True)


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


def is_uuid(value: Any) -> bool:
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
            str(raw_id) if is_uuid(raw_id) else str(uuid.uuid5(uuid.NAMESPACE_URL, f"elizaos:character:{self.name}"))
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
            # 0.x names the other speaker {{user1}}; 1.x (and the platform's runtime character) {{name1}}.
            if key.startswith("user") or re.fullmatch(r"name\d+", key):
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

    def introduction(self) -> str:
        """The first bio line, as the agent list shows it."""
        return self.fill((_lines(self.character.get("bio")) or [""])[0], "there")

    def public(self) -> dict[str, Any]:
        """The character as ElizaOS shows it, never with secrets."""
        shown = {k: v for k, v in self.character.items() if k != "secrets"}
        if isinstance(shown.get("settings"), dict):
            shown["settings"] = {k: v for k, v in shown["settings"].items() if k != "secrets"}
        return {**shown, "id": self.id, "status": "active", "enabled": True}


V = TypeVar("V")


class Recent(OrderedDict[str, V], Generic[V]):
    """A mapping of at most `size` entries: setting or using one makes it the newest, the oldest go first."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: str, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)

    def use(self, key: str) -> V | None:
        if key not in self:
            return None
        self.move_to_end(key)
        return self[key]


class Agent:
    """Conversation state and reply generation (OpenRouter when configured, else offline)."""

    def __init__(self, persona: Persona, env: dict[str, str], *, max_conversations: int = MAX_CONVERSATIONS,
                 session_messages: int = SESSION_MESSAGES) -> None:
        self.persona = persona
        self._key = env.get("OPENROUTER_API_KEY") or None
        self._base = (env.get("OPENROUTER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._model = env.get("OPENROUTER_MODEL") or DEFAULT_MODEL
        self.started = time.monotonic()
        self.message_count = 0
        self.last_activity: datetime | None = None
        self.sessions: Recent[dict[str, Any]] = Recent(max_conversations)
        self.session_messages = session_messages
        self._history: Recent[deque[dict[str, str]]] = Recent(max_conversations)
        self._lock = threading.Lock()

    def retained(self) -> int:
        """Messages held in memory: conversation history and session messages."""
        with self._lock:
            return sum(len(h) for h in self._history.values()) + sum(
                len(s["messages"]) for s in list(self.sessions.values()))

    @property
    def mode(self) -> str:
        return "openrouter" if self._key else "offline"

    def reply(self, text: str, conversation: str, user_name: str = "there") -> str:
        with self._lock:
            self.message_count += 1
            self.last_activity = utc_now()
            history = self._history.use(conversation)
            if history is None:
                history = self._history[conversation] = deque(maxlen=2 * HISTORY_TURNS)
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
