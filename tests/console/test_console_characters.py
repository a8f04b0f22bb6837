"""The console's character editor logic: form/JSON split, client-side checks, server error mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.characters import (
    merge_character,
    server_field_errors,
    split_character,
    validate_character,
    validate_schedule,
)
from helpers import FIXTURES

CHARACTER_FILES = sorted(FIXTURES.glob("*.json"))


@pytest.mark.parametrize("path", CHARACTER_FILES, ids=lambda p: p.name)
def test_real_character_files_round_trip_unchanged(path: Path) -> None:
    character = json.loads(path.read_text())
    form, rest, secrets = split_character(character)
    assert merge_character(form, rest, secrets) == character
    assert validate_character(character) == {}


def test_secrets_leave_the_json_editor() -> None:
    character = {"name": "X", "bio": "b", "settings": {"secrets": {"KEY": "s3cret"}, "voice": {"model": "m"}}}
    form, rest, secrets = split_character(character)
    assert secrets == {"KEY": "s3cret"}
    assert "s3cret" not in json.dumps(rest) + json.dumps(form)
    assert merge_character(form, rest, secrets)["settings"] == {
        "voice": {"model": "m"},
        "secrets": {"KEY": "s3cret"},
    }


def test_form_edits_land_in_the_character() -> None:
    form, rest, secrets = split_character({"name": "Old", "bio": ["one"], "messageExamples": []})
    form.update({"name": "  New  ", "bio": "one\n\ntwo", "topics": "ai\nchess", "style.chat": "be brief"})
    merged = merge_character(form, rest, secrets)
    assert merged == {
        "name": "New",
        "bio": ["one", "two"],
        "topics": ["ai", "chess"],
        "style": {"chat": ["be brief"]},
        "messageExamples": [],
    }


def test_missing_or_wrong_fields_are_named() -> None:
    form, rest, secrets = split_character({"name": "", "bio": [""]})
    assert validate_character(merge_character(form, rest, secrets)) == {"name": "required", "bio": "required"}
    assert validate_character({"name": "   ", "bio": "ok"}) == {"name": "must not be blank"}
    assert validate_character({"name": "n", "bio": ["ok", 3]}) == {"bio": "must be text or a list of text"}
    assert validate_character({"name": "n", "bio": "b", "topics": "not a list"}).keys() == {"topics"}
    assert validate_character([1]) == {"": "a character must be a JSON object"}


def test_schedule_checks() -> None:
    assert validate_schedule("0 22 * * 1-5", "America/New_York") == {}
    assert validate_schedule("every night", "Mars/Olympus").keys() == {"cron", "timezone"}


def test_server_details_map_to_form_fields() -> None:
    details = {
        "character.bio": "Field required",
        "character.style.all": "bad",
        "policy.schedules.0.cron": "x",
    }
    assert server_field_errors(details) == {"bio": "Field required", "style.all": "bad"}
    assert server_field_errors(details, "policy") == {"schedules.0.cron": "x"}
