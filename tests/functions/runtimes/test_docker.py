"""The docker runtime backend against a real Docker Engine and the reference agent image."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from paradyze import agent_keys
from paradyze.errors import AgentStartFailed
from paradyze.runtimes.base import AgentRuntime, AgentSpec
from paradyze.runtimes.docker import AGENT_NETWORK, LABEL_AGENT, LABEL_INSTANCE, LABEL_VERSION, DockerRuntime
from paradyze.settings import Settings

pytestmark = [pytest.mark.docker, pytest.mark.timeout(120)]

SECRET = "sk-or-v1-test-" + "9f3c" * 8
CHARACTER = {
    "name": "Dockerling",
    "bio": ["A test agent that lives in a container."],
    "lore": [],
    "messageExamples": [],
    "style": {"all": ["brief"]},
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # An instance name of its own: list_owned and cleanup never touch anyone else's containers.
    return Settings(
        PARADYZE_HOME=tmp_path / "home",
        PARADYZE_INSTANCE=f"test-{uuid.uuid4().hex[:8]}",
        PARADYZE_AGENT="reference",
        PARADYZE_DOCKER_MEMORY="256m",
        PARADYZE_DOCKER_CPUS=0.5,
    )


@pytest.fixture
def runtime(settings: Settings, docker_client: Any) -> Iterator[DockerRuntime]:
    yield DockerRuntime(settings)
    leftovers = docker_client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={settings.instance_key}"})
    for container in leftovers:
        container.remove(force=True)


@pytest.fixture
def character(tmp_path: Path) -> Path:
    path = tmp_path / "v1.character.json"
    path.write_text(json.dumps(CHARACTER))
    path.chmod(0o644)  # the agent runs as an unprivileged user inside the container
    return path


def spec_for(
    character: Path, agent_id: str | None = None, env: dict[str, str] | None = None, version: int = 1
) -> AgentSpec:
    return AgentSpec(
        agent_id=agent_id or str(uuid.uuid4()), character_path=character, character_version=version, env=env or {}
    )


def wait_healthy(url: str, agent_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(
                f"{url}/api/server/health", headers={"X-API-KEY": agent_keys.api_key(agent_id)}, timeout=2
            )
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"agent at {url} not healthy within {timeout}s")
        time.sleep(0.1)


def wait_not_running(runtime: DockerRuntime, handle: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while runtime.status(handle).state == "running":
        assert time.monotonic() < deadline, "container still running"
        time.sleep(0.1)


def test_is_an_agent_runtime(runtime: DockerRuntime) -> None:
    assert isinstance(runtime, AgentRuntime)
    assert runtime.kind == "docker"


def test_start_runs_a_named_labelled_limited_container_that_answers(
    runtime: DockerRuntime, settings: Settings, character: Path, docker_client: Any
) -> None:
    spec = spec_for(character, version=7)
    started = runtime.start(spec)

    container = docker_client.containers.get(started.handle)
    assert container.name == f"paradyze-{settings.instance_key}-{spec.agent_id}"
    assert container.labels[LABEL_AGENT] == spec.agent_id
    assert container.labels[LABEL_INSTANCE] == settings.instance_key
    assert container.labels[LABEL_VERSION] == "7"
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 256 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000
    assert host["RestartPolicy"]["Name"] in ("", "no")
    assert host["CapDrop"] == ["ALL"]
    assert container.attrs["Config"]["User"] == "10001:10001"
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    home = settings.agent_home(spec.agent_id)
    assert mounts["/agent"]["Source"] == str(home) and mounts["/agent"]["RW"] is True
    assert home.stat().st_uid == 10001  # the agent's own folder belongs to the container's user
    character_mount = mounts[settings.docker_character_path]
    assert character_mount["Source"] == str(character) and character_mount["RW"] is False

    # Reached at its address on the agent network, with nothing published on the host.
    assert not host.get("PortBindings")
    assert all(not bindings for bindings in (container.ports or {}).values())
    address = container.attrs["NetworkSettings"]["Networks"][AGENT_NETWORK]["IPAddress"]
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [AGENT_NETWORK]
    assert started.url == f"http://{address}:{settings.docker_agent_port}"

    health = wait_healthy(started.url, spec.agent_id)
    assert health["agentName"] == "Dockerling"  # it read the mounted character file


def test_secrets_reach_the_agent_environment_but_not_labels_or_logs(
    runtime: DockerRuntime, character: Path, docker_client: Any
) -> None:
    spec = spec_for(character, env={"OPENROUTER_API_KEY": SECRET, "EMPTY": "", "ELIZA_SERVER_AUTH_TOKEN": "mine"})
    started = runtime.start(spec)
    wait_healthy(started.url, spec.agent_id)

    container = docker_client.containers.get(started.handle)
    env = container.attrs["Config"]["Env"]
    assert f"OPENROUTER_API_KEY={SECRET}" in env
    assert not any(item.startswith("EMPTY=") for item in env)
    # The runtime's own variables win over the agent's: the key is the platform's, never the user's.
    assert f"ELIZA_SERVER_AUTH_TOKEN={agent_keys.api_key(spec.agent_id)}" in env
    assert "ELIZA_SERVER_AUTH_TOKEN=mine" not in env
    assert SECRET not in json.dumps(container.labels)
    assert SECRET not in "\n".join(runtime.logs(started.handle))
    assert SECRET not in repr(runtime.status(started.handle))


def test_stop_removes_the_container_and_is_idempotent(
    runtime: DockerRuntime, character: Path, docker_client: Any
) -> None:
    import docker

    spec = spec_for(character)
    started = runtime.start(spec)
    wait_healthy(started.url, spec.agent_id)

    runtime.stop(started.handle, grace=5)

    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(started.handle)
    assert runtime.status(started.handle).state == "missing"
    assert runtime.status(started.handle).alive is False
    runtime.stop(started.handle, grace=5)  # already gone: no error


def test_status_of_a_running_agent_then_after_docker_kill(
    runtime: DockerRuntime, character: Path, docker_client: Any
) -> None:
    spec = spec_for(character)
    started = runtime.start(spec)
    wait_healthy(started.url, spec.agent_id)

    running = runtime.status(started.handle)
    assert running.state == "running" and running.alive is True
    assert running.exit_code is None
    assert running.memory_bytes is not None and running.memory_bytes > 1_000_000

    docker_client.containers.get(started.handle).kill()
    wait_not_running(runtime, started.handle)

    killed = runtime.status(started.handle)
    assert killed.state == "exited" and killed.alive is False
    assert killed.exit_code == 137  # 128 + SIGKILL
    assert "exit code 137" in killed.detail


def test_an_agent_that_crashes_shows_its_exit_code(runtime: DockerRuntime, tmp_path: Path) -> None:
    broken = tmp_path / "broken.character.json"
    broken.write_text("[1, 2, 3]")  # not a character: the reference agent exits with code 2
    broken.chmod(0o644)
    try:
        started = runtime.start(spec_for(broken))
    except AgentStartFailed as exc:
        # The container may die before Docker even shows its port; that is a start failure too.
        assert "exit code 2" in exc.message
        return
    wait_not_running(runtime, started.handle)
    status = runtime.status(started.handle)
    assert (status.state, status.alive, status.exit_code) == ("exited", False, 2)
    assert any("cannot load character" in line for line in runtime.logs(started.handle))


def test_logs_returns_the_agents_output(runtime: DockerRuntime, character: Path) -> None:
    spec = spec_for(character)
    started = runtime.start(spec)
    wait_healthy(started.url, spec.agent_id)
    lines = runtime.logs(started.handle, tail=50)
    assert any("Dockerling" in line and "listening" in line for line in lines)
    assert len(runtime.logs(started.handle, tail=1)) == 1
    assert runtime.logs("0" * 64) == []


def test_list_owned_finds_this_instances_agents_only(
    runtime: DockerRuntime, settings: Settings, character: Path, docker_client: Any
) -> None:
    first = spec_for(character)
    second = spec_for(character)
    started = {first.agent_id: runtime.start(first), second.agent_id: runtime.start(second)}
    runtime.stop(runtime.start(spec_for(character)).handle, grace=1)  # stopped agents are not owned
    docker_client.containers.get(started[second.agent_id].handle).kill()

    owned = {o.agent_id: o for o in runtime.list_owned()}

    assert set(owned) == {first.agent_id, second.agent_id}
    assert owned[first.agent_id].handle == started[first.agent_id].handle
    assert owned[first.agent_id].url == started[first.agent_id].url
    assert owned[second.agent_id].handle == started[second.agent_id].handle  # exited ones too
    other = DockerRuntime(settings.model_copy(update={"instance": f"{settings.instance_key}-other"}))
    assert other.list_owned() == []


def test_starting_the_same_agent_twice_leaves_one_container(
    runtime: DockerRuntime, settings: Settings, character: Path, docker_client: Any
) -> None:
    spec = spec_for(character)
    first = runtime.start(spec)
    second = runtime.start(spec_for(character, agent_id=spec.agent_id, version=2))

    containers = docker_client.containers.list(all=True, filters={"label": f"{LABEL_AGENT}={spec.agent_id}"})
    assert [c.id for c in containers] == [second.handle]
    assert containers[0].labels[LABEL_VERSION] == "2"
    assert runtime.status(first.handle).state == "missing"
    wait_healthy(second.url, spec.agent_id)


def test_a_missing_character_file_fails_the_start_and_leaves_nothing(
    runtime: DockerRuntime, settings: Settings, tmp_path: Path, docker_client: Any
) -> None:
    spec = spec_for(tmp_path / "nope.character.json", env={"OPENROUTER_API_KEY": SECRET})
    with pytest.raises(AgentStartFailed) as caught:
        runtime.start(spec)
    assert "does not exist" in caught.value.message
    assert SECRET not in caught.value.message
    assert caught.value.__cause__ is not None
    assert not (tmp_path / "nope.character.json").exists()  # Docker did not create a directory there
    assert runtime.list_owned() == []


def test_a_missing_image_is_a_start_failure_naming_the_build_script(
    settings: Settings, character: Path, docker_client: Any
) -> None:
    runtime = DockerRuntime(settings.model_copy(update={"docker_image": "paradyze/no-such-image:never"}))
    with pytest.raises(AgentStartFailed) as caught:
        runtime.start(spec_for(character))
    assert "docker_images.sh" in caught.value.message
    assert runtime.list_owned() == []
