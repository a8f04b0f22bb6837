"""The cloud_run backend against a local fake of the Cloud Run Admin API whose services really run."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from paradyze.agent_keys import api_key
from paradyze.errors import AgentStartFailed, RuntimeUnavailable, ValidationFailed
from paradyze.runtimes.base import AgentRuntime, AgentSpec
from paradyze.runtimes.cloud_run import CloudRunRuntime
from paradyze.runtimes.cloud_run_service import cloud_run_cpu, cloud_run_memory, label_value
from paradyze.settings import Settings
from tests.fakes.cloud_run import FakeCloudRun
from tests.fakes.google_cloud import INVOKER, PROJECT, CloudFakes, cloud_fakes
from tests.fakes.secret_manager import FakeSecretManager

SECRET = "sk-or-v1-do-not-leak-0123456789"
SECRET_REF = f"sm://projects/{PROJECT}/secrets/openrouter/versions/3"


def character(name: str) -> dict[str, Any]:
    return {"name": name, "bio": f"{name} runs on Cloud Run.",
            "messageExamples": [[{"user": "{{user1}}", "content": {"text": "ping"}},
                                 {"user": name, "content": {"text": f"pong from {name}"}}]]}


@pytest.fixture
def cloud() -> Iterator[CloudFakes]:
    with cloud_fakes(grace=2.0) as fakes:
        yield fakes


@pytest.fixture
def fake(cloud: CloudFakes) -> FakeCloudRun:
    return cloud.run


@pytest.fixture
def sm(cloud: CloudFakes) -> FakeSecretManager:
    return cloud.secrets


def make_runtime(tmp_path: Path, cloud: CloudFakes, instance: str = "cr", **overrides: Any) -> CloudRunRuntime:
    settings = Settings(PARADYZE_HOME=tmp_path / "home", PARADYZE_INSTANCE=instance)
    return CloudRunRuntime(cloud.settings(settings, **overrides))


def unreachable(tmp_path: Path, **overrides: Any) -> CloudRunRuntime:
    """A runtime whose Cloud Run and Secret Manager endpoints answer nothing."""
    closed = f"http://127.0.0.1:{closed_port()}"
    settings = Settings(PARADYZE_HOME=tmp_path / "home", PARADYZE_INSTANCE="cr")
    return CloudRunRuntime(settings.model_copy(update={
        "gcp_project": PROJECT, "cloud_run_api_endpoint": closed, "secret_manager_api_endpoint": closed,
        "cloud_run_invoker": INVOKER, **overrides}))


@pytest.fixture
def runtime(cloud: CloudFakes, tmp_path: Path) -> Iterator[CloudRunRuntime]:
    backend = make_runtime(tmp_path, cloud)
    yield backend
    for owned in backend.list_owned():
        backend.stop(owned.handle, grace=1.0)


def write_spec(tmp_path: Path, name: str = "Cirrus", version: int = 1, agent_id: str | None = None,
               env: dict[str, str] | None = None) -> AgentSpec:
    path = tmp_path / f"{name}-v{version}.character.json"
    path.write_text(json.dumps(character(name)))
    return AgentSpec(agent_id=agent_id or str(uuid.uuid4()), character_path=path, character_version=version,
                     env=env or {})


def agent_names(url: str, agent_id: str) -> list[str]:
    """The agents the server lists, asked with the agent's own key as the platform asks."""
    resp = requests.get(f"{url}/api/agents", timeout=5, headers={"X-API-KEY": api_key(agent_id)})
    return [a["name"] for a in resp.json()["data"]["agents"]]


def env_of(service: dict[str, Any]) -> dict[str, Any]:
    container = service["template"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueSource")) for e in container.get("env", [])}


def process_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if b"=" in item)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def secret_env(sm: FakeSecretManager, backend: CloudRunRuntime, agent_id: str) -> dict[str, str]:
    """What the agent's secret holds now (its newest enabled version)."""
    payload = sm.payload(f"projects/{PROJECT}/secrets/{backend.secret_id(agent_id)}")
    assert payload is not None, "the agent has no secret"
    return dict(json.loads(payload))


