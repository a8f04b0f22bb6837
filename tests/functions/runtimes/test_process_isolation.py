"""Agents of the process runtime run as users of their own: one agent cannot read another's secrets,
the platform's state folder or its keys (issue 9). Needs root, which can switch users."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from paradyze.agent_keys import api_key
from paradyze.runtimes.base import AgentSpec
from paradyze.runtimes.process import ProcessRuntime
from paradyze.settings import Settings

PROBE = Path(__file__).with_name("isolation_probe.py")
pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="agents get users of their own only when the platform is root")


@pytest.fixture
def settings() -> Iterator[Settings]:
    home = Path(tempfile.mkdtemp(prefix="paradyze-isolation-"))
    settings = Settings(PARADYZE_HOME=home, PARADYZE_INSTANCE=f"iso-{uuid.uuid4().hex[:6]}", PARADYZE_AGENT="reference")
    settings.secrets_key_value()  # the key file the platform writes into its state folder
    yield settings
    runtime = ProcessRuntime(settings)
    for owned in runtime.list_owned():
        runtime.stop(owned.handle, grace=1.0)
    shutil.rmtree(home, ignore_errors=True)


def character(folder: Path, name: str, **extra: object) -> Path:
    path = folder / f"{name}.character.json"
    path.write_text(json.dumps({"name": name, "bio": f"{name} is a test agent.", **extra}))
    return path


def wait_health(url: str, agent_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/server/health", headers={"X-API-KEY": api_key(agent_id)}, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered health")


def probe_result(runtime: ProcessRuntime, handle: str) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in runtime.logs(handle):
            if line.startswith("PROBE "):
                return dict(json.loads(line.removeprefix("PROBE ")))
        time.sleep(0.1)
    raise AssertionError(f"the probe printed nothing: {runtime.logs(handle)}")


def test_an_agent_cannot_read_another_agent_the_state_folder_or_the_keys(settings: Settings, tmp_path: Path) -> None:
    victim_runtime = ProcessRuntime(settings)
    victim_id = str(uuid.uuid4())
    victim = victim_runtime.start(AgentSpec(agent_id=victim_id, character_path=character(tmp_path, "Victim"),
                                            character_version=1, env={"VICTIM_SECRET": "s3cret-value"}))
    wait_health(victim.url, victim_id)
    victim_pid = json.loads(victim.handle)["pid"]
    assert "s3cret-value" in psutil.Process(victim_pid).environ().get("VICTIM_SECRET", "")  # root sees it

    state = settings.state_dir
    victim_home = settings.agent_home(victim_id)
    targets = {
        "own character": "character.json",  # relative: the probe runs in its own home
        "state folder": str(state),
        "secrets key": str(state / "secrets-key"),
        "victim environ": f"/proc/{victim_pid}/environ",
        "victim home": str(victim_home),
        "victim character": str(victim_home / "character.json"),
        "victim log": str(settings.run_dir / "logs" / f"{victim_id}.log"),
        "homes": str(victim_home.parent),
    }
    command = f"/usr/bin/python3 {PROBE} {{character}} {{port}}"
    prober = ProcessRuntime(settings.model_copy(update={"agent_command": command}))
    prober_id = str(uuid.uuid4())
    started = prober.start(AgentSpec(agent_id=prober_id, character_path=character(tmp_path, "Prober", probe=targets),
                                     character_version=1))
    result = probe_result(prober, started.handle)

    assert result["own character"].startswith("read: ")  # the probe works: it reads its own home
    for label in targets:
        if label != "own character":
            assert result[label] == "denied", (label, result[label])

    uids = {psutil.Process(json.loads(h)["pid"]).uids().real for h in (victim.handle, started.handle)}
    assert len(uids) == 2 and 0 not in uids and os.geteuid() not in uids
    assert (victim_home.stat().st_uid, victim_home.stat().st_mode & 0o777) == (json.loads(victim.handle)["uid"], 0o700)


def test_an_agent_keeps_its_uid_across_restarts_and_never_shares_it(settings: Settings, tmp_path: Path) -> None:
    runtime = ProcessRuntime(settings)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    path = character(tmp_path, "Twin")
    a1 = runtime.start(AgentSpec(agent_id=first, character_path=path, character_version=1))
    b = runtime.start(AgentSpec(agent_id=second, character_path=path, character_version=1))
    runtime.stop(a1.handle, grace=2.0)
    a2 = runtime.start(AgentSpec(agent_id=first, character_path=path, character_version=1))
    uid = {name: json.loads(h)["uid"] for name, h in (("a1", a1.handle), ("a2", a2.handle), ("b", b.handle))}
    assert uid["a1"] == uid["a2"] != uid["b"]
    # Another platform instance on this host (its own state folder and database) never hands out the same uid.
    other = ProcessRuntime(Settings(PARADYZE_HOME=Path(tempfile.mkdtemp(prefix="paradyze-isolation-")),
                                    PARADYZE_INSTANCE="iso-other", PARADYZE_AGENT="reference"))
    third = other.start(AgentSpec(agent_id=str(uuid.uuid4()), character_path=path, character_version=1))
    try:
        assert json.loads(third.handle)["uid"] not in uid.values()
    finally:
        other.stop(third.handle, grace=1.0)
        shutil.rmtree(other.settings.state_dir, ignore_errors=True)
