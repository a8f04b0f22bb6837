"""`docker-compose up`: the whole stack from locally built images, a smoke test through its URLs, then down.

Postgres (Debian's, on the debootstrapped base), the functions (the emulator, docker runtime), two
targets of the platform image as Cloud Run runs them, and the console from its own image. An
ElizaOS agent is created through the functions; the platform image's list_agents and health_check
targets see it in the same Postgres; the console answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from helpers import REPO, fixture_characters, free_ports

pytestmark = pytest.mark.docker


def _compose_command() -> list[str] | None:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True,
                                                         timeout=60).returncode != 0:
        return None
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


class Stack:
    def __init__(self, command: list[str], state: Path) -> None:
        self.project = f"paradyze-smoke-{uuid.uuid4().hex[:6]}"
        self.instance = self.project
        names = ("FUNCTIONS", "CONSOLE", "LIST_AGENTS", "HEALTH_CHECK", "DB")
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.state = state
        self.command = [*command, "-p", self.project, "-f", str(REPO / "docker-compose.yml")]
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PARADYZE_", "OPENAI_", "ANTHROPIC_", "OPENROUTER_"))}
        self.env.update({f"PARADYZE_{name}_PORT": str(port) for name, port in self.ports.items()},
                        PARADYZE_STATE_DIR=str(state), PARADYZE_INSTANCE=self.instance)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "40", timeout=120).stdout[-6000:]

    def token(self) -> str:
        return (self.state / "admin-token").read_text().strip()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


def _wait(url: str, stack: Stack, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=3)
            return
        except requests.RequestException:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout:g}s:\n{stack.logs()}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker Engine or compose CLI answers; run local_emulator/docker_engine.sh")
    # Every image built here, none pulled; Docker's layer cache makes an unchanged rebuild take seconds.
    built = subprocess.run([str(REPO / "local_emulator" / "docker_images.sh"), "--with-stack"], capture_output=True,
                           text=True, timeout=1800)
    assert built.returncode == 0, built.stderr[-4000:]
    state = Path(tempfile.mkdtemp(prefix="paradyze-compose-"))
    stack = Stack(command, state)
    try:
        up = stack.compose("up", "-d", "--no-build", timeout=900)
        assert up.returncode == 0, up.stderr[-4000:] + stack.logs()
        for name in ("FUNCTIONS", "LIST_AGENTS", "HEALTH_CHECK", "CONSOLE"):
            _wait(stack.url(name), stack)
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", timeout=300)
        # Agent containers are the functions' own (docker runtime), not compose's: any the test left.
        left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=paradyze.instance={stack.instance}"],
                              capture_output=True, text=True, timeout=60).stdout.split()
        if left:
            subprocess.run(["docker", "rm", "-f", *left], capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def test_an_agent_created_through_the_functions_is_seen_by_the_platform_image_targets(stack: Stack) -> None:
    created = requests.post(f"{stack.url('FUNCTIONS')}/create_agent", headers=stack.headers(), timeout=300,
                            json={"character": fixture_characters()["eliza-default"]})
    assert created.status_code == 201, created.text + stack.logs()
    agent = created.json()["agent"]
    try:
        assert agent["status"] == "running"
        listed = requests.get(stack.url("LIST_AGENTS"), headers=stack.headers(), timeout=60)
        assert listed.status_code == 200, listed.text + stack.logs()
        assert [a["id"] for a in listed.json()["agents"]] == [agent["id"]]
        health = requests.get(stack.url("HEALTH_CHECK"), params={"repair": "false"}, headers=stack.headers(),
                              timeout=120)
        assert health.status_code == 200, health.text + stack.logs()
        [seen] = health.json()["agents"]
        assert seen["agent_id"] == agent["id"] and seen["answering"] and seen["runtime_state"] == "running"
        assert requests.get(stack.url("LIST_AGENTS"), timeout=60).status_code == 401  # no token, no agents
    finally:
        deleted = requests.post(f"{stack.url('FUNCTIONS')}/delete_agent", headers=stack.headers(), timeout=300,
                                json={"agent_id": agent["id"]})
        assert deleted.status_code == 200, deleted.text


def test_the_console_answers_from_its_own_image(stack: Stack) -> None:
    health = requests.get(f"{stack.url('CONSOLE')}/_stcore/health", timeout=30)
    assert health.status_code == 200 and health.text == "ok"
    page = requests.get(stack.url("CONSOLE"), timeout=30)
    assert page.status_code == 200 and "<noscript>" in page.text  # Streamlit's app shell
    image = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={stack.project}",
                            "--filter", "label=com.docker.compose.service=console", "--format", "{{.Image}}"],
                           capture_output=True, text=True, timeout=60).stdout.split()
    assert image == ["paradyze/console:latest"]
