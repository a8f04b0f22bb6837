"""The functions through functions-framework's test client, on real Postgres and real agent processes."""

from __future__ import annotations

import errno
import json
import os
import signal
import tarfile
import time
from pathlib import Path

import psycopg
import pytest

from helpers import FIXTURES, Functions, User, agent_processes, fixture_characters
from paradyze import backup, db
from paradyze.characters import sha256_hex
from paradyze.settings import get_settings

CHARACTERS = fixture_characters()
SECRET = "sk-or-v1-TESTSECRET-9f8e7d6c5b4a"


def create(functions: Functions, token: str, character: dict, cleanup: list[str], **extra: object) -> dict:
    resp = functions.post("create_agent", token, {"character": character, **extra})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    cleanup.append(agent["id"])
    return agent


def pid_of(agent_id: str) -> int:
    with db.pool().connection() as conn:
        row = conn.execute("select runtime_handle from public.agents where id = %s", (agent_id,)).fetchone()
    assert row and row["runtime_handle"], "the agent has no runtime handle"
    return int(json.loads(row["runtime_handle"])["pid"])


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@pytest.mark.parametrize("name", sorted(CHARACTERS))
def test_each_fixture_becomes_a_running_agent_that_answers(
        functions: Functions, alice: User, cleanup_agents: list[str], name: str) -> None:
    agent = create(functions, alice.token, CHARACTERS[name], cleanup_agents)
    assert agent["status"] == "running"
    assert agent["name"] == CHARACTERS[name]["name"]
    assert agent["character_version"] == 1
    assert agent["owner"] == alice.id
    assert alive(pid_of(agent["id"]))

    resp = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "hello, who are you?"})
    assert resp.status_code == 200, resp.get_json()
    replies = resp.get_json()["replies"]
    assert replies and all(r["text"].strip() for r in replies)


