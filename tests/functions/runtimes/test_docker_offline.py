"""The docker backend when no engine answers: domain errors, and docker-py loaded only on use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from paradyze.errors import RuntimeUnavailable
from paradyze.runtimes.base import AgentSpec
from paradyze.runtimes.docker import DockerRuntime
from paradyze.settings import Settings

FUNCTIONS = Path(__file__).resolve().parents[3] / "functions"


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DockerRuntime:
    # docker-py finds the engine through DOCKER_HOST: point it at a socket nobody listens on.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    return DockerRuntime(Settings(PARADYZE_HOME=tmp_path, PARADYZE_INSTANCE="offline"))


def test_every_operation_says_the_runtime_is_unavailable(runtime: DockerRuntime, tmp_path: Path) -> None:
    spec = AgentSpec(
        agent_id="a1",
        character_path=tmp_path / "c.json",
        character_version=1,
        env={"OPENROUTER_API_KEY": "sk-never-shown-1234"},
    )
    calls = {
        "start": lambda: runtime.start(spec),
        "stop": lambda: runtime.stop("abc", grace=1),
        "status": lambda: runtime.status("abc"),
        "logs": lambda: runtime.logs("abc"),
        "list_owned": runtime.list_owned,
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeUnavailable) as caught:
            call()
        assert "Docker Engine does not answer" in caught.value.message, name
        assert "sk-never-shown-1234" not in caught.value.message
        assert caught.value.__cause__ is not None, f"{name} must chain the SDK error"
        assert caught.value.code == "runtime_unavailable"


def test_importing_the_backend_does_not_load_docker_py() -> None:
    code = "import sys, paradyze.runtimes.docker; print('docker' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=FUNCTIONS,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(FUNCTIONS), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "False"
