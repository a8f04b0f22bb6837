"""ElizaOS character files (0.x and 1.x): validation, the secrets split, and canonical bytes."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Character files come from users and from ElizaOS versions we have not seen yet: keep every
# unknown key as it is, and validate only what the platform and the agent rely on.
_KEEP = ConfigDict(extra="allow")


class MessageContent(BaseModel):
    model_config = _KEEP
    text: str = ""


class ExampleMessage(BaseModel):
    """One line of a conversation example: 0.x names the speaker `user`, 1.x `name`."""

    model_config = _KEEP
    user: str | None = None
    name: str | None = None
    content: MessageContent


class ExampleGroup(BaseModel):
    """ElizaOS 1.x: `{"examples": [...]}`."""

    model_config = _KEEP
    examples: list[ExampleMessage]


class Style(BaseModel):
    model_config = _KEEP
    all: list[str] = Field(default_factory=list)
    chat: list[str] = Field(default_factory=list)
    post: list[str] = Field(default_factory=list)


# A secret set to null (or "") in an update removes the stored secret of that name.
Secrets = dict[str, Union[str, None]]


class CharacterSettings(BaseModel):
    model_config = _KEEP
    secrets: Secrets = Field(default_factory=dict)
    model: str | None = None


class Character(BaseModel):
    """A character file as users upload it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    bio: Union[str, list[str]]
    id: str | None = None
    username: str | None = None
    system: str | None = None
    lore: list[str] = Field(default_factory=list)
    clients: list[str] = Field(default_factory=list)
    modelProvider: str | None = None  # noqa: N815 - ElizaOS's own key
    messageExamples: list[Union[list[ExampleMessage], ExampleGroup]] = Field(  # noqa: N815
        default_factory=list
    )
    postExamples: list[str] = Field(default_factory=list)  # noqa: N815
    topics: list[str] = Field(default_factory=list)
    adjectives: list[str] = Field(default_factory=list)
    knowledge: list[Any] = Field(default_factory=list)
    style: Style = Field(default_factory=Style)
    settings: CharacterSettings = Field(default_factory=CharacterSettings)
    secrets: Secrets = Field(default_factory=dict)  # ElizaOS 1.x also keeps secrets at the top level
    plugins: list[Union[str, dict[str, Any]]] = Field(default_factory=list)
    templates: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class SplitCharacter(BaseModel):
    """A character with its secrets taken out: `config` is safe to store and return.

    secrets: as the user sent them, both places merged (the top level wins, as in ElizaOS); a
    value of None or "" asks to remove that secret (merge_secrets).
    """

    config: dict[str, Any]
    secrets: Secrets

    def __repr__(self) -> str:
        return f"SplitCharacter(name={self.config.get('name')!r}, secrets={sorted(self.secrets)})"


def split_secrets(character: Character) -> SplitCharacter:
    """The stored configuration (as the user wrote it, minus both kinds of secrets) and the secrets.

    Only the keys the user sent are kept, so a stored version reads like the uploaded file.
    """
    config = character.model_dump(mode="json", exclude_unset=True, by_alias=True)
    settings = dict(config.get("settings") or {})
    secrets = {**(settings.pop("secrets", None) or {}), **(config.pop("secrets", None) or {})}
    if "settings" in config:
        config["settings"] = settings
    return SplitCharacter(config=config, secrets=secrets)


def merge_secrets(stored: dict[str, str], sent: Secrets) -> dict[str, str]:
    """The secrets after an upload: stored ones kept, sent ones set, null or "" ones removed."""
    merged = {**stored, **{k: v for k, v in sent.items() if v}}
    return {k: v for k, v in merged.items() if sent.get(k, v)}


def canonical_bytes(config: dict[str, Any]) -> bytes:
    """The bytes a version is stored as and hashed over: stable key order, UTF-8."""
    return json.dumps(config, sort_keys=True, ensure_ascii=False, indent=2).encode() + b"\n"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
