"""The real ElizaOS 1.7.2 in its image, run by the docker runtime: locked down, and its memory kept."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers import Functions
from paradyze import agent_keys
from paradyze.agent_client import AgentClient
from paradyze.runtimes.base import AgentSpec, Started
from paradyze.runtimes.docker import AGENT_NETWORK, LABEL_AGENT, LABEL_INSTANCE, DockerRuntime
from paradyze.runtimes.images import ELIZAOS_IMAGE
from paradyze.settings import Settings, get_settings
from tests.fakes.model_server import FakeModelServer

# A real server starts in about 6 s on an idle machine; a loaded one takes several times that.
START_TIMEOUT = 240.0
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

CHARACTER = {
    "name": "Harbor",
    "bio": ["An ElizaOS agent that lives in a container."],
    "plugins": ["@elizaos/plugin-sql", "@elizaos/plugin-bootstrap"],
}


@pytest.fixture
def settings(tmp_path: Path, docker_client: Any) -> Settings:
    import docker

    try:
        docker_client.images.get(ELIZAOS_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{ELIZAOS_IMAGE} missing; build it with local_emulator/docker_images.sh")
    # Only PARADYZE_AGENT names the server: image and memory limit are the ElizaOS defaults.
    return Settings(
        PARADYZE_HOME=tmp_path / "home",
        PARADYZE_INSTANCE=f"eliza-{uuid.uuid4().hex[:8]}",
        PARADYZE_AGENT="elizaos",
        PARADYZE_AGENT_START_TIMEOUT=START_TIMEOUT,
    )


@pytest.fixture
def runtime(settings: Settings, docker_client: Any) -> Iterator[DockerRuntime]:
    yield DockerRuntime(settings)
    for container in docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_INSTANCE}={settings.instance_key}"}
    ):
        container.remove(force=True)


@pytest.fixture
def spec(settings: Settings) -> AgentSpec:
    """An agent whose runtime character sits in its own folder, as the platform writes it."""
    agent_id = str(uuid.uuid4())
    home = settings.agent_home(agent_id)
    home.mkdir(parents=True)
    (home / "character.json").write_text(json.dumps(CHARACTER))
    return AgentSpec(agent_id=agent_id, character_path=home / "character.json", character_version=1)


def key_of(spec: AgentSpec) -> dict[str, str]:
    return {"X-API-KEY": agent_keys.api_key(spec.agent_id)}


def start_healthy(runtime: DockerRuntime, spec: AgentSpec) -> Started:
    started = runtime.start(spec)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if requests.get(f"{started.url}/api/server/health", headers=key_of(spec), timeout=5).ok:
                return started
        except requests.RequestException:
            pass
        assert runtime.alive(started.handle), "\n".join(runtime.logs(started.handle, tail=40))
        assert time.monotonic() < deadline, f"ElizaOS not healthy within {START_TIMEOUT:g}s"
        time.sleep(0.25)


def api(started: Started, spec: AgentSpec, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, f"{started.url}{path}", headers=key_of(spec), timeout=30, **kwargs)
    assert response.ok, f"{method} {path}: {response.status_code} {response.text[:300]}"
    return response.json()


def test_the_server_answers_only_with_its_key_and_publishes_nothing(
    runtime: DockerRuntime, spec: AgentSpec, settings: Settings, docker_client: Any
) -> None:
    started = start_healthy(runtime, spec)

    health = requests.get(f"{started.url}/api/server/health", headers=key_of(spec), timeout=5).json()
    assert health["status"] == "OK"
    agents = api(started, spec, "GET", "/api/agents")["data"]["agents"]
    assert [a["name"] for a in agents] == ["Harbor"]
    for headers in ({}, {"X-API-KEY": "guess"}, {"X-API-KEY": agent_keys.api_key(str(uuid.uuid4()))}):
        refused = requests.get(f"{started.url}/api/agents", headers=headers, timeout=5)
        assert refused.status_code == 401, headers
    assert requests.post(f"{started.url}/api/server/stop", timeout=5).status_code == 401
    assert runtime.alive(started.handle)

    container = docker_client.containers.get(started.handle)
    assert container.image.tags == [ELIZAOS_IMAGE]
    assert not container.attrs["HostConfig"].get("PortBindings")
    assert all(not bindings for bindings in (container.ports or {}).values())
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [AGENT_NETWORK]
    assert container.attrs["HostConfig"]["Memory"] == 1024**3
    assert container.attrs["Config"]["User"] == "10001:10001"
    # Its memory is in the agent's own folder on the host, written by the container's user.
    home = settings.agent_home(spec.agent_id)
    assert (home / "elizadb").is_dir() and (home / "elizadb").stat().st_uid == 10001
    # Idle, it fits its limit with room to spare.
    status = runtime.status(started.handle)
    assert status.memory_bytes is not None
    print(f"\nidle ElizaOS container: {status.memory_bytes / 2**20:.0f} MiB of 1024 MiB")
    assert status.memory_bytes < 0.8 * 1024**3


def test_memory_survives_stop_and_start_on_the_same_folder(
    runtime: DockerRuntime, spec: AgentSpec, docker_client: Any
) -> None:
    first = start_healthy(runtime, spec)
    [agent] = api(first, spec, "GET", "/api/agents")["data"]["agents"]
    room = f"Harbor office {uuid.uuid4().hex[:6]}"
    created = api(first, spec, "POST", f"/api/agents/{agent['id']}/rooms", json={"name": room})
    assert created["data"]["name"] == room

    runtime.stop(first.handle, grace=10)
    assert docker_client.containers.list(all=True, filters={"name": runtime.container_name(spec.agent_id)}) == []
    assert not runtime.alive(first.handle)

    second = start_healthy(runtime, spec)
    assert second.handle != first.handle
    rooms = api(second, spec, "GET", f"/api/agents/{agent['id']}/rooms")["data"]["rooms"]
    assert room in [r["name"] for r in rooms]
    runtime.stop(second.handle, grace=10)
    assert runtime.list_owned() == []


def test_a_killed_container_is_seen_dead(runtime: DockerRuntime, spec: AgentSpec, docker_client: Any) -> None:
    started = start_healthy(runtime, spec)
    docker_client.containers.get(started.handle).kill()

    deadline = time.monotonic() + 30
    while runtime.alive(started.handle):
        assert time.monotonic() < deadline, "container still running after docker kill"
        time.sleep(0.1)
    status = runtime.status(started.handle)
    assert (status.state, status.alive, status.exit_code) == ("exited", False, 137)
    with pytest.raises(requests.RequestException):
        requests.get(f"{started.url}/api/server/health", headers=key_of(spec), timeout=2)


def test_a_character_naming_plugins_that_are_not_installed_installs_nothing(
    runtime: DockerRuntime, spec: AgentSpec, settings: Settings, docker_client: Any
) -> None:
    # The platform refuses such a character (422) before it starts; this is the runtime's own guard.
    greedy = {**CHARACTER, "plugins": [*CHARACTER["plugins"], "@elizaos/plugin-not-a-real-one", "analysis"]}
    spec.character_path.write_text(json.dumps(greedy))
    started = runtime.start(spec)
    deadline = time.monotonic() + START_TIMEOUT
    while runtime.alive(started.handle) and time.monotonic() < deadline:
        try:
            if requests.get(f"{started.url}/api/server/health", headers=key_of(spec), timeout=5).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.25)
    container = docker_client.containers.get(started.handle)
    changed = [c["Path"] for c in container.diff() or []]
    runtime.stop(started.handle, grace=10)

    assert not [path for path in changed if path.startswith("/opt")], changed  # the image's install is untouched
    home = settings.agent_home(spec.agent_id)
    found = [p for p in home.rglob("*") if p.name in ("node_modules", "package.json", "bun.lock", "analysis")]
    assert found == [], found


@pytest.fixture
def model(runtime: DockerRuntime) -> Iterator[FakeModelServer]:
    # A container reaches this host at its network's gateway, not at 127.0.0.1: the fake listens there.
    with FakeModelServer(host=runtime.gateway()) as server:
        yield server


def test_a_fact_told_before_a_restart_reaches_the_model_after_it(
    runtime: DockerRuntime, spec: AgentSpec, model: FakeModelServer, docker_client: Any
) -> None:
    character = {**CHARACTER, "plugins": [*CHARACTER["plugins"], "@elizaos/plugin-openai"]}
    spec.character_path.write_text(json.dumps(character))
    with_model = AgentSpec(
        agent_id=spec.agent_id,
        character_path=spec.character_path,
        character_version=1,
        env={"OPENAI_API_KEY": "sk-fake-model", "OPENAI_BASE_URL": model.base_url},
    )
    alice = str(uuid.uuid4())
    first = start_healthy(runtime, with_model)
    with AgentClient() as client:
        replies = client.send_message(first.url, spec.agent_id, "My locker code is 7319.", alice, timeout=START_TIMEOUT)
    assert [r["text"] for r in replies] == ["Hello from the fake model."]
    runtime.stop(first.handle, grace=10)
    assert docker_client.containers.list(all=True, filters={"name": runtime.container_name(spec.agent_id)}) == []

    second = start_healthy(runtime, with_model)  # a new container on the same folder
    seen = len(model.prompts)
    model.reply("It is 7319.")
    with AgentClient() as client:
        replies = client.send_message(
            second.url, spec.agent_id, "What is my locker code?", alice, timeout=START_TIMEOUT
        )
    assert [r["text"] for r in replies] == ["It is 7319."]
    prompts = [p for p in model.prompts[seen:] if "What is my locker code?" in p]
    assert prompts and "My locker code is 7319." in prompts[0], "what was said before the restart"
    status = runtime.status(second.handle)
    assert status.memory_bytes is not None
    print(f"\nElizaOS container after two replies: {status.memory_bytes / 2**20:.0f} MiB of 1024 MiB")


def test_the_image_runs_from_character_json_as_cloud_run_starts_it(
    runtime: DockerRuntime, settings: Settings, docker_client: Any
) -> None:
    # Cloud Run mounts no file and names the port in PORT: the character comes base64-encoded, and
    # the agent's key (with the rest of its environment) as JSON from its Secret Manager secret.
    character = {**CHARACTER, "name": "Cirrus"}
    key = f"key-'$(id)'-{uuid.uuid4().hex}"  # quotes and a command substitution stay plain text
    container = docker_client.containers.run(
        ELIZAOS_IMAGE,
        detach=True,
        environment={
            "CHARACTER_JSON": base64.b64encode(json.dumps(character).encode()).decode(),
            "PORT": "8080",
            "PARADYZE_AGENT_ENV": json.dumps({"ELIZA_SERVER_AUTH_TOKEN": key}),
        },
        labels={LABEL_INSTANCE: settings.instance_key},
        mem_limit="1g",
    )
    try:
        container.reload()
        url = f"http://{container.attrs['NetworkSettings']['IPAddress']}:8080"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                agents = requests.get(f"{url}/api/agents", headers={"X-API-KEY": key}, timeout=5)
                # The server answers before it has registered the character: wait for it to list one.
                if agents.ok and agents.json()["data"]["agents"]:
                    break
            except requests.RequestException:
                pass
            container.reload()
            assert container.status == "running", container.logs(tail=40).decode(errors="replace")
            assert time.monotonic() < deadline, f"ElizaOS not answering within {START_TIMEOUT:g}s"
            time.sleep(0.25)
        assert [a["name"] for a in agents.json()["data"]["agents"]] == ["Cirrus"]
        assert requests.get(f"{url}/api/agents", headers={"X-API-KEY": "key-"}, timeout=5).status_code == 401
    finally:  # started by hand, not by the runtime: nothing else would stop it
        container.remove(force=True)


# --- through the functions -------------------------------------------------------------------------


@pytest.fixture
def docker_functions(functions: Functions, configure: Callable[..., None]) -> Functions:
    """The in-process functions running ElizaOS agents on the docker runtime."""
    configure(PARADYZE_AGENT="elizaos", PARADYZE_RUNTIME="docker", PARADYZE_AGENT_START_TIMEOUT=str(START_TIMEOUT))
    return functions


def containers_of(docker_client: Any, agent_id: str, status: str | None = None) -> list[Any]:
    found = docker_client.containers.list(all=True, filters={"label": f"{LABEL_AGENT}={agent_id}"})
    return [c for c in found if status is None or c.status == status]


def test_health_check_restarts_a_killed_container_and_hibernate_wake_delete_keep_one_or_none(
    docker_functions: Functions, admin_token: str, cleanup_agents: list[str], docker_client: Any
) -> None:
    resp = docker_functions.post("create_agent", admin_token, {"character": {**CHARACTER, "name": "Phoenix"}})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    cleanup_agents.append(agent["id"])
    assert (agent["runtime"], agent["status"]) == ("docker", "running")
    [container] = containers_of(docker_client, agent["id"], "running")
    home = get_settings().agent_home(agent["id"])
    assert (home / "elizadb").is_dir()

    container.kill()
    report = docker_functions.get("health_check", admin_token).get_json()
    assert agent["id"] in report["repairs"]["restarted"], report
    after = docker_functions.get("get_agent", admin_token, agent_id=agent["id"]).get_json()["agent"]
    assert after["status"] == "running"
    [restarted] = containers_of(docker_client, agent["id"])
    assert restarted.status == "running" and restarted.id != container.id

    resp = docker_functions.post("hibernate_agent", admin_token, {"agent_id": agent["id"]})
    assert resp.status_code == 200 and resp.get_json()["agent"]["status"] == "hibernated"
    assert containers_of(docker_client, agent["id"]) == []
    assert any((home / "elizadb").iterdir())  # its memory stays while it sleeps

    resp = docker_functions.post("wake_agent", admin_token, {"agent_id": agent["id"]})
    assert resp.status_code == 200 and resp.get_json()["agent"]["status"] == "running", resp.get_json()
    assert len(containers_of(docker_client, agent["id"], "running")) == 1

    resp = docker_functions.post("delete_agent", admin_token, {"agent_id": agent["id"]})
    assert resp.status_code == 200
    assert containers_of(docker_client, agent["id"]) == []
    assert not home.exists()