def test_hibernate_stops_the_process_and_wake_brings_it_back(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice.token, CHARACTERS["eliza-default"], cleanup_agents)
    pid = pid_of(agent["id"])

    resp = functions.post("hibernate_agent", alice.token, {"agent_id": agent["id"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["agent"]["status"] == "hibernated"
    assert resp.get_json()["agent"]["url"] is None
    assert not alive(pid)
    assert agent["id"] not in agent_processes()
    again = functions.post("hibernate_agent", alice.token, {"agent_id": agent["id"]})
    assert again.status_code == 200 and again.get_json()["agent"]["status"] == "hibernated"

    resp = functions.post("wake_agent", alice.token, {"agent_id": agent["id"]})
    assert resp.status_code == 200, resp.get_json()
    woke = resp.get_json()["agent"]
    assert woke["status"] == "running" and woke["running_version"] == 1
    assert alive(pid_of(agent["id"]))
    again = functions.post("wake_agent", alice.token, {"agent_id": agent["id"]})
    assert again.get_json()["agent"]["url"] == woke["url"]  # idempotent: the same instance
    reply = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "still there?"})
    assert reply.status_code == 200 and reply.get_json()["replies"]

    events = functions.get("agent_events", alice.token, agent_id=agent["id"]).get_json()["events"]
    moves = [(e["from_status"], e["to_status"]) for e in reversed(events) if e["to_status"]]
    assert moves == [(None, "provisioning"), ("provisioning", "running"), ("running", "hibernating"),
                     ("hibernating", "hibernated"), ("hibernated", "waking"), ("waking", "running")]


def test_another_users_agent_is_not_found(
        functions: Functions, alice: User, bob: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice.token, CHARACTERS["sam-altman"], cleanup_agents)
    ref = {"agent_id": agent["id"]}
    for name in ("hibernate_agent", "wake_agent", "delete_agent", "update_policy"):
        resp = functions.post(name, bob.token, ref)
        assert resp.status_code == 404, (name, resp.get_json())
        assert resp.get_json()["error"]["code"] == "not_found"
    assert functions.post("send_message", bob.token, {**ref, "text": "hi"}).status_code == 404
    for name in ("get_agent", "character_versions", "agent_logs", "agent_events"):
        assert functions.get(name, bob.token, **ref).status_code == 404, name
    assert functions.get("list_agents", bob.token).get_json()["agents"] == []
    mine = functions.get("list_agents", alice.token).get_json()["agents"]
    assert [a["id"] for a in mine] == [agent["id"]]
    # ...and it is still running: bob's delete did nothing.
    assert functions.get("get_agent", alice.token, **ref).get_json()["agent"]["status"] == "running"


def test_rls_hides_other_users_rows_even_from_raw_sql(
        functions: Functions, alice: User, bob: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice.token, CHARACTERS["eliza-default"], cleanup_agents)
    from paradyze.auth import Caller

    as_bob = Caller(role="authenticated", user_id=bob.id, claims={"role": "authenticated", "sub": bob.id})
    with db.transaction(as_bob) as conn:
        assert conn.execute("select count(*) as n from public.agents").fetchone()["n"] == 0
        assert conn.execute("select count(*) as n from public.character_versions").fetchone()["n"] == 0
        updated = conn.execute("update public.agents set name = 'pwned' where id = %s", (agent["id"],))
        assert updated.rowcount == 0
    as_alice = Caller(role="authenticated", user_id=alice.id, claims={"role": "authenticated", "sub": alice.id})
    with db.transaction(as_alice) as conn:
        assert conn.execute("select count(*) as n from public.agents").fetchone()["n"] == 1
    # Users can never read secrets back, not even their own.
    with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction(as_alice) as conn:
        conn.execute("select * from public.character_secrets")


def test_secret_values_never_appear_in_responses_files_or_logs(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str],
        caplog: pytest.LogCaptureFixture) -> None:
    character = json.loads(json.dumps(CHARACTERS["chatdkg"]))
    character["settings"]["secrets"]["ANTHROPIC_API_KEY"] = SECRET
    agent = create(functions, alice.token, character, cleanup_agents)
    bodies = [
        *functions.everything_about(alice.token, agent["id"], "your api key?"),
        functions.get("health_check", admin_token).get_data(as_text=True),
        functions.post("backup_agents", admin_token).get_data(as_text=True),
    ]
    for body in bodies:
        assert SECRET not in body
    versions = json.loads(bodies[2])["versions"]
    assert "secrets" not in versions[0]["character"]["settings"]

    # The agent does get it, as an environment variable.
    environ = Path(f"/proc/{pid_of(agent['id'])}/environ").read_bytes()
    assert f"ANTHROPIC_API_KEY={SECRET}".encode() in environ

    home = get_settings().state_dir
    for path in home.rglob("*"):
        if path.is_file() and "pgdata" not in path.parts:
            data = path.read_bytes()
            if path.suffix == ".gz":
                with tarfile.open(path) as tar:
                    data = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
            assert SECRET.encode() not in data, path
    assert SECRET not in caplog.text
    with db.pool().connection() as conn:
        dump = conn.execute("select config::text as c from public.character_versions").fetchall()
        assert all(SECRET not in r["c"] for r in dump)


