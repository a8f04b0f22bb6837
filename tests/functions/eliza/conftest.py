"""A real ElizaOS 1.7.2 server and the fake model it talks to, for tests of how the platform talks to it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from paradyze.agent_client import AgentClient
from paradyze.settings import get_settings
from tests.fakes.model_server import FakeModelServer
from tests.functions.eliza.elizaos_server import ElizaServer, installed

NOT_INSTALLED = "the pinned ElizaOS is not installed (local_emulator/elizaos.sh installs it)"


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_reply(model: FakeModelServer) -> None:
    model.reply("Hello from the fake model.")


@pytest.fixture(scope="module")
def eliza(model: FakeModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElizaServer]:
    """One running server shared by a module's tests (each test talks as users of its own)."""
    if not installed():
        pytest.skip(NOT_INSTALLED)
    server = ElizaServer(tmp_path_factory.mktemp("eliza"), model_url=model.base_url, agent_id=str(uuid.uuid4()))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def new_eliza(model: FakeModelServer, tmp_path: Path) -> Iterator[ElizaServer]:
    """A server of the test's own, not started yet: for restarts."""
    if not installed():
        pytest.skip(NOT_INSTALLED)
    server = ElizaServer(tmp_path / "agent", model_url=model.base_url, agent_id=str(uuid.uuid4()))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def on_elizaos(model: FakeModelServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModelServer]:
    """The functions run the real ElizaOS, with the platform's model key pointed at the fake model."""
    if not installed():
        pytest.skip(NOT_INSTALLED)
    monkeypatch.setattr(get_settings(), "agent", "elizaos")
    monkeypatch.setenv("OPENAI_API_KEY", "platform-test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
    yield model


@pytest.fixture
def client() -> Iterator[AgentClient]:
    with AgentClient() as made:
        yield made
