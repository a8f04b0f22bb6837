"""Character files: every fixture accepted unchanged, secrets split off, bad files named by path."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from helpers import fixture_characters
from paradyze.characters import Character, canonical_bytes, split_secrets
from paradyze.http import validation_error

FIXTURES = fixture_characters()


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_is_accepted_and_stored_as_written_minus_secrets(name: str) -> None:
    original = FIXTURES[name]
    split = split_secrets(Character.model_validate(original))
    expected = copy.deepcopy(original)
    secrets = (expected.get("settings") or {}).pop("secrets", {})
    assert split.config == expected
    assert split.secrets == secrets
    assert json.loads(canonical_bytes(split.config)) == expected


def test_unknown_keys_are_kept() -> None:
    character = Character.model_validate({"name": "A", "bio": "b", "futureField": {"x": [1, 2]}})
    assert split_secrets(character).config["futureField"] == {"x": [1, 2]}


def test_secret_values_never_reach_the_config() -> None:
    character = Character.model_validate(
        {"name": "A", "bio": "b", "settings": {"model": "m", "secrets": {"OPENAI_API_KEY": "sk-live-123"}}})
    split = split_secrets(character)
    assert "sk-live-123" not in canonical_bytes(split.config).decode()
    assert split.config["settings"] == {"model": "m"}
    assert split.secrets == {"OPENAI_API_KEY": "sk-live-123"}
    assert "sk-live-123" not in repr(split)


@pytest.mark.parametrize(
    ("document", "loc"),
    [
        ({"bio": "x"}, ["name"]),
        ({"name": "A"}, ["bio"]),
        ({"name": "   ", "bio": "x"}, ["name"]),
        ({"name": "A", "bio": 3}, ["bio"]),
        ({"name": "A", "bio": "x", "lore": "not a list"}, ["lore"]),
        ({"name": "A", "bio": "x", "settings": {"secrets": {"K": 1}}}, ["settings", "secrets", "K"]),
        ({"name": "A", "bio": "x", "messageExamples": [[{"user": "u"}]]}, ["messageExamples", 0, 0, "content"]),
    ],
)
def test_invalid_files_name_each_bad_field_by_path(document: dict, loc: list) -> None:
    with pytest.raises(ValidationError) as info:
        Character.model_validate(document)
    locs = [d["loc"] for d in validation_error(info.value).details]
    assert loc in locs, locs
