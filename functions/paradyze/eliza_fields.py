"""The fields of a character as ElizaOS 1.7.2's schema takes them, each normalised, every fault
recorded with its path (eliza_character.py puts them together)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import agent_env

# ElizaOS 0.x wrote the other speakers of an example as {{user1}}; 1.x replaces {{name1}}..{{name5}}.
_USER_PLACEHOLDER = re.compile(r"\{\{user(\d+)\}\}")
# The typed keys of an example's content (contentSchema); any other key is kept as it is.
_CONTENT_STRINGS = ("text", "thought", "source", "target", "url")
_CONTENT_LISTS = ("actions", "providers")
_ENV_LIKE = re.compile(r"^[A-Z0-9_]+$")
Loc = list[str | int]


class Errors:
    """The faults found so far, each with its path under `character`."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []

    def add(self, loc: Loc, msg: str) -> None:
        self.details.append({"loc": ["character", *loc], "msg": msg})


def bio(config: Mapping[str, Any], errors: Errors) -> str | list[str] | None:
    bio, lore = config.get("bio"), config.get("lore")
    if not isinstance(bio, (str, list)):
        errors.add(["bio"], "a bio is required: a string or a list of strings")
        return None
    lines = strings(bio, ["bio"], errors) if isinstance(bio, list) else [bio]
    if lore is None:
        return bio if isinstance(bio, str) else lines
    # ElizaOS 1.x has no lore: it is backstory, which 1.x keeps in the bio.
    return lines + strings(lore, ["lore"], errors)


def strings(value: Any, loc: Loc, errors: Errors) -> list[str]:
    if not isinstance(value, list):
        errors.add(loc, "must be a list of strings")
        return []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            errors.add([*loc, i], "must be a string")
    return [item for item in value if isinstance(item, str)]


def templates(value: Any, errors: Errors) -> dict[str, str]:
    if not isinstance(value, dict):
        errors.add(["templates"], "must be an object of template strings")
        return {}
    for key, template in value.items():
        if not isinstance(template, str):
            errors.add(["templates", key], "a template must be a string")
    return {k: v for k, v in value.items() if isinstance(v, str)}


def examples(value: Any, errors: Errors) -> list[list[dict[str, Any]]]:
    if not isinstance(value, list):
        errors.add(["messageExamples"], "must be a list of conversations")
        return []
    conversations = []
    for i, conversation in enumerate(value):
        loc: Loc = ["messageExamples", i]
        if isinstance(conversation, dict) and "examples" in conversation:  # 1.x export: {"examples": [...]}
            conversation, loc = conversation["examples"], [*loc, "examples"]
        if not isinstance(conversation, list):
            errors.add(loc, "a conversation is a list of messages")
            continue
        messages = [_example_message(m, [*loc, j], errors) for j, m in enumerate(conversation)]
        conversations.append([m for m in messages if m is not None])
    return conversations


def _example_message(message: Any, loc: Loc, errors: Errors) -> dict[str, Any] | None:
    if not isinstance(message, dict):
        errors.add(loc, "a message is an object with name and content")
        return None
    speaker = message.get("name") if message.get("name") is not None else message.get("user")  # 0.x: user
    if not isinstance(speaker, str):
        errors.add([*loc, "name"], "a message names its speaker (name, or user in ElizaOS 0.x)")
        return None
    content = message.get("content")
    if not isinstance(content, dict):
        errors.add([*loc, "content"], "must be an object with text")
        return None
    out: dict[str, Any] = {}
    for key, item in content.items():
        if key in _CONTENT_STRINGS:
            if isinstance(item, str):
                out[key] = _USER_PLACEHOLDER.sub(r"{{name\1}}", item)
        elif key in _CONTENT_LISTS:
            if isinstance(item, list) and all(isinstance(x, str) for x in item):
                out[key] = item
        elif key == "action":  # 0.x: one action
            if isinstance(item, str):
                out.setdefault("actions", [item])
        elif key not in ("inReplyTo", "attachments", "channelType"):
            out[key] = item  # ElizaOS keeps unknown content keys; the three typed ones above it checks
    return {"name": _USER_PLACEHOLDER.sub(r"{{name\1}}", speaker), "content": out}


def knowledge(value: Any, errors: Errors) -> list[str]:
    if not isinstance(value, list):
        errors.add(["knowledge"], "must be a list")
        return []
    items = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            items.append(item)
        elif isinstance(item, dict) and ("path" in item or "directory" in item):
            # Paths would name files on the platform's hosts, which are not the user's to read.
            errors.add(["knowledge", i], "knowledge files and directories are not supported: give the text")
        elif isinstance(item, dict) and isinstance(item.get("content") or item.get("text"), str):
            items.append(item.get("content") or item["text"])
        else:
            errors.add(["knowledge", i], "must be a string")
    return items


def style(value: Any, errors: Errors) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        errors.add(["style"], "must be an object with all, chat and post")
        return {}
    return {k: strings(value[k], ["style", k], errors) for k in ("all", "chat", "post") if value.get(k) is not None}


def settings(value: Any, errors: Errors) -> dict[str, Any]:
    """Plain settings, minus secrets and nulls; ElizaOS reads them like environment variables."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.add(["settings"], "must be an object")
        return {}
    out = {}
    for key, item in value.items():
        if key == "secrets" or item is None:
            continue
        # ElizaOS looks settings up like environment variables (PGLITE_DATA_DIR, POSTGRES_URL,
        # SECRET_SALT, ...): the names a secret may not have, a setting may not have either.
        why = agent_env.rejected(key) if _ENV_LIKE.match(key) else None
        if why:
            errors.add(["settings", key], why)
        else:
            out[key] = item
    return out
