"""The AgentRuntime contract, one suite run against every backend that can run here."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from paradyze.agent_keys import api_key
from paradyze.errors import AgentStartFailed
from paradyze.runtimes.base import AgentRuntime, AgentSpec
from paradyze.settings import Settings

CHARACTER = {"name": "Contracta", "bio": "An agent that checks contracts.",
             "messageExamples": [[{"user": "{{user1}}", "content": {"text": "ping"}},
                                  {"user": "Contracta", "content": {"text": "pong"}}]]}


@pytest.fixture
def google_cloud() -> Iterator[Any]:
    """A local Cloud Run Admin API whose services really run the reference agent, with Secret Manager."""
    from tests.fakes.google_cloud import cloud_fakes

    with cloud_fakes() as fakes:
        yield fakes


@pytest.fixture(params=["process", pytest.param("docker", marks=pytest.mark.docker), "cloud_run"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AgentRuntime]:
    settings = Settings(PARADYZE_HOME=tmp_path / "home", PARADYZE_INSTANCE=f"contract-{uuid.uuid4().hex[:6]}")
    if request.param == "docker":
        request.getfixturevalue("docker_client")
        from paradyze.runtimes.docker import DockerRuntime

        backend: AgentRuntime = DockerRuntime(settings)
    elif request.param == "cloud_run":
        from paradyze.runtimes.cloud_run import CloudRunRuntime

        backend = CloudRunRuntime(request.getfixturevalue("google_cloud").settings(settings))
    else:
        from paradyze.runtimes.process import ProcessRuntime

        backend = ProcessRuntime(settings)
    yield backend
    for owned in backend.list_owned():
        backend.stop(owned.handle, grace=1.0)


@pytest.fixture
def spec(tmp_path: Path) -> AgentSpec:
    path = tmp_path / "v1.character.json"
    path.write_text(json.dumps(CHARACTER))
    path.chmod(0o444)
    return AgentSpec(agent_id=str(uuid.uuid4()), character_path=path, character_version=1,
                     env={"PARADYZE_CONTRACT": "yes"})


def key(spec: AgentSpec) -> dict[str, str]:
    """The agent's own key, which it requires as ElizaOS does."""
    return {"X-API-KEY": api_key(spec.agent_id)}


def health(url: str, spec: AgentSpec, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            resp = requests.get(f"{url}/api/server/health", timeout=2, headers=key(spec))
            if resp.ok:
                return dict(resp.json())
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered health")


def test_start_runs_an_agent_that_answers_as_its_character(runtime: AgentRuntime, spec: AgentSpec) -> None:
    started = runtime.start(spec)
    assert isinstance(runtime, AgentRuntime)
    assert health(started.url, spec)
    agents = requests.get(f"{started.url}/api/agents", timeout=5, headers=key(spec)).json()["data"]["agents"]
    assert [a["name"] for a in agents] == ["Contracta"]
    status = runtime.status(started.handle)
    assert status.alive and status.state == "running"
    assert runtime.alive(started.handle)
    assert [o.agent_id for o in runtime.list_owned()] == [spec.agent_id]
    assert runtime.list_owned()[0].url == started.url


def test_stop_is_graceful_final_and_idempotent(runtime: AgentRuntime, spec: AgentSpec) -> None:
    started = runtime.start(spec)
    health(started.url, spec)
    runtime.stop(started.handle, grace=5.0)
    assert not runtime.status(started.handle).alive
    assert not runtime.alive(started.handle)
    assert runtime.list_owned() == []
    with pytest.raises(requests.RequestException):
        requests.get(f"{started.url}/api/server/health", timeout=1)
    runtime.stop(started.handle, grace=1.0)  # again: nothing to do, no error


def test_logs_show_the_agents_requests(runtime: AgentRuntime, spec: AgentSpec) -> None:
    if runtime.kind == "cloud_run":
        pytest.skip("Cloud Run agent logs are in Cloud Logging; logs() names the query (see test_cloud_run.py)")
    started = runtime.start(spec)
    health(started.url, spec)
    requests.get(f"{started.url}/api/server/ping", timeout=5, headers=key(spec))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("/api/server/ping" in line for line in runtime.logs(started.handle)):
        time.sleep(0.1)
    assert any("/api/server/ping" in line for line in runtime.logs(started.handle, tail=50))


def test_a_crashing_agent_reports_its_exit(runtime: AgentRuntime, spec: AgentSpec, tmp_path: Path) -> None:
    broken = tmp_path / "broken.character.json"
    broken.write_text("{ not json")
    broken.chmod(0o444)
    crashing = AgentSpec(agent_id=spec.agent_id, character_path=broken, character_version=1)
    if runtime.kind == "cloud_run":
        # Cloud Run's deployment waits for the container to listen, so the exit fails start itself.
        with pytest.raises(AgentStartFailed, match=r"exit\(2\)"):
            runtime.start(crashing)
        assert runtime.list_owned() == []
        return
    started = runtime.start(crashing)
    deadline = time.monotonic() + 20
    while runtime.status(started.handle).alive and time.monotonic() < deadline:
        time.sleep(0.1)
    status = runtime.status(started.handle)
    assert not status.alive
    assert status.exit_code not in (None, 0)