def seed_user_secret(sm: FakeSecretManager) -> None:
    """The user's own secret `openrouter`, at version 3 (what SECRET_REF names)."""
    for value in ("old", "older", SECRET):
        sm.add(f"projects/{PROJECT}/secrets/openrouter", value)


def test_the_deployed_service_is_one_always_on_instance_with_labels_limits_and_env(
    runtime: CloudRunRuntime, fake: FakeCloudRun, sm: FakeSecretManager, tmp_path: Path
) -> None:
    seed_user_secret(sm)
    spec = write_spec(tmp_path, env={"OPENROUTER_API_KEY": SECRET_REF, "PLAIN_SETTING": "blue", "EMPTY": "",
                                     "PORT": "1234", "CHARACTER_PATH": "/nowhere.json", "OTHER_KEY": "sk-other-1"})
    started = runtime.start(spec)
    service_id = runtime.service_id(spec.agent_id)
    assert started.handle == f"projects/{PROJECT}/locations/us-central1/services/{service_id}"
    service = fake.service(service_id)

    assert service["labels"] == {"paradyze-agent-id": spec.agent_id, "paradyze-instance": runtime.instance_label,
                                 "paradyze-character-version": "1"}
    assert service["ingress"] == "INGRESS_TRAFFIC_ALL"
    assert not service.get("invokerIamDisabled"), "agents are private unless chosen otherwise"
    assert fake.policies[started.handle]["bindings"] == [
        {"role": "roles/run.invoker", "members": [f"serviceAccount:{INVOKER}"]}]
    template = service["template"]
    assert template["scaling"] == {"minInstanceCount": 1, "maxInstanceCount": 1}
    container = template["containers"][0]
    assert container["image"] == "paradyze/reference-agent:latest"
    assert container["ports"] == [{"containerPort": 3000}]
    assert container["resources"]["limits"] == {"memory": "512Mi", "cpu": "1"}
    assert not container["resources"].get("cpuIdle")  # CPU always allocated

    # The spec holds no value of the agent's environment: the user's secret stays their reference,
    # the rest is the agent's own secret, at the version this start wrote.
    secret = f"projects/{PROJECT}/secrets/{runtime.secret_id(spec.agent_id)}"
    env = env_of(service)
    assert env == {
        "OPENROUTER_API_KEY": {"secretKeyRef": {"secret": f"projects/{PROJECT}/secrets/openrouter", "version": "3"}},
        "PARADYZE_AGENT_ENV": {"secretKeyRef": {"secret": secret, "version": "1"}},
        "CHARACTER_JSON": env["CHARACTER_JSON"], "SERVER_PORT": "3000", "HOST": "0.0.0.0",
        "ELIZA_NO_AUTO_INSTALL": "true"}
    assert base64.b64decode(env["CHARACTER_JSON"]) == spec.character_path.read_bytes()
    assert secret_env(sm, runtime, spec.agent_id) == {
        "PLAIN_SETTING": "blue", "OTHER_KEY": "sk-other-1",
        "ELIZA_SERVER_AUTH_TOKEN": api_key(spec.agent_id)}  # the agent's own key, as on every runtime
    for value in (SECRET, "sk-other-1", api_key(spec.agent_id)):
        assert value not in json.dumps(service)  # no secret ever enters the service spec

    # The agent really runs from CHARACTER_JSON, its environment spread from its secret at its start.
    assert agent_names(started.url, spec.agent_id) == ["Cirrus"]
    assert requests.get(f"{started.url}/api/agents", timeout=5).status_code == 401  # without the key
    running = process_environ(fake.instances[started.handle].process.pid)  # type: ignore[union-attr]
    assert running["OPENROUTER_API_KEY"] == SECRET and running["OTHER_KEY"] == "sk-other-1"
    assert "CHARACTER_PATH" not in running

    # Stopped (hibernated or deleted), the agent keeps no secret.
    runtime.stop(started.handle, grace=1.0)
    assert sm.live(secret) == {}


