"""Character files in the console: the light client-side check, and the split between form and JSON."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Fields edited in the form; everything else stays in the JSON editor, untouched.
LIST_FIELDS = ("bio", "lore", "adjectives", "topics", "postExamples", "plugins", "clients")
TEXT_FIELDS = ("name", "username", "system", "modelProvider")
STYLE_KEYS = ("all", "chat", "post")


class CharacterDraft(BaseModel):
    """Mirrors the server's minimum: a non-empty name and a bio (text or list of text)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    bio: str | list[str]
    system: str | None = None
    lore: list[str] | None = None
    adjectives: list[str] | None = None
    topics: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def validate_character(character: Any) -> dict[str, str]:
    """Field path -> message for everything the draft model rejects; empty when it passes."""
    if not isinstance(character, dict):
        return {"": "a character must be a JSON object"}
    try:
        CharacterDraft.model_validate(character)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            # A union (str | list[str]) reports one error per branch; the field is what matters.
            loc = [str(p) for p in err["loc"] if not str(p).startswith(("str", "list["))]
            key = ".".join(loc[:1]) if loc and loc[0] in ("bio", "name") else ".".join(loc)
            errors.setdefault(key, _plain(err))
        return errors
    return {}


def _plain(err: Any) -> str:
    if err["type"] == "missing":
        return "required"
    if err["loc"] and err["loc"][0] == "bio":
        return "must be text or a list of text"
    return str(err["msg"]).removeprefix("Value error, ")


def validate_schedule(cron: str, timezone: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not croniter.is_valid(cron.strip()):
        errors["cron"] = f"'{cron}' is not a cron expression (five fields, e.g. '0 22 * * *')"
    try:
        ZoneInfo(timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = f"'{timezone}' is not an IANA time zone (e.g. 'America/New_York')"
    return errors


def split_character(character: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(form fields, the rest, secrets). Secrets leave the JSON so they are never shown in clear text."""
    rest = json.loads(json.dumps(character))  # a deep copy the caller may mutate
    form: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        value = rest.get(key)
        if value is None or isinstance(value, str):
            form[key] = rest.pop(key, None) or ""
    for key in LIST_FIELDS:
        value = rest.get(key)
        if key == "bio" and isinstance(value, str):
            form["bio"] = rest.pop("bio")
            form["bio_is_text"] = True
        elif value is None or _is_str_list(value):
            form[key] = "\n".join(rest.pop(key, None) or [])
    form.setdefault("bio_is_text", False)
    style = rest.get("style")
    if isinstance(style, dict) and all(_is_str_list(style.get(k, [])) for k in STYLE_KEYS):
        style = rest.pop("style")
        for key in STYLE_KEYS:
            form[f"style.{key}"] = "\n".join(style.pop(key, []) or [])
        if style:  # unknown style keys stay in the JSON
            rest["style"] = style
    secrets: dict[str, str] = {}
    settings = rest.get("settings")
    if isinstance(settings, dict) and isinstance(settings.get("secrets"), dict):
        secrets = {str(k): "" if v is None else str(v) for k, v in settings.pop("secrets").items()}
        if not settings:
            rest.pop("settings")
    return form, rest, secrets


def merge_character(form: dict[str, Any], rest: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """The character to send: the JSON rest, then the form fields, then the secrets."""
    character = json.loads(json.dumps(rest))
    for key in TEXT_FIELDS:
        value = str(form.get(key) or "")
        if key == "name":
            character["name"] = value.strip()
        elif value.strip():
            character[key] = value
    for key in LIST_FIELDS:
        text = str(form.get(key) or "")
        if key == "bio" and form.get("bio_is_text"):
            if text.strip():
                character["bio"] = text
        elif items := lines(text):
            character[key] = items
    style = {k: items for k in STYLE_KEYS if (items := lines(str(form.get(f"style.{k}") or "")))}
    if style or isinstance(character.get("style"), dict):
        character["style"] = {**(character.get("style") or {}), **style}
    if secrets:
        settings = character.setdefault("settings", {})
        if isinstance(settings, dict):
            settings["secrets"] = dict(secrets)
    if not character.get("name"):
        character.pop("name", None)  # so the check says "required", as the server would
    return character


def lines(text: str) -> list[str]:
    # Entries keep their own spacing so an unchanged file round-trips exactly.
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def server_field_errors(details: dict[str, str], prefix: str = "character") -> dict[str, str]:
    """Server 422 paths under `prefix`, re-keyed as the form's own paths ("character.bio" -> "bio")."""
    out: dict[str, str] = {}
    for loc, msg in details.items():
        if loc == prefix or loc.startswith(prefix + "."):
            out[loc[len(prefix) + 1 :]] = msg
    return out