def test_backup_archive_manifest_checks_out(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    create(functions, alice.token, CHARACTERS["sam-altman"], cleanup_agents)
    resp = functions.post("backup_agents", admin_token)
    assert resp.status_code == 201, resp.get_json()
    backup = resp.get_json()["backup"]
    path = Path(backup["location"].removeprefix("file://"))
    assert sha256_hex(path.read_bytes()) == backup["sha256"]
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    manifest = json.loads(files.pop("manifest.json"))
    assert manifest["counts"]["versions"] == backup["versions"] == len(manifest["versions"]) == len(files)
    assert manifest["counts"]["characters"] == backup["characters"] >= 1
    for entry in manifest["versions"]:
        assert sha256_hex(files[entry["path"]]) == entry["sha256"]
    with db.pool().connection() as conn:
        stored = {(str(r["character_id"]), r["version"]): r["sha256"]
                  for r in conn.execute("select character_id, version, sha256 from public.character_versions")}
    assert {(e["character_id"], e["version"]): e["sha256"] for e in manifest["versions"]} == stored
    listed = functions.get("list_backups", admin_token).get_json()["backups"]
    assert backup["id"] in [b["id"] for b in listed]


def test_a_full_backup_disk_is_a_503_that_leaves_nothing_behind(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    create(functions, alice.token, CHARACTERS["eliza-default"], cleanup_agents)
    before = functions.get("list_backups", admin_token).get_json()["backups"]
    folder = get_settings().backups_dir
    files_before = set(folder.iterdir()) if folder.exists() else set()

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(backup, "_add", disk_full)
    resp = functions.post("backup_agents", admin_token)

    assert resp.status_code == 503, resp.get_json()
    assert "full" in resp.get_json()["error"]["message"] and resp.headers["Retry-After"]
    assert set(folder.iterdir()) == files_before  # no partial archive, no temporary file
    assert functions.get("list_backups", admin_token).get_json()["backups"] == before


def test_health_reports_a_killed_agent_and_then_restarts_it(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice.token, CHARACTERS["eliza-default"], cleanup_agents)
    pid = pid_of(agent["id"])
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.05)

    report = functions.get("health_check", admin_token, repair="false").get_json()
    mine = next(a for a in report["agents"] if a["agent_id"] == agent["id"])
    assert report["status"] == "degraded"
    assert mine["answering"] is False and mine["ok"] is False
    assert mine["desired_state"] == "running"
    assert report["platform"]["database"]["ok"] and report["platform"]["migrations"]["ok"]

    repaired = functions.get("health_check", admin_token).get_json()
    assert agent["id"] in repaired["repairs"]["restarted"]
    now = functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]
    assert now["status"] == "running" and now["restart_count"] == 1
    assert functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "back?"}).status_code == 200


def test_delete_removes_process_rows_and_files(functions: Functions, alice: User) -> None:
    agent = create(functions, alice.token, CHARACTERS["eliza-default"], [])
    pid = pid_of(agent["id"])
    resp = functions.post("delete_agent", alice.token, {"agent_id": agent["id"]})
    assert resp.status_code == 200 and resp.get_json()["agent"]["status"] == "deleted"
    assert not alive(pid)
    assert functions.get("get_agent", alice.token, agent_id=agent["id"]).status_code == 404
    assert not (get_settings().character_dir / agent["character_id"]).exists()
    assert functions.post("delete_agent", alice.token, {"agent_id": agent["id"]}).status_code == 404


