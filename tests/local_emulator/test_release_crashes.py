"""A real crash of the functions (os._exit at a release step) ends, after the restart, with exactly one
instance serving the agent, and the release's record says which. Every step is covered in process by
tests/functions/releases/test_release_steps.py; here the step after the switch, whose finish (blue
stopped) is left to the restart."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from helpers import Emulator, agent_processes, fixture_characters, free_port
from paradyze import slots

pytestmark = pytest.mark.e2e
CHARACTERS = fixture_characters()


def instances_of(agent_id: str) -> list[int]:
    found = agent_processes("e2e-")
    return found.get(agent_id, []) + found.get(slots.twin(agent_id), [])


@pytest.fixture
def crashing(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """An emulator that exits at the step the test names (create works: it passes no release step)."""
    emu = Emulator(home=tmp_path / "home", port=free_port())
    emu.home.mkdir()
    emu.start(PARADYZE_TEST_CRASH_AFTER=request.param)
    yield emu
    emu.stop()


@pytest.mark.parametrize("crashing,serving", [("release:switched", "green")], indirect=["crashing"])
def test_a_crash_during_a_release_ends_with_one_serving_instance(crashing: Emulator, serving: str) -> None:
    emulator = crashing
    resp = emulator.post("create_agent", {"character": CHARACTERS["eliza-default"]})
    assert resp.status_code == 201, resp.text
    agent = resp.json()["agent"]
    v2 = copy.deepcopy(CHARACTERS["eliza-default"])
    v2["bio"] = [*v2["bio"], "A second version."]
    with pytest.raises(requests.ConnectionError):
        emulator.post("release_version", {"agent_id": agent["id"], "character": v2, "grace_seconds": 0})
    emulator.proc.wait(timeout=30)
    assert len(instances_of(agent["id"])) == 2, "blue and green both outlived the crash"
    emulator.start()  # reconcile finishes or rolls back the release

    after = emulator.get("get_agent", agent_id=agent["id"]).json()["agent"]
    [release] = emulator.get("list_releases", agent_id=agent["id"]).json()["releases"]
    assert release["serving"] == serving and release["status"] == ("done" if serving == "green" else "rolled_back")
    assert after["status"] == "running" and after["running_version"] == (2 if serving == "green" else 1)
    assert (after["url"] == agent["url"]) == (serving == "blue")
    assert len(instances_of(agent["id"])) == 1
    reply = emulator.post("send_message", {"agent_id": agent["id"], "text": "thanks"})
    assert reply.status_code == 200 and reply.json()["replies"][0]["text"] == "anytime."
