"""The real ElizaOS 1.7.2 on the process runtime: locked down, one world per owner, no process left behind.

Agents run in their owner's shared server (shared_hosts.py); test_elizaos_shared.py covers what
sharing adds. Slow (each server boot takes 6-25 s on this host); run by tests/run.sh like every other suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from helpers import Emulator, Functions, agent_processes, free_port
from paradyze.agent_keys import api_key
from paradyze.runtimes.base import AgentSpec
from paradyze.runtimes.process import ProcessRuntime
from paradyze.settings import Settings, get_settings
from tests.functions.runtimes.eliza_servers import NO_OWNER, servers_of, shared_servers

pytestmark = pytest.mark.elizaos
ELIZAOS = Settings(PARADYZE_AGENT="elizaos").elizaos_dir
BOOT_S = 240.0  # a loaded 2-core host; typical is 6-15 s
PLUGINS = ["@elizaos/plugin-sql", "@elizaos/plugin-bootstrap"]


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    if not (ELIZAOS / "app" / "node_modules" / "@elizaos" / "cli" / "dist" / "index.js").exists():
        pytest.fail(f"ElizaOS is not installed in {ELIZAOS}: run local_emulator/elizaos.sh (setup.sh does)")


def eliza_character(name: str, **extra: Any) -> dict[str, Any]:
    """A character ElizaOS 1.7.2's schema accepts as it is."""
    return {"name": name, "bio": [f"{name} is a test agent."], "plugins": PLUGINS,
            "messageExamples": [[{"name": "{{user1}}", "content": {"text": "ping"}},
                                 {"name": name, "content": {"text": "pong"}}]], **extra}


def eliza_process_runtime(label: str) -> Iterator[ProcessRuntime]:
    """A process runtime of ElizaOS agents in a home of its own; every agent it started is stopped after."""
    home = Path(tempfile.mkdtemp(prefix=f"paradyze-{label}-"))
    backend = ProcessRuntime(Settings(PARADYZE_HOME=home, PARADYZE_INSTANCE=f"{label}-{uuid.uuid4().hex[:6]}",
                                      PARADYZE_AGENT="elizaos", PARADYZE_AGENT_START_TIMEOUT=BOOT_S))
    yield backend
    for owned in backend.list_owned():
        backend.stop(owned.handle, grace=5.0)
    backend.close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def runtime() -> Iterator[ProcessRuntime]:
    yield from eliza_process_runtime("eliza")


def spec_for(tmp_path: Path, character: dict[str, Any]) -> AgentSpec:
    path = tmp_path / f"{uuid.uuid4().hex}.character.json"
    path.write_text(json.dumps(character))
    return AgentSpec(agent_id=str(uuid.uuid4()), character_path=path, character_version=1)


def wait_health(url: str, agent_id: str, proc_alive: Any = None) -> None:
    deadline = time.monotonic() + BOOT_S
    while time.monotonic() < deadline:
        if proc_alive is not None and not proc_alive():
            raise AssertionError(f"the server at {url} exited before answering health")
        try:
            if requests.get(f"{url}/api/server/health", headers={"X-API-KEY": api_key(agent_id)}, timeout=3).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise AssertionError(f"{url} never answered health")


# --- the runtime alone ---------------------------------------------------------------------------

