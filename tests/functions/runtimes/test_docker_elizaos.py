"""The real ElizaOS 1.7.2 in its image, run by the docker runtime: locked down, and its memory kept."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from paradyze import agent_keys
from paradyze.runtimes.base import AgentSpec, Started
from paradyze.runtimes.docker import AGENT_NETWORK, LABEL_INSTANCE, DockerRuntime
from paradyze.runtimes.images import ELIZAOS_IMAGE
from paradyze.settings import Settings

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


def test_the_image_runs_from_character_json_as_cloud_run_starts_it(
    runtime: DockerRuntime, settings: Settings, docker_client: Any
) -> None:
    # Cloud Run mounts no file and names the port in PORT: the character comes base64-encoded.
    character = {**CHARACTER, "name": "Cirrus"}
    key = f"key-{uuid.uuid4().hex}"
    container = docker_client.containers.run(
        ELIZAOS_IMAGE,
        detach=True,
        environment={
            "CHARACTER_JSON": base64.b64encode(json.dumps(character).encode()).decode(),
            "PORT": "8080",
            "ELIZA_SERVER_AUTH_TOKEN": key,
        },
        labels={LABEL_INSTANCE: settings.instance_key},  # removed with the runtime's containers
        mem_limit="1g",
    )
    container.reload()
    url = f"http://{container.attrs['NetworkSettings']['IPAddress']}:8080"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            agents = requests.get(f"{url}/api/agents", headers={"X-API-KEY": key}, timeout=5)
            if agents.ok:
                break
        except requests.RequestException:
            pass
        container.reload()
        assert container.status == "running", container.logs(tail=40).decode(errors="replace")
        assert time.monotonic() < deadline, f"ElizaOS not answering within {START_TIMEOUT:g}s"
        time.sleep(0.25)
    assert [a["name"] for a in agents.json()["data"]["agents"]] == ["Cirrus"]