def test_update_character_makes_a_new_immutable_version(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    agent = create(functions, alice.token, CHARACTERS["eliza-default"], cleanup_agents)
    changed = {**CHARACTERS["eliza-default"], "bio": ["A new bio."]}
    resp = functions.post("update_character", alice.token, {"agent_id": agent["id"], "character": changed})
    assert resp.status_code == 200, resp.get_json()
    updated = resp.get_json()["agent"]
    assert updated["character_version"] == 2 and updated["running_version"] == 2 and updated["status"] == "running"
    versions = functions.get("character_versions", alice.token, agent_id=agent["id"]).get_json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["character"]["bio"] == CHARACTERS["eliza-default"]["bio"]
    files = sorted((get_settings().character_dir / agent["character_id"]).glob("*.json"))
    assert [f.name for f in files] == ["v1.character.json", "v2.character.json"]
    assert all(not os.access(f, os.W_OK) or os.geteuid() == 0 for f in files)
    assert oct(files[0].stat().st_mode & 0o777) == "0o444"
    with db.pool().connection() as conn, pytest.raises(Exception, match="immutable"):
        conn.execute("update public.character_versions set sha256 = repeat('0', 64) where character_id = %s",
                     (agent["character_id"],))


def test_idempotency_key_returns_the_first_agent(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    payload = {"character": CHARACTERS["sam-altman"]}
    first = functions.post("create_agent", alice.token, payload, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    cleanup_agents.append(first.get_json()["agent"]["id"])
    second = functions.post("create_agent", alice.token, payload, headers={"Idempotency-Key": "k-1"})
    assert second.status_code == 200
    assert second.get_json()["agent"]["id"] == first.get_json()["agent"]["id"]
    assert second.get_json()["created"] is False
    assert len(functions.get("list_agents", alice.token).get_json()["agents"]) == 1
    other = functions.post("create_agent", alice.token, {"character": CHARACTERS["chatdkg"]},
                           headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409


def test_fixtures_dir_is_present() -> None:
    assert len(list(FIXTURES.glob("*.character.json"))) >= 3


def test_concurrent_retries_with_one_key_make_one_agent(
        functions: Functions, alice: User, cleanup_agents: list[str]) -> None:
    import concurrent.futures

    payload = {"character": CHARACTERS["eliza-default"]}

    def attempt(_: int) -> object:
        return functions.post("create_agent", alice.token, payload, headers={"Idempotency-Key": "same-click"})

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(attempt, range(6)))
    assert sorted(r.status_code for r in results) == [200] * 5 + [201]
    ids = {r.get_json()["agent"]["id"] for r in results}
    assert len(ids) == 1
    cleanup_agents.extend(ids)
    assert {r.get_json()["agent"]["status"] for r in results} == {"running"}
    assert len(agent_processes().get(ids.pop(), [])) == 1


def test_restore_brings_back_a_deleted_agent_with_its_versions_and_secrets(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    character = json.loads(json.dumps(CHARACTERS["chatdkg"]))
    character["settings"]["secrets"]["ANTHROPIC_API_KEY"] = SECRET
    agent = create(functions, alice.token, character, [])
    changed = {**character, "bio": ["Second version."]}
    functions.post("update_character", alice.token, {"agent_id": agent["id"], "character": changed})
    backup = functions.post("backup_agents", admin_token).get_json()["backup"]
    functions.post("delete_agent", alice.token, {"agent_id": agent["id"]})
    assert functions.get("get_agent", alice.token, agent_id=agent["id"]).status_code == 404

    resp = functions.post("restore_backup", admin_token, {"backup_id": backup["id"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["restore"]["agents"] == 1
    cleanup_agents.append(agent["id"])
    restored = functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]
    assert restored["status"] == "hibernated" and restored["character_version"] == 2 and restored["owner"] == alice.id
    versions = functions.get("character_versions", alice.token, agent_id=agent["id"]).get_json()["versions"]
    assert [v["character"]["bio"] for v in versions] == [character["bio"], ["Second version."]]
    # Again: nothing doubles.
    again = functions.post("restore_backup", admin_token, {"backup_id": backup["id"]}).get_json()["restore"]
    assert again["agents"] == again["versions"] == 0
    woke = functions.post("wake_agent", alice.token, {"agent_id": agent["id"]}).get_json()["agent"]
    assert woke["status"] == "running"
    assert f"ANTHROPIC_API_KEY={SECRET}".encode() in Path(f"/proc/{pid_of(agent['id'])}/environ").read_bytes()


def test_restore_refuses_an_archive_that_changed(functions: Functions, admin_token: str, alice: User,
                                                 cleanup_agents: list[str]) -> None:
    create(functions, alice.token, CHARACTERS["sam-altman"], cleanup_agents)
    backup = functions.post("backup_agents", admin_token).get_json()["backup"]
    path = Path(backup["location"].removeprefix("file://"))
    path.write_bytes(path.read_bytes() + b"tampered")
    resp = functions.post("restore_backup", admin_token, {"backup_id": backup["id"]})
    assert resp.status_code == 400 and "changed" in resp.get_json()["error"]["message"]


def test_admin_creates_an_agent_for_a_user_who_then_owns_it(
        functions: Functions, alice: User, bob: User, admin_token: str, cleanup_agents: list[str]) -> None:
    resp = functions.post("create_agent", admin_token, {"character": CHARACTERS["sam-altman"], "owner": alice.id})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    cleanup_agents.append(agent["id"])
    assert agent["owner"] == alice.id
    assert functions.get("get_agent", alice.token, agent_id=agent["id"]).status_code == 200
    assert functions.get("get_agent", bob.token, agent_id=agent["id"]).status_code == 404
    # A user may not plant an agent on someone else.
    other = functions.post("create_agent", bob.token, {"character": CHARACTERS["sam-altman"], "owner": alice.id})
    assert other.status_code == 403
    assert [a["id"] for a in functions.get("list_agents", alice.token).get_json()["agents"]] == [agent["id"]]