def test_each_start_writes_a_version_only_the_agents_account_reads_and_destroys_the_older(
    cloud: CloudFakes, sm: FakeSecretManager, tmp_path: Path
) -> None:
    agents = "paradyze-agents@paradyze-test.iam.gserviceaccount.com"
    backend = make_runtime(tmp_path, cloud, cloud_run_agent_account=agents)
    spec = write_spec(tmp_path, env={"OPENAI_API_KEY": "sk-first"})
    try:
        first = backend.start(spec)
        again = backend.start(write_spec(tmp_path, version=2, agent_id=spec.agent_id,
                                         env={"OPENAI_API_KEY": "sk-rotated"}))
        secret = f"projects/{PROJECT}/secrets/{backend.secret_id(spec.agent_id)}"
        assert sm.live(secret) == {secret: [f"{secret}/versions/2"]}, "the first version is destroyed"
        assert secret_env(sm, backend, spec.agent_id)["OPENAI_API_KEY"] == "sk-rotated"
        assert sm.policies[secret]["bindings"] == [
            {"role": "roles/secretmanager.secretAccessor", "members": [f"serviceAccount:{agents}"]}]
        service = cloud.run.service(backend.service_id(spec.agent_id))
        assert service["template"]["serviceAccount"] == agents
        running = process_environ(cloud.run.instances[again.handle].process.pid)  # type: ignore[union-attr]
        assert running["OPENAI_API_KEY"] == "sk-rotated" and again.url == first.url
    finally:
        backend.stop(first.handle, grace=1.0)


def test_forget_removes_a_secret_an_interrupted_start_left(runtime: CloudRunRuntime, sm: FakeSecretManager,
                                                            tmp_path: Path) -> None:
    spec = write_spec(tmp_path, env={"OPENAI_API_KEY": "sk-left"})
    # The platform stopped after the secret was written, before the service was created.
    runtime.secrets.put(runtime.secret_id(spec.agent_id), {}, {"OPENAI_API_KEY": "sk-left"}, action="start")
    runtime.forget(spec.agent_id, tenant="anyone")
    assert sm.live() == {}
    runtime.forget(spec.agent_id, tenant="anyone")  # and again: nothing to do


def test_service_ids_are_deterministic_valid_and_per_instance(cloud: CloudFakes, tmp_path: Path) -> None:
    one, other = make_runtime(tmp_path, cloud, "one"), make_runtime(tmp_path, cloud, "Other Inst")
    agent_id = "6f1c1e5a-8a3b-4b6e-9d2f-0c1d2e3f4a5b"
    ids = [one.service_id(agent_id), one.service_id(agent_id), other.service_id(agent_id),
           one.service_id("not-a-uuid" * 10)]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].endswith("-6f1c1e5a8a3b4b6e9d2f0c1d2e3f4a5b")
    for service_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9-]{0,47}[a-z0-9]", service_id), service_id
    assert label_value("Other Inst-" + "x" * 80) == label_value("Other Inst-" + "x" * 80)
    assert re.fullmatch(r"[a-z0-9_-]{1,63}", label_value("Other Inst-" + "x" * 80))


@pytest.mark.parametrize(("docker", "cloud_run"), [("512m", "512Mi"), ("1g", "1Gi"), ("2GB", "2Gi"),
                                                    ("262144k", "262144Ki"), ("536870912", "536870912")])
def test_memory_limits_translate_from_docker_sizes(docker: str, cloud_run: str) -> None:
    assert cloud_run_memory(docker) == cloud_run


def test_cpu_limits_and_bad_sizes() -> None:
    assert [cloud_run_cpu(c) for c in (1.0, 2.0, 0.5, 0.25)] == ["1", "2", "500m", "250m"]
    with pytest.raises(AgentStartFailed, match="PARADYZE_DOCKER_MEMORY"):
        cloud_run_memory("lots")


