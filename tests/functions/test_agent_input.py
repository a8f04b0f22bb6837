"""What of a user's upload reaches their agent, through the functions: secrets, names, the character."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import pytest

from helpers import Functions, User, fixture_characters
from local_emulator.reference_persona import Persona
from paradyze import db, repository, vault
from paradyze.eliza_character import for_runtime
from paradyze.settings import get_settings

SECRET = "sk-TOPLEVEL-7c1e9a-SECRET"
OTHER = "tok-SECOND-55aa-SECRET"


def create(functions: Functions, user: User, character: dict, cleanup: list[str]) -> dict:
    resp = functions.post("create_agent", user.token, {"character": character})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    cleanup.append(agent["id"])
    return agent


def environ(agent_id: str) -> dict[str, str]:
    """The running agent's environment, as the kernel holds it."""
    with db.pool().connection() as conn:
        row = conn.execute("select runtime_handle from public.agents where id = %s", (agent_id,)).fetchone()
    assert row and row["runtime_handle"], "the agent is not running"
    raw = Path(f"/proc/{json.loads(row['runtime_handle'])['pid']}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def command_line(agent_id: str) -> list[str]:
    """The running agent's command line, as the kernel holds it."""
    with db.pool().connection() as conn:
        row = conn.execute("select runtime_handle from public.agents where id = %s", (agent_id,)).fetchone()
    assert row and row["runtime_handle"], "the agent is not running"
    raw = Path(f"/proc/{json.loads(row['runtime_handle'])['pid']}/cmdline").read_bytes()
    return raw.decode().rstrip("\0").split("\0")


def update(functions: Functions, user: User, agent_id: str, character: dict) -> dict:
    resp = functions.post("update_character", user.token, {"agent_id": agent_id, "character": character})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_top_level_secrets_are_sealed_and_never_shown(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str],
        caplog: pytest.LogCaptureFixture) -> None:
    character = {"name": "Keeper", "bio": "keeps secrets", "secrets": {"DISCORD_API_TOKEN": SECRET}}
    agent = create(functions, alice, character, cleanup_agents)
    bodies = functions.everything_about(alice.token, agent["id"], "your token?")
    assert all(SECRET not in body for body in bodies)
    assert json.loads(bodies[2])["versions"][0]["character"] == {"name": "Keeper", "bio": "keeps secrets"}
    for path in get_settings().state_dir.rglob("*"):
        if path.is_file() and "pgdata" not in path.parts:
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text
    with db.pool().connection() as conn:
        rows = conn.execute("select config::text as c from public.character_versions").fetchall()
    assert all(SECRET not in r["c"] for r in rows)
    assert environ(agent["id"])["DISCORD_API_TOKEN"] == SECRET


