"""The foundation's end-to-end scenario with PARADYZE_RUNTIME=docker, on a real Docker Engine."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers import Emulator, fixture_characters, free_port

pytestmark = [pytest.mark.docker, pytest.mark.e2e]
CHARACTERS = fixture_characters()


@pytest.fixture
def emulator(tmp_path: Path, docker_client: Any) -> Iterator[Emulator]:
    emu = Emulator(home=tmp_path / "home", port=free_port(), extra_env={"PARADYZE_RUNTIME": "docker"})
    emu.home.mkdir()
    emu.home.chmod(0o755)
    emu.start()
    yield emu
    emu.stop()
    for container in containers(docker_client, emu):
        container.remove(force=True)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    docker = pytest.importorskip("docker")
    from paradyze.settings import Settings

    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException):
        pytest.skip("Docker Engine not answering; run local_emulator/docker_engine.sh")
    try:
        client.images.get(Settings().docker_image)
    except docker.errors.ImageNotFound:
        pytest.skip("agent image missing; build it with local_emulator/docker_images.sh")
    yield client


def containers(client: Any, emu: Emulator, agent_id: str | None = None) -> list[Any]:
    from paradyze.settings import Settings

    key = Settings(PARADYZE_HOME=emu.home, PARADYZE_INSTANCE="e2e").instance_key
    labels = [f"paradyze.instance={key}"] + ([f"paradyze.agent_id={agent_id}"] if agent_id else [])
    return list(client.containers.list(all=True, filters={"label": labels}))


def running(client: Any, emu: Emulator, agent_id: str) -> list[Any]:
    return [c for c in containers(client, emu, agent_id) if c.status == "running"]


def test_each_fixture_becomes_a_container_that_answers(emulator: Emulator, docker_client: Any) -> None:
    for name, character in sorted(CHARACTERS.items()):
        resp = emulator.post("create_agent", {"character": character})
        assert resp.status_code == 201, resp.text
        agent = resp.json()["agent"]
        assert agent["runtime"] == "docker" and agent["status"] == "running"
        [container] = running(docker_client, emulator, agent["id"])
        assert container.attrs["HostConfig"]["Memory"] == 512 * 1024 * 1024
        reply = emulator.post("send_message", {"agent_id": agent["id"], "text": "hello"})
        assert reply.status_code == 200 and reply.json()["replies"][0]["text"], name


def test_hibernate_leaves_no_container_and_wake_brings_one_back(emulator: Emulator, docker_client: Any) -> None:
    agent = emulator.post("create_agent", {"character": CHARACTERS["eliza-default"]}).json()["agent"]
    assert emulator.post("hibernate_agent", {"agent_id": agent["id"]}).json()["agent"]["status"] == "hibernated"
    assert containers(docker_client, emulator, agent["id"]) == []
    woke = emulator.post("wake_agent", {"agent_id": agent["id"]}).json()["agent"]
    assert woke["status"] == "running"
    assert len(running(docker_client, emulator, agent["id"])) == 1
    assert emulator.post("send_message", {"agent_id": agent["id"], "text": "back?"}).status_code == 200


def test_kill_dash_nine_of_the_main_process_is_repaired_by_health(emulator: Emulator, docker_client: Any) -> None:
    agent = emulator.post("create_agent", {"character": CHARACTERS["sam-altman"]}).json()["agent"]
    [container] = running(docker_client, emulator, agent["id"])
    pid = container.attrs["State"]["Pid"]
    # The agent's main process inside the container (under docker's init), killed from the host.
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    subprocess.run(["kill", "-9", *(children or [str(pid)])], check=True)
    deadline = time.monotonic() + 20
    while running(docker_client, emulator, agent["id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    report = emulator.get("health_check").json()
    mine = next(a for a in report["agents"] if a["agent_id"] == agent["id"])
    assert mine["answering"] is False and mine["runtime_state"] != "running"
    assert agent["id"] in report["repairs"]["restarted"]
    now = emulator.get("get_agent", agent_id=agent["id"]).json()["agent"]
    assert now["status"] == "running" and now["restart_count"] == 1
    assert len(running(docker_client, emulator, agent["id"])) == 1
    health = emulator.get("health_check").json()
    mine = next(a for a in health["agents"] if a["agent_id"] == agent["id"])
    assert mine["ok"] and mine["memory_bytes"] and mine["restarts"] == 1


def test_crash_between_container_start_and_row_update_leaves_one_container(
        emulator: Emulator, docker_client: Any) -> None:
    emulator.stop()
    emulator.start(PARADYZE_TEST_CRASH_AFTER="start:launched")
    with pytest.raises(requests.ConnectionError):
        emulator.post("create_agent", {"character": CHARACTERS["eliza-default"]}, headers={"Idempotency-Key": "d1"})
    emulator.proc.wait(timeout=30)
    [orphan] = containers(docker_client, emulator)
    emulator.start()
    agent = emulator.post("create_agent", {"character": CHARACTERS["eliza-default"]},
                          headers={"Idempotency-Key": "d1"}).json()["agent"]
    assert agent["status"] == "running"
    left = containers(docker_client, emulator)
    assert [c.id for c in left] == [orphan.id], "the live container is adopted, never doubled"
    assert emulator.post("send_message", {"agent_id": agent["id"], "text": "one of me?"}).status_code == 200