def test_the_server_listens_only_on_loopback_and_refuses_calls_without_its_key(
        runtime: ProcessRuntime, tmp_path: Path) -> None:
    spec = spec_for(tmp_path, eliza_character("Warden"))
    started = runtime.start(spec)
    wait_health(started.url, spec.agent_id, lambda: runtime.alive(started.handle))
    info = json.loads(started.handle)

    listening = [c.laddr for p in psutil.Process(info["pid"]).children(recursive=True) + [psutil.Process(info["pid"])]
                 for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening and {addr.ip for addr in listening} == {"127.0.0.1"}
    assert info["port"] in {addr.port for addr in listening}

    for path in ("/api/server/health", "/api/agents"):
        assert requests.get(f"{started.url}{path}", timeout=10).status_code == 401
        assert requests.get(f"{started.url}{path}", headers={"X-API-KEY": "not-the-key"}, timeout=10).status_code == 401
    stop = requests.post(f"{started.url}/api/server/stop", timeout=10)
    assert stop.status_code == 401 and runtime.alive(started.handle)
    agents = requests.get(f"{started.url}/api/agents", headers={"X-API-KEY": api_key(spec.agent_id)}, timeout=10)
    assert [a["name"] for a in agents.json()["data"]["agents"]] == ["Warden"]

    # Its world is its owner's home, closed to everyone else: its database is there.
    home = runtime.settings.agent_home(f"owner-{NO_OWNER}")
    assert (home / "elizadb").is_dir()
    server = psutil.Process(info["pid"])
    assert server.cwd() == str(home)
    assert home.stat().st_mode & 0o777 == 0o700 and home.stat().st_uid == server.uids().real != 0
    env = server.environ()
    assert not {"PARADYZE_HOME", "DATABASE_URL", "PARADYZE_SECRETS_KEY", "SUPABASE_JWT_SECRET",
                "OPENAI_API_KEY"} & set(env)
    status = runtime.status(started.handle)
    assert status.alive and status.memory_bytes and status.memory_bytes > 50 * 2**20
    print(f"\nElizaOS idle RSS: {status.memory_bytes / 2**20:.0f} MB")


def test_a_character_naming_an_unknown_plugin_installs_nothing(runtime: ProcessRuntime, tmp_path: Path) -> None:
    modules = ELIZAOS / "app" / "node_modules"

    def installed() -> set[str]:
        return {p.name for p in modules.iterdir()} | {f"@elizaos/{p.name}" for p in (modules / "@elizaos").iterdir()}

    before, lock_before = installed(), (ELIZAOS / "app" / "bun.lock").read_bytes()
    spec = spec_for(tmp_path, eliza_character("Greedy", plugins=[*PLUGINS, "@elizaos/plugin-not-a-real-one",
                                                                 "analysis"]))
    started = runtime.start(spec)
    deadline = time.monotonic() + BOOT_S
    while time.monotonic() < deadline and runtime.alive(started.handle):
        try:
            if requests.get(f"{started.url}/api/server/health",
                            headers={"X-API-KEY": api_key(spec.agent_id)}, timeout=3).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.25)
    runtime.stop(started.handle, grace=5.0)

    assert installed() == before
    assert (ELIZAOS / "app" / "bun.lock").read_bytes() == lock_before
    for home in (runtime.settings.agent_home(spec.agent_id), runtime.settings.agent_home(f"owner-{NO_OWNER}")):
        found = [p for p in home.rglob("*") if p.name in ("node_modules", "package.json", "bun.lock", "analysis")]
        assert found == [], found
    assert "analysis" not in installed()


def test_kill_9_of_leader_or_member_is_seen_and_stop_leaves_nothing_of_the_agent(
        runtime: ProcessRuntime, tmp_path: Path) -> None:
    spec = spec_for(tmp_path, eliza_character("Fragile"))
    started = runtime.start(spec)
    wait_health(started.url, spec.agent_id, lambda: runtime.alive(started.handle))
    info = json.loads(started.handle)
    assert runtime.alive(started.handle)
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runtime.alive(started.handle) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not runtime.alive(started.handle)
    assert not runtime.status(started.handle).alive
    runtime.stop(started.handle, grace=2.0)
    assert servers_of(spec.agent_id) == []
    assert runtime.list_owned() == []

    # A new start of the same agent reuses its home and its database, and only one server runs.
    again = runtime.start(spec)
    wait_health(again.url, spec.agent_id, lambda: runtime.alive(again.handle))
    assert [o.agent_id for o in runtime.list_owned()] == [spec.agent_id]
    assert len(servers_of(spec.agent_id)) == 1


@pytest.mark.parametrize("hosting", ["shared", "own"])
def test_a_port_taken_by_someone_else_fails_the_start_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hosting: str) -> None:
    import socket

    from paradyze.errors import AgentStartFailed
    from paradyze.runtimes import process, shared_hosts

    runtime = ProcessRuntime(Settings(
        PARADYZE_HOME=tmp_path / "home", PARADYZE_INSTANCE=f"eliza-{uuid.uuid4().hex[:6]}", PARADYZE_AGENT="elizaos",
        PARADYZE_AGENT_START_TIMEOUT=BOOT_S, PARADYZE_AGENT_HOSTING=hosting, PARADYZE_AGENT_POOL=0))
    squatter = socket.create_server(("127.0.0.1", 0))
    taken = squatter.getsockname()[1]
    monkeypatch.setattr(process, "_free_port", lambda host: taken)  # the race, made certain
    monkeypatch.setattr(shared_hosts, "free_port", lambda host: taken)
    spec = spec_for(tmp_path, eliza_character("Mover"))
    try:
        with pytest.raises(AgentStartFailed, match=f"not on its port {taken}"):
            runtime.start(spec)
    finally:
        squatter.close()
    assert runtime.list_owned() == []
    assert servers_of(spec.agent_id) == []
    assert [p for p in shared_servers() if p.environ().get("PARADYZE_INSTANCE_KEY") ==
            runtime.settings.instance_key] == []