def test_an_update_without_secrets_keeps_them_and_null_or_empty_removes_one(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    character = {"name": "Holder", "bio": "b", "settings": {"secrets": {"FIRST_TOKEN": SECRET, "SECOND_TOKEN": OTHER}}}
    agent = create(functions, alice, character, cleanup_agents)

    update(functions, alice, agent["id"], {"name": "Holder", "bio": "a new bio"})
    env = environ(agent["id"])
    assert (env["FIRST_TOKEN"], env["SECOND_TOKEN"]) == (SECRET, OTHER)

    removal = {"name": "Holder", "bio": "b", "settings": {"secrets": {"FIRST_TOKEN": None}}}
    update(functions, alice, agent["id"], removal)
    env = environ(agent["id"])
    assert "FIRST_TOKEN" not in env and env["SECOND_TOKEN"] == OTHER

    update(functions, alice, agent["id"], {"name": "Holder", "bio": "b", "secrets": {"SECOND_TOKEN": ""}})
    assert "SECOND_TOKEN" not in environ(agent["id"])


def test_the_issues_attack_is_a_422_naming_each_secret_and_nothing_runs(
        functions: Functions, alice: User, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    attack = {"PYTHONWARNINGS": "all:0:antigravity.x:0:0", "BROWSER": "perlthanks",
              "PERL5OPT": f"-Mbase;system('touch {marker}');exit;"}
    resp = functions.post("create_agent", alice.token,
                          {"character": {"name": "Mallory", "bio": "b", "settings": {"secrets": attack}}})
    assert resp.status_code == 422, resp.get_json()
    locs = [d["loc"] for d in resp.get_json()["error"]["details"]]
    assert sorted(locs) == sorted(["character", "settings", "secrets", name] for name in attack)
    assert functions.get("list_agents", alice.token).get_json()["agents"] == []
    assert not marker.exists()


def test_a_secret_name_stored_before_the_rules_stops_the_start_naming_it(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, {"name": "Old", "bio": "b"}, cleanup_agents)
    functions.post("hibernate_agent", alice.token, {"agent_id": agent["id"]})
    with db.pool().connection() as conn:
        repository.put_secrets(conn, agent["character_id"], alice.id, ["NODE_OPTIONS"],
                               vault.seal({"NODE_OPTIONS": "--require /tmp/evil.js"}))
    resp = functions.post("wake_agent", alice.token, {"agent_id": agent["id"]})
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["details"][0]["loc"] == ["character", "settings", "secrets", "NODE_OPTIONS"]
    assert functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]["status"] == "error"


def test_a_user_base_url_never_receives_the_platform_key(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    platform_key = f"sk-or-platform-{uuid.uuid4()}"
    monkeypatch.setenv("OPENROUTER_API_KEY", platform_key)
    monkeypatch.setenv("PARADYZE_SECRET_FOR_THE_PLATFORM_ONLY", "platform-only")
    secrets = {"OPENROUTER_BASE_URL": "http://127.0.0.1:9/attacker"}
    agent = create(functions, alice, {"name": "Router", "bio": "b", "settings": {"secrets": secrets}}, cleanup_agents)
    env = environ(agent["id"])
    assert env["OPENROUTER_BASE_URL"] == secrets["OPENROUTER_BASE_URL"]
    assert platform_key not in env.values()
    assert "PARADYZE_SECRET_FOR_THE_PLATFORM_ONLY" not in env

    # Without the user's URL, the platform's key does reach the agent.
    other = create(functions, alice, {"name": "Plain", "bio": "b"}, cleanup_agents)
    assert environ(other["id"])["OPENROUTER_API_KEY"] == platform_key


def test_the_agent_runs_the_runtime_character_from_its_own_folder(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice, fixture_characters()["chatdkg"], cleanup_agents)
    home = get_settings().agent_home(agent["id"])
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    character = json.loads((home / "character.json").read_text())
    assert not {"lore", "clients", "modelProvider"} & set(character)
    assert character["plugins"][0] == "@elizaos/plugin-sql" and character["plugins"][-1] == "@elizaos/plugin-bootstrap"
    argv = command_line(agent["id"])
    assert argv[argv.index("--character") + 1] == str(home / "character.json")
    versions = functions.get("character_versions", alice.token, agent_id=agent["id"]).get_json()["versions"]
    assert "lore" in versions[0]["character"]  # the stored version is what the user uploaded

    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "hello"})
    assert resp.status_code == 200, resp.get_json()


def test_the_reference_agent_fills_the_runtime_characters_placeholders() -> None:
    runtime = for_runtime({"name": "Ada", "bio": "b", "messageExamples": [[
        {"user": "{{user1}}", "content": {"text": "hi, I am {{user1}}"}},
        {"user": "Ada", "content": {"text": "hello {{user1}}"}}]]}, set())
    persona = Persona(runtime)
    assert persona.offline_reply("hi, I am Bob", "Bob") == "hello Bob"


def test_a_plugin_that_is_not_installed_is_named_and_nothing_is_installed(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    resp = functions.post("create_agent", alice.token, {"character": fixture_characters()["sam-altman"]})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    cleanup_agents.append(agent["id"])
    warnings = resp.get_json()["warnings"]
    assert [w["loc"] for w in warnings] == [["character", "plugins", i] for i in range(3)]
    assert "web-search is not installed" in warnings[0]["msg"]
    home = get_settings().agent_home(agent["id"])
    character = json.loads((home / "character.json").read_text())
    assert not {"web-search", "reasoning", "analysis"} & set(character["plugins"])
    assert not (home / "node_modules").exists() and not (home / "package.json").exists()


def test_without_any_model_key_a_message_is_refused_naming_the_keys_and_not_sent(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    agent = create(functions, alice, {"name": "Mute", "bio": "b"}, cleanup_agents)
    assert agent["status"] == "running"  # it starts and answers health without a key
    # The ElizaOS server cannot answer without a model plugin; the reference agent has an offline mode.
    monkeypatch.setattr(get_settings(), "agent", "elizaos")
    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "hello?"})
    assert resp.status_code == 409, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "model_key_missing"
    assert all(k in error["message"] for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY"))
    assert "Retry-After" not in resp.headers
    after = functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]
    assert after["message_count"] == 0

    # A key of the user's own gives the agent a model plugin: the message goes through. The update
    # restarts the agent, on the double again: it answers offline, not through OpenAI.
    monkeypatch.setattr(get_settings(), "agent", "reference")
    update(functions, alice, agent["id"], {"name": "Mute", "bio": "b", "secrets": {"OPENAI_API_KEY": "sk-user"}})
    character = json.loads((get_settings().agent_home(agent["id"]) / "character.json").read_text())
    assert "@elizaos/plugin-openai" in character["plugins"]
    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "hello?"})
    assert resp.status_code == 200, resp.get_json()
