"""Semantic versions: every version carries one, named by the user or inferred by the README's rule."""

from __future__ import annotations

import copy
from typing import Any

import psycopg
import pytest

from helpers import Functions, User, fixture_characters

CHARACTERS = fixture_characters()


def create(functions: Functions, user: User, cleanup: list[str]) -> dict:
    resp = functions.post("create_agent", user.token, {"character": CHARACTERS["eliza-default"]})
    assert resp.status_code == 201, resp.get_json()
    cleanup.append(resp.get_json()["agent"]["id"])
    functions.post("hibernate_agent", user.token, {"agent_id": resp.get_json()["agent"]["id"]})
    return resp.get_json()["agent"]


def update(functions: Functions, user: User, agent_id: str, character: dict, change: str | None = None) -> dict:
    body: dict = {"agent_id": agent_id, "character": character}
    if change:
        body["change"] = change
    resp = functions.post("update_character", user.token, body)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["agent"]


def test_each_kind_of_change_bumps_its_part(functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    assert agent["character_semver"] == "1.0.0"
    character = copy.deepcopy(CHARACTERS["eliza-default"])

    character["bio"] = [*character["bio"], "{{name}} likes tea."]  # wording
    assert update(functions, alice, agent["id"], character)["character_semver"] == "1.0.1"
    character["postExamples"] = [*character["postExamples"], "tea helps."]  # examples
    assert update(functions, alice, agent["id"], character)["character_semver"] == "1.1.0"
    character["plugins"] = ["@elizaos/plugin-bootstrap"]  # what the agent can do
    assert update(functions, alice, agent["id"], character)["character_semver"] == "2.0.0"
    character["name"] = "Eliza Two"
    assert update(functions, alice, agent["id"], character)["character_semver"] == "3.0.0"
    # The user's word wins over the rule: a wording fix they call minor is minor.
    character["system"] = character["system"] + " Be kind."
    assert update(functions, alice, agent["id"], character, change="minor")["character_semver"] == "3.1.0"
    assert update(functions, alice, agent["id"], character)["character_semver"] == "3.1.1"  # no change: patch

    versions = functions.get("character_versions", alice.token, agent_id=agent["id"]).get_json()["versions"]
    assert [(v["version"], v["semver"], v["change"]) for v in versions] == [
        (1, "1.0.0", "initial"), (2, "1.0.1", "patch"), (3, "1.1.0", "minor"), (4, "2.0.0", "major"),
        (5, "3.0.0", "major"), (6, "3.1.0", "minor"), (7, "3.1.1", "patch")]
    assert [v["current"] for v in versions] == [False] * 6 + [True]


def test_a_change_that_is_not_a_kind_is_refused(functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    resp = functions.post("update_character", alice.token, {"agent_id": agent["id"], "change": "huge",
                                                            "character": CHARACTERS["eliza-default"]})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"][0]["loc"] == ["change"]


def test_a_semantic_version_cannot_be_rewritten(conn: Any, functions: Functions, alice: User,
                                                cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, cleanup_agents)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("update public.character_versions set semver = '9.9.9' where character_id = %s",
                     (agent["character_id"],))
