"""The runtime character: every fixture and hostile variants pass ElizaOS 1.7.2's own validator."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers import fixture_characters
from paradyze.characters import Character, split_secrets
from paradyze.eliza_character import check, for_runtime, unavailable_plugins
from paradyze.errors import ValidationFailed
from paradyze.settings import get_settings

VALIDATOR = Path(__file__).parent / "elizaos" / "validate_character.mjs"
KEY_SETS = [set(), {"OPENAI_API_KEY"}, {"ANTHROPIC_API_KEY"}, {"OPENROUTER_API_KEY"},
            {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"}]
SQL, BOOTSTRAP = "@elizaos/plugin-sql", "@elizaos/plugin-bootstrap"


def stored(document: dict[str, Any]) -> dict[str, Any]:
    """What the platform stores for an upload (the user's file minus its secrets)."""
    return split_secrets(Character.model_validate(document)).config


def eliza_validate(characters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ElizaOS's validateCharacter, from the pinned install, run by its bun."""
    home = get_settings().elizaos_dir
    bun = home / "bun" / "node_modules" / ".bin" / "bun"
    if not bun.exists() or not (home / "app" / "node_modules" / "@elizaos" / "core").is_dir():
        pytest.skip(f"the pinned ElizaOS is not installed in {home} (local_emulator/elizaos.sh installs it)")
    result = subprocess.run([str(bun), str(VALIDATOR), str(home / "app")], input=json.dumps(characters),
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    outcome: list[dict[str, Any]] = json.loads(result.stdout)
    return outcome


def hostile_but_fixable() -> list[dict[str, Any]]:
    """Shapes users upload that ElizaOS rejects as they are, each of which for_runtime must fix."""
    base = {"name": "H", "bio": "b"}
    return [
        {**base, "lore": ["once"], "clients": ["twitter", "discord"], "modelProvider": "openai",
         "people": ["x"], "twitterProfile": {"id": "1"}, "extends": ["other"], "nft": {"prompt": "p"}},
        {**base, "id": "not-a-uuid", "settings": {"voice": None, "model": None, "temperature": 0.7,
                                                   "secrets": {"OPENAI_API_KEY": "sk-should-not-appear"}}},
        {**base, "secrets": {"DISCORD_API_TOKEN": "t0k3n"}},
        {**base, "messageExamples": [[
            {"user": "{{user1}}", "content": {"text": "hi {{user2}}", "action": "CONTINUE",
                                               "inReplyTo": "nope", "attachments": [{"bad": 1}],
                                               "channelType": "NOT_A_CHANNEL", "actions": "REPLY"}},
            {"user": "H", "content": {"text": "hello", "providers": [1, 2], "extra": {"k": [1]}}},
        ]]},
        {**base, "messageExamples": [{"examples": [{"name": "{{user1}}", "content": {"text": "a"}}]},
                                     [{"user": "u", "name": "{{name1}}", "content": {"text": "b"}}]]},
        {**base, "bio": ["one"], "lore": [], "knowledge": ["a fact", {"content": "another fact"}],
         "style": {"all": ["short"], "tone": "loud"}, "templates": {"t": "x {{name}}"}},
        {**base, "plugins": ["openai", "plugin-anthropic", "@elizaos/plugin-openrouter", "sql", "bootstrap"],
         "modelProvider": "openrouter"},
        {**base, "settings": {"OPENAI_API_KEY": "sk-user", "nested": {"a": [1, None]}, "list": [None]}},
    ]


def test_every_fixture_and_hostile_variant_passes_the_real_validator() -> None:
    documents = list(fixture_characters().values()) + hostile_but_fixable()
    runtime = [for_runtime(stored(d), keys) for d in documents for keys in KEY_SETS]
    # The same documents as users have them are rejected: the test can tell the difference.
    raw = eliza_validate([fixture_characters()["chatdkg"], fixture_characters()["eliza-default"]])
    assert [r["success"] for r in raw] == [False, False]
    results = eliza_validate(runtime)
    failures = [(c["name"], r["issues"]) for c, r in zip(runtime, results, strict=True) if not r["success"]]
    assert not failures


def test_the_runtime_character_is_what_elizaos_1_x_expects() -> None:
    chatdkg = for_runtime(stored(fixture_characters()["chatdkg"]), set())
    original = fixture_characters()["chatdkg"]
    assert chatdkg["bio"] == original["bio"] + original["lore"]
    assert not {"lore", "clients", "modelProvider", "secrets"} & set(chatdkg)
    assert "secrets" not in chatdkg["settings"]
    first = chatdkg["messageExamples"][0][0]
    assert first == {"name": "{{name1}}", "content": original["messageExamples"][0][0]["content"]}

    eliza = for_runtime(stored(fixture_characters()["eliza-default"]), set())
    group = fixture_characters()["eliza-default"]["messageExamples"][0]["examples"]
    assert eliza["messageExamples"][0] == [{**m, "name": m["name"].replace("user", "name")} for m in group]
    assert eliza["id"] == fixture_characters()["eliza-default"]["id"]


def test_no_secret_value_reaches_the_runtime_character() -> None:
    for document in hostile_but_fixable()[1:3]:
        text = json.dumps(for_runtime(stored(document), {"OPENAI_API_KEY"}))
        assert "sk-should-not-appear" not in text and "t0k3n" not in text
        assert '"secrets"' not in text


@pytest.mark.parametrize(("keys", "model"), [
    (set(), None),
    ({"OPENAI_API_KEY"}, "@elizaos/plugin-openai"),
    ({"OPENROUTER_API_KEY"}, "@elizaos/plugin-openrouter"),
    ({"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}, "@elizaos/plugin-anthropic"),  # the character's modelProvider
])
def test_plugins_are_sql_bootstrap_and_the_model_plugin_the_keys_allow(keys: set[str], model: str | None) -> None:
    character = for_runtime(stored(fixture_characters()["chatdkg"]), keys)
    assert character["plugins"] == [SQL, *([model] if model else []), BOOTSTRAP]


def test_a_model_plugin_named_by_the_user_is_preferred_when_its_key_is_there() -> None:
    document = {"name": "A", "bio": "b", "plugins": ["openrouter"]}
    both = {"OPENAI_API_KEY", "OPENROUTER_API_KEY"}
    assert for_runtime(stored(document), both)["plugins"] == [SQL, "@elizaos/plugin-openrouter", BOOTSTRAP]
    assert for_runtime(stored(document), {"OPENAI_API_KEY"})["plugins"] == [SQL, "@elizaos/plugin-openai", BOOTSTRAP]


def test_plugins_that_are_not_installed_are_left_out_and_named() -> None:
    sam = stored(fixture_characters()["sam-altman"])
    check(sam, {})  # accepted as users have it
    assert for_runtime(sam, {"OPENAI_API_KEY"})["plugins"] == [SQL, "@elizaos/plugin-openai", BOOTSTRAP]
    notices = unavailable_plugins(sam)
    assert [n["loc"] for n in notices] == [["character", "plugins", i] for i in range(3)]
    assert "analysis is not installed" in notices[2]["msg"]
    assert [n["loc"] for n in unavailable_plugins(stored(fixture_characters()["chatdkg"]))] == [
        ["character", "plugins", 0]]
    assert unavailable_plugins(stored(fixture_characters()["eliza-default"])) == []


@pytest.mark.parametrize(("change", "loc"), [
    ({"templates": {"t": 5}}, ["character", "templates", "t"]),
    ({"messageExamples": [[{"content": {"text": "who?"}}]]}, ["character", "messageExamples", 0, 0, "name"]),
    ({"knowledge": [{"path": "/etc/passwd"}]}, ["character", "knowledge", 0]),
    ({"knowledge": [{"directory": "../../"}]}, ["character", "knowledge", 0]),
    ({"settings": {"PGLITE_DATA_DIR": "/somewhere/else"}}, ["character", "settings", "PGLITE_DATA_DIR"]),
    ({"settings": {"POSTGRES_URL": "postgres://x"}}, ["character", "settings", "POSTGRES_URL"]),
    ({"plugins": [{"name": "x"}]}, ["character", "plugins", 0]),
    ({"plugins": ["../../../tmp/evil"]}, ["character", "plugins", 0]),
    ({"topics": ["ok", 3]}, ["character", "topics", 1]),
])
def test_what_cannot_be_made_valid_is_a_422_naming_the_field(change: dict[str, Any], loc: list[Any]) -> None:
    document = copy.deepcopy({"name": "A", "bio": "b", **change})
    with pytest.raises(ValidationFailed) as info:
        for_runtime(document, set())
    assert loc in [d["loc"] for d in info.value.details]
