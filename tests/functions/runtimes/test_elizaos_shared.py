"""The real ElizaOS 1.7.2 in servers shared by one owner's agents: what sharing must never change.

Agents of two owners never share a process, a uid, a database or a key; a crash of a shared server is
repaired for every agent on it; a wake finds a server even when the warm pool is empty, and the
agent remembers what it was told before it slept.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from helpers import Functions, User
from paradyze.agent_keys import api_key
from paradyze.runtimes.base import AgentSpec
from paradyze.runtimes.process import ProcessRuntime
from paradyze.runtimes.server_pool import ServerPool
from paradyze.settings import Settings, get_settings
from tests.fakes.model_server import FakeModelServer
from tests.functions.runtimes.eliza_servers import servers_of
from tests.functions.runtimes.test_elizaos_process import BOOT_S, eliza_character, eliza_process_runtime

pytestmark = pytest.mark.elizaos


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


@pytest.fixture
def runtime() -> Iterator[ProcessRuntime]:
    yield from eliza_process_runtime("shared")


def start(runtime: ProcessRuntime, owner: str, name: str) -> tuple[AgentSpec, dict[str, Any], str]:
    path = runtime.settings.state_dir / f"{uuid.uuid4().hex}.character.json"
    path.write_text(json.dumps(eliza_character(name)))
    spec = AgentSpec(agent_id=str(uuid.uuid4()), character_path=path, character_version=1, tenant=owner)
    started = runtime.start(spec)
    return spec, json.loads(started.handle), started.url


def get(url: str, path: str, key: str) -> int:
    return requests.get(f"{url}{path}", headers={"X-API-KEY": key}, timeout=30).status_code


def test_agents_of_two_owners_never_share_a_process_a_uid_a_database_or_a_key(runtime: ProcessRuntime) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    a1, a1_info, a_url = start(runtime, alice, "Ann")
    a2, a2_info, _ = start(runtime, alice, "Abe")
    b1, b1_info, b_url = start(runtime, bob, "Bea")

    assert a1_info["pid"] == a2_info["pid"] != b1_info["pid"]  # one server per owner
    a_server, b_server = psutil.Process(a1_info["pid"]), psutil.Process(b1_info["pid"])
    a_home, b_home = runtime.settings.agent_home(f"owner-{alice}"), runtime.settings.agent_home(f"owner-{bob}")
    assert a_server.cwd() == str(a_home) and b_server.cwd() == str(b_home)
    assert (a_home / "elizadb").is_dir() and (b_home / "elizadb").is_dir()
    assert a_home.stat().st_mode & 0o777 == b_home.stat().st_mode & 0o777 == 0o700
    assert a_home.stat().st_uid == a_server.uids().real != b_server.uids().real == b_home.stat().st_uid
    assert 0 not in (a_server.uids().real, b_server.uids().real)
    assert servers_of(a1.agent_id, alice) == [a_server] and servers_of(b1.agent_id, bob) == [b_server]

    # Each agent's key opens its own agent, and nothing of another owner's server or of its neighbours.
    assert get(a_url, f"/api/agents/{a1.agent_id}", api_key(a1.agent_id)) == 200
    assert get(a_url, f"/api/agents/{a2.agent_id}", api_key(a1.agent_id)) == 403
    assert get(a_url, "/api/server/health", api_key(b1.agent_id)) == 401
    assert get(b_url, "/api/server/health", api_key(a1.agent_id)) == 401
    assert get(a_url, "/_paradyze/agents", api_key(a1.agent_id)) == 401  # starting agents is the platform's
    assert get(a_url, "/_paradyze/agents", api_key(f"server:{bob}")) == 401
    listed = requests.get(f"{b_url}/api/agents", headers={"X-API-KEY": api_key(b1.agent_id)}, timeout=30)
    assert [a["id"] for a in listed.json()["data"]["agents"]] == [b1.agent_id]

    # A stopped agent's key opens nothing; the server stays for the owner's other agent, then goes.
    runtime.stop(json.dumps(a1_info), grace=5.0)
    assert get(a_url, "/api/server/health", api_key(a1.agent_id)) == 401
    assert get(a_url, "/api/server/health", api_key(a2.agent_id)) == 200
    runtime.stop(json.dumps(a2_info), grace=5.0)
    assert not a_server.is_running() and b_server.is_running()
    assert [o.agent_id for o in runtime.list_owned()] == [b1.agent_id]


@pytest.fixture
def on_shared_elizaos(functions: Functions, configure: Callable[..., None], model: FakeModelServer) -> Functions:
    """The in-process functions run ElizaOS in shared servers, with no warm pool, answering through the fake model."""
    configure(PARADYZE_AGENT="elizaos", PARADYZE_AGENT_START_TIMEOUT=str(BOOT_S), PARADYZE_AGENT_POOL="0",
              OPENAI_API_KEY="platform-test-key", OPENAI_BASE_URL=model.base_url)
    return functions


def call(functions: Functions, user: User, name: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = functions.post(name, user.token, body)
    assert resp.status_code in (200, 201), (name, resp.get_json())
    return dict(resp.get_json())


def test_a_crash_of_a_shared_server_is_repaired_for_every_agent_on_it(
        on_shared_elizaos: Functions, alice: User, admin_token: str, cleanup_agents: list[str]) -> None:
    agents = [call(on_shared_elizaos, alice, "create_agent", {"character": eliza_character(name)})["agent"]
              for name in ("Castor", "Pollux")]
    cleanup_agents.extend(a["id"] for a in agents)
    [server] = servers_of(agents[0]["id"], alice.id)
    assert servers_of(agents[1]["id"], alice.id) == [server]

    server.kill()
    psutil.wait_procs([server], timeout=10)
    report = on_shared_elizaos.get("health_check", admin_token).get_json()

    assert sorted(report["repairs"]["restarted"]) == sorted(a["id"] for a in agents), report
    [again] = servers_of(agents[0]["id"], alice.id)
    assert servers_of(agents[1]["id"], alice.id) == [again] and again.pid != server.pid
    for agent in agents:
        now = on_shared_elizaos.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]
        assert now["status"] == "running"
        assert get(now["url"], "/api/server/health", api_key(agent["id"])) == 200


def test_a_wake_while_the_pool_is_empty_boots_a_server_and_the_agent_remembers(
        on_shared_elizaos: Functions, alice: User, model: FakeModelServer, cleanup_agents: list[str]) -> None:
    agent = call(on_shared_elizaos, alice, "create_agent", {"character": eliza_character("Sleepy")})["agent"]
    cleanup_agents.append(agent["id"])
    model.reply("Noted.")
    call(on_shared_elizaos, alice, "send_message", {"agent_id": agent["id"], "text": "My kite is called Zephyrine."})

    call(on_shared_elizaos, alice, "hibernate_agent", {"agent_id": agent["id"]})
    assert servers_of(agent["id"], alice.id) == []
    # None runs, none waits in a pool (a server the previous test stopped may still be exiting).
    _, waiting = psutil.wait_procs([p for p in psutil.process_iter(["cmdline"]) if _server_here(p)], timeout=30)
    assert waiting == []
    asked = len(model.prompts)
    model.reply("Zephyrine.")
    answer = call(on_shared_elizaos, alice, "send_message",
                  {"agent_id": agent["id"], "text": "What is my kite called?"})

    assert answer["woke"] is True and answer["replies"][0]["text"] == "Zephyrine."
    assert any("What is my kite called?" in p and "Zephyrine" in p for p in model.prompts[asked:])
    assert len(servers_of(agent["id"], alice.id)) == 1


def _server_here(proc: psutil.Process, instance_key: str | None = None) -> bool:
    try:
        return any(a.endswith("eliza_host.mjs") for a in proc.info["cmdline"] or []) and \
            proc.environ().get("PARADYZE_INSTANCE_KEY") == (instance_key or get_settings().instance_key)
    except psutil.Error:
        return False


def test_a_pool_closed_while_it_refills_keeps_no_server_waiting(tmp_path: Path) -> None:
    settings = Settings(PARADYZE_HOME=tmp_path, PARADYZE_INSTANCE=f"pool-{uuid.uuid4().hex[:6]}",
                        PARADYZE_AGENT="elizaos", PARADYZE_AGENT_POOL=1)
    pool = ServerPool(settings)
    taken = pool.take()  # the pre-booted server; a refill starts booting the next in the background
    pool.close()
    for refill in [t for t in threading.enumerate() if t.name == "pool-refill"]:
        refill.join(timeout=30)
    try:
        waiting = [p for p in psutil.process_iter(["cmdline"])
                   if _server_here(p, settings.instance_key) and p.pid != taken.child.pid]
        assert waiting == []
    finally:
        taken.child.kill()
        taken.child.wait(timeout=5)
