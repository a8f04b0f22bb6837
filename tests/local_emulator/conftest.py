"""Start the reference agent as a real subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import FIXTURES
from paradyze import agent_keys
from paradyze.agent_client import AgentClient

REPO = Path(__file__).resolve().parents[2]
AGENT_SCRIPT = REPO / "local_emulator" / "reference_agent.py"
CHARACTERS = sorted(FIXTURES.glob("*.character.json"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningAgent:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    character: dict[str, Any]
    agent_id: str  # the platform's id for it: its key is agent_keys.api_key(agent_id)

    @property
    def key(self) -> str:
        return agent_keys.api_key(self.agent_id)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def launch(character_path: Path, log_path: Path, env: dict[str, str] | None = None) -> RunningAgent:
    """Start the agent, requiring its key as the platform starts it, and wait until it is healthy.

    env adds to a model-key-free environment.
    """
    port = free_port()
    agent_id = str(uuid.uuid4())
    # A developer's real provider key must never make the tests call out.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "OPENAI_"))}
    child_env["ELIZA_SERVER_AUTH_TOKEN"] = agent_keys.api_key(agent_id)
    child_env.update(env or {})
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(AGENT_SCRIPT),
            "--character",
            str(character_path),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=child_env,
    )
    log_file.close()
    try:
        character = json.loads(character_path.read_text())
    except ValueError:
        character = {}  # a broken file is a test of the agent's own refusal
    agent = RunningAgent(proc, f"http://127.0.0.1:{port}", log_path, character, agent_id)
    try:
        with AgentClient() as client:
            client.wait_healthy(agent.url, agent_id, 15.0, is_alive=agent.alive)
    except Exception:
        agent.stop(signal.SIGKILL)
        raise
    return agent


@pytest.fixture
def characters() -> list[Path]:
    return CHARACTERS


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Any]:
    started: list[RunningAgent] = []

    def start(
        character_path: Path,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> RunningAgent:
        log_path = log_path or tmp_path / f"agent-{len(started)}.log"
        agent = launch(character_path, log_path, env)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        if agent.alive():
            agent.stop(signal.SIGKILL)


@pytest.fixture(scope="module", params=CHARACTERS, ids=[p.name.split(".")[0] for p in CHARACTERS])
def running_agent(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    """One agent per fixture character, shared by a module's tests."""
    agent = launch(request.param, tmp_path_factory.mktemp("agent") / "agent.log")
    yield agent
    if agent.alive():
        agent.stop(signal.SIGKILL)