def test_start_again_updates_the_same_service_in_place(
    runtime: CloudRunRuntime, fake: FakeCloudRun, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path)
    first = runtime.start(spec)
    again = runtime.start(spec)  # a retry: the service exists
    assert again == first
    writes = [(c.method, c.path.rsplit(":", 1)[-1] if ":" in c.path else "") for c in fake.calls if c.method != "GET"]
    # create, grant the invoker; create again (409), update in place, grant again
    assert writes == [("POST", ""), ("POST", "setIamPolicy"), ("POST", ""), ("PATCH", ""), ("POST", "setIamPolicy")]
    assert agent_names(again.url, spec.agent_id) == ["Cirrus"]

    newer = write_spec(tmp_path, name="Stratus", version=2, agent_id=spec.agent_id)
    third = runtime.start(newer)  # a new version deploys a new revision behind the same URL
    assert third == first
    assert agent_names(third.url, spec.agent_id) == ["Stratus"]
    assert fake.service(runtime.service_id(spec.agent_id))["generation"] == "3"
    assert [o.agent_id for o in runtime.list_owned()] == [spec.agent_id]


def test_stop_of_a_missing_service_is_fine(runtime: CloudRunRuntime, tmp_path: Path) -> None:
    handle = runtime.service_name(str(uuid.uuid4()))
    runtime.stop(handle, grace=1.0)
    assert runtime.status(handle).state == "missing"
    assert not runtime.alive(handle)


def test_a_crashed_instance_is_replaced_as_cloud_run_does(
    runtime: CloudRunRuntime, fake: FakeCloudRun, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path)
    started = runtime.start(spec)
    instance = fake.instances[started.handle]
    assert instance.process is not None
    os.killpg(instance.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if instance.restarts and agent_names(started.url, spec.agent_id) == ["Cirrus"]:
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)
    else:
        pytest.fail("the crashed instance was not replaced")
    status = runtime.status(started.handle)
    assert status.alive and status.state == "running" and status.memory_bytes is None


def test_an_agent_that_never_becomes_ready_fails_start_and_leaves_nothing(tmp_path: Path) -> None:
    with cloud_fakes(grace=1.0, health_path="/never-answers") as cloud:
        backend = make_runtime(tmp_path, cloud, agent_start_timeout=1.5)
        with pytest.raises(AgentStartFailed, match="in time"):
            backend.start(write_spec(tmp_path))
        assert backend.list_owned() == []
        assert cloud.secrets.live() == {}, "nor a secret"


def test_a_secret_that_does_not_exist_fails_start_without_leaking(
    runtime: CloudRunRuntime, sm: FakeSecretManager, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, env={"OPENROUTER_API_KEY": SECRET_REF, "OTHER_KEY": SECRET})
    with pytest.raises(AgentStartFailed, match="openrouter/versions/3 was not found") as failed:
        runtime.start(spec)
    assert SECRET not in str(failed.value)
    assert runtime.list_owned() == [] and sm.live() == {}


def test_a_malformed_secret_reference_names_the_variable(runtime: CloudRunRuntime, sm: FakeSecretManager,
                                                         tmp_path: Path) -> None:
    with pytest.raises(AgentStartFailed, match="env OPENROUTER_API_KEY: a secret reference") as failed:
        runtime.start(write_spec(tmp_path, env={"OPENROUTER_API_KEY": "sm://" + SECRET}))
    assert SECRET not in str(failed.value)
    assert sm.live() == {}, "refused before anything was written"


def test_a_refusal_that_echoes_the_request_is_scrubbed(
    runtime: CloudRunRuntime, fake: FakeCloudRun, tmp_path: Path
) -> None:
    fake.fail_next(400, message=f"env OTHER_KEY={SECRET} is not allowed")
    with pytest.raises(AgentStartFailed, match="BadRequest") as failed:
        runtime.start(write_spec(tmp_path, env={"OTHER_KEY": SECRET}))
    assert SECRET not in str(failed.value) and "***" in str(failed.value)


def test_an_api_that_does_not_answer_is_runtime_unavailable(tmp_path: Path) -> None:
    backend: AgentRuntime = unreachable(tmp_path)
    handle = "projects/p/locations/l/services/s"
    with pytest.raises(RuntimeUnavailable) as failed:
        backend.start(write_spec(tmp_path, env={"OTHER_KEY": SECRET}))
    assert SECRET not in str(failed.value)
    for call in (lambda: backend.status(handle), lambda: backend.alive(handle),
                 lambda: backend.stop(handle, 1.0), backend.list_owned):
        with pytest.raises(RuntimeUnavailable, match="unreachable"):
            call()