# --- through the functions -------------------------------------------------------------------------

@pytest.fixture
def eliza_functions(functions: Functions, configure: Callable[..., None]) -> Functions:
    """The in-process functions with PARADYZE_AGENT=elizaos."""
    configure(PARADYZE_AGENT="elizaos", PARADYZE_AGENT_START_TIMEOUT=str(BOOT_S))
    return functions


def create(functions: Functions, token: str, character: dict[str, Any]) -> dict[str, Any]:
    resp = functions.post("create_agent", token, {"character": character})
    assert resp.status_code == 201, resp.get_json()
    return dict(resp.get_json()["agent"])


def test_health_check_repairs_a_killed_server_and_one_server_runs(
        eliza_functions: Functions, admin_token: str, cleanup_agents: list[str]) -> None:
    agent = create(eliza_functions, admin_token, eliza_character("Phoenix"))
    cleanup_agents.append(agent["id"])
    [server] = servers_of(agent["id"])
    server.kill()
    psutil.wait_procs([server], timeout=10)
    assert servers_of(agent["id"]) == []

    report = eliza_functions.get("health_check", admin_token).get_json()
    assert agent["id"] in report["repairs"]["restarted"], report
    after = eliza_functions.get("get_agent", admin_token, agent_id=agent["id"]).get_json()["agent"]
    assert after["status"] == "running"
    assert len(servers_of(agent["id"])) == 1


def test_hibernate_and_delete_leave_no_process_and_memory_lives_in_the_owners_home(
        eliza_functions: Functions, admin_token: str, cleanup_agents: list[str]) -> None:
    agent = create(eliza_functions, admin_token, eliza_character("Sleeper"))
    home = get_settings().agent_home(f"owner-{NO_OWNER}")
    assert len(servers_of(agent["id"])) == 1
    assert (home / "elizadb").is_dir()

    resp = eliza_functions.post("hibernate_agent", admin_token, {"agent_id": agent["id"]})
    assert resp.status_code == 200 and resp.get_json()["agent"]["status"] == "hibernated"
    assert servers_of(agent["id"]) == [] and _servers_of_this_instance() == []  # its last agent slept
    kept = sorted(p.name for p in (home / "elizadb").iterdir())
    assert kept  # its memory stays while it sleeps

    resp = eliza_functions.post("wake_agent", admin_token, {"agent_id": agent["id"]})
    assert resp.status_code == 200 and resp.get_json()["agent"]["status"] == "running", resp.get_json()
    assert len(servers_of(agent["id"])) == 1

    resp = eliza_functions.post("delete_agent", admin_token, {"agent_id": agent["id"]})
    assert resp.status_code == 200
    assert servers_of(agent["id"]) == [] and _servers_of_this_instance() == []
    assert not get_settings().agent_home(agent["id"]).exists()

    # Its memory went with it: the owner's database no longer knows it.
    other = create(eliza_functions, admin_token, eliza_character("Successor"))
    cleanup_agents.append(other["id"])
    listed = requests.get(f"{other['url']}/api/agents", headers={"X-API-KEY": api_key(other["id"])}, timeout=30)
    assert [a["id"] for a in listed.json()["data"]["agents"]] == [other["id"]]


def _servers_of_this_instance() -> list[psutil.Process]:
    return [p for p in shared_servers() if p.environ().get("PARADYZE_INSTANCE_KEY") == get_settings().instance_key]


@pytest.mark.e2e
def test_ctrl_c_of_the_emulator_leaves_no_agent_process(tmp_path: Path) -> None:
    emu = Emulator(home=tmp_path / "home", port=free_port(),
                   extra_env={"PARADYZE_AGENT": "elizaos", "PARADYZE_AGENT_START_TIMEOUT": str(BOOT_S),
                              "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "", "OPENROUTER_API_KEY": ""})
    emu.home.mkdir()
    emu.start()
    try:
        assert "No model key is set" in emu.log.read_text()
        resp = emu.post("create_agent", {"character": eliza_character("Interrupted")})
        assert resp.status_code == 201, resp.text
        agent_id = resp.json()["agent"]["id"]
        assert len(_servers_of_instance("e2e-")) == 1
    finally:
        emu.stop(signal.SIGINT)
    assert agent_id not in agent_processes("e2e-")
    assert _servers_of_instance("e2e-", listening=False) == []  # the warm pool's servers too


def _servers_of_instance(prefix: str, *, listening: bool = True) -> list[psutil.Process]:
    found = []
    for proc in shared_servers(listening=listening):
        try:
            if proc.environ().get("PARADYZE_INSTANCE_KEY", "").startswith(prefix):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _group_of(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, PermissionError):
        return None
