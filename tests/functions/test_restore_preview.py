"""backup_contents: what a restore would bring back and what exists, and one agent's backed-up character."""

from __future__ import annotations

from helpers import Functions, User, fixture_characters

CHARACTERS = fixture_characters()


def create(functions: Functions, user: User, name: str, cleanup: list[str]) -> dict:
    resp = functions.post("create_agent", user.token, {"character": CHARACTERS[name]})
    assert resp.status_code == 201, resp.get_json()
    cleanup.append(resp.get_json()["agent"]["id"])
    return resp.get_json()["agent"]


def contents(functions: Functions, token: str, backup_id: str, **params: str) -> dict:
    resp = functions.get("backup_contents", token, backup_id=backup_id, **params)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_the_preview_matches_what_the_restore_then_does(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    kept = create(functions, alice, "sam-altman", cleanup_agents)
    gone = create(functions, alice, "eliza-default", [])
    backup = functions.post("backup_agents", admin_token).get_json()["backup"]
    functions.post("delete_agent", alice.token, {"agent_id": gone["id"]})

    preview = contents(functions, admin_token, backup["id"])
    by_id = {a["id"]: a for a in preview["agents"]}
    assert by_id[gone["id"]]["on_restore"] == "comes back" and not by_id[gone["id"]]["exists"]
    assert by_id[kept["id"]]["on_restore"] == "already here" and by_id[kept["id"]]["status"] == "running"
    assert by_id[kept["id"]]["version"] == by_id[kept["id"]]["current_version"] == 1
    assert preview["restore_adds"] == {"characters": 1, "versions": 1, "agents": 1}
    assert preview["already_present"]["agents"] == backup["agents"] - 1

    restored = functions.post("restore_backup", admin_token, {"backup_id": backup["id"]}).get_json()["restore"]
    cleanup_agents.append(gone["id"])
    assert {k: restored[k] for k in ("characters", "versions", "agents")} == preview["restore_adds"]
    after = contents(functions, admin_token, backup["id"])
    assert after["restore_adds"] == {"characters": 0, "versions": 0, "agents": 0}


def test_one_agent_rolls_back_to_the_backed_up_character(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, "sam-altman", cleanup_agents)
    backup = functions.post("backup_agents", admin_token).get_json()["backup"]
    changed = {**CHARACTERS["sam-altman"], "bio": ["Changed after the backup."]}
    functions.post("update_character", alice.token, {"agent_id": agent["id"], "character": changed})

    backed = contents(functions, admin_token, backup["id"], agent_id=agent["id"])
    assert backed["character"]["bio"] == CHARACTERS["sam-altman"]["bio"]
    resp = functions.post("update_character", admin_token, {"agent_id": agent["id"], "character": backed["character"]})
    assert resp.status_code == 200, resp.get_json()
    versions = functions.get("character_versions", alice.token, agent_id=agent["id"]).get_json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[-1]["character"]["bio"] == CHARACTERS["sam-altman"]["bio"]


def test_only_the_admin_may_look_and_unknown_ids_are_404(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    create(functions, alice, "sam-altman", cleanup_agents)
    backup = functions.post("backup_agents", admin_token).get_json()["backup"]
    assert functions.get("backup_contents", alice.token, backup_id=backup["id"]).status_code == 403
    missing = "00000000-0000-0000-0000-00000000abcd"
    assert functions.get("backup_contents", admin_token, backup_id=missing).status_code == 404
    resp = functions.get("backup_contents", admin_token, backup_id=backup["id"], agent_id=missing)
    assert resp.status_code == 404 and resp.get_json()["error"]["details"][0]["loc"] == ["agent_id"]