def test_an_api_answering_503_is_runtime_unavailable(
    runtime: CloudRunRuntime, fake: FakeCloudRun, tmp_path: Path
) -> None:
    fake.fail_next(503)
    with pytest.raises(RuntimeUnavailable, match="does not answer"):
        runtime.start(write_spec(tmp_path))
    fake.fail_next(503, times=1000)
    with pytest.raises(RuntimeUnavailable, match="does not answer"):
        runtime.status(runtime.service_name(str(uuid.uuid4())))
    fake.clear_failures()


def test_list_owned_pages_through_and_keeps_to_this_instance(cloud: CloudFakes, fake: FakeCloudRun,
                                                             tmp_path: Path) -> None:
    ours, theirs = make_runtime(tmp_path, cloud, "ours"), make_runtime(tmp_path, cloud, "theirs")
    try:
        specs = [write_spec(tmp_path, name=f"Agent{i}") for i in range(3)]
        started = {s.agent_id: ours.start(s) for s in specs}
        foreign = theirs.start(write_spec(tmp_path, name="Foreign"))
        owned = ours.list_owned()
        assert {o.agent_id: (o.handle, o.url) for o in owned} == {
            agent_id: (s.handle, s.url) for agent_id, s in started.items()}
        assert len([c for c in fake.calls if c.method == "GET" and c.path.endswith("/services")]) >= 2  # paged
        assert [o.handle for o in theirs.list_owned()] == [foreign.handle]
    finally:
        for backend in (ours, theirs):
            for o in backend.list_owned():
                backend.stop(o.handle, grace=1.0)


def test_logs_say_where_cloud_run_keeps_them(runtime: CloudRunRuntime) -> None:
    handle = runtime.service_name(str(uuid.uuid4()))
    [line] = runtime.logs(handle, tail=50)
    service_id = handle.rsplit("/", 1)[-1]
    assert f"resource.labels.service_name={service_id}" in line and "--limit 50" in line and PROJECT in line


def test_without_a_project_the_runtime_is_not_offered(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="GOOGLE_CLOUD_PROJECT") as info:
        unreachable(tmp_path, gcp_project=None)
    assert info.value.details[0]["loc"] == ["runtime"]


def test_public_agents_are_deployed_open_and_grant_nobody(cloud: CloudFakes, fake: FakeCloudRun,
                                                         tmp_path: Path) -> None:
    backend = make_runtime(tmp_path, cloud, cloud_run_invoker=None, cloud_run_public=True)
    started = backend.start(write_spec(tmp_path))
    try:
        assert fake.service(started.handle.rsplit("/", 1)[-1])["invokerIamDisabled"] is True
        assert started.handle not in fake.policies
    finally:
        backend.stop(started.handle, grace=1.0)


def test_private_agents_need_an_invoker(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="PARADYZE_CLOUD_RUN_INVOKER"):
        unreachable(tmp_path, cloud_run_invoker=None)


def test_with_an_agent_database_server_each_agent_gets_postgres_url_to_a_database_of_its_own(
    cloud: CloudFakes, sm: FakeSecretManager, tmp_path: Path, database: None
) -> None:
    from pydantic import SecretStr

    from paradyze import agent_databases, db
    from paradyze.settings import get_settings

    admin = db.database_url(get_settings())
    backend = make_runtime(tmp_path, cloud, agent_database_url=SecretStr(admin))
    spec = write_spec(tmp_path)
    started = backend.start(spec)
    try:
        assert "POSTGRES_URL" not in env_of(cloud.run.service(backend.service_id(spec.agent_id)))
        url = secret_env(sm, backend, spec.agent_id)["POSTGRES_URL"]
        assert agent_databases.name_for(spec.agent_id) in url
        with psycopg.connect(url) as conn:
            assert conn.execute("select current_user, current_database()").fetchone() == (
                agent_databases.name_for(spec.agent_id), agent_databases.name_for(spec.agent_id))
    finally:
        backend.stop(started.handle, grace=1.0)
        agent_databases.drop(backend.settings, spec.agent_id)
