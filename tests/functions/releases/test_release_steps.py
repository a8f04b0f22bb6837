"""A crash at each step of a release, then reconcile: exactly one instance serves, and the record says which.

The crash is an exception no handler catches, raised where crash_point would end the process: every
step before it is committed, the agent processes keep running, the agent's lock is let go, as when
the functions die. The same crash by os._exit is in tests/local_emulator/test_release_crashes.py.
"""

from __future__ import annotations

import copy

import pytest

from helpers import Functions, User, agent_processes, fixture_characters
from paradyze import reconcile, releases, slots

CHARACTERS = fixture_characters()


class Crash(BaseException):
    """The functions died here."""


def instances_of(agent_id: str) -> list[int]:
    found = agent_processes()
    return found.get(agent_id, []) + found.get(slots.twin(agent_id), [])


@pytest.mark.parametrize("step,serving", [
    ("release:recorded", "blue"), ("release:green_started", "blue"), ("release:green_recorded", "blue"),
    ("release:tested", "blue"), ("release:switched", "green"),
])
def test_a_crash_at_each_step_ends_with_one_serving_instance(
        functions: Functions, alice: User, cleanup_agents: list[str], monkeypatch: pytest.MonkeyPatch,
        step: str, serving: str) -> None:
    resp = functions.post("create_agent", alice.token, {"character": CHARACTERS["eliza-default"]})
    agent = resp.get_json()["agent"]
    cleanup_agents.append(agent["id"])
    v2 = copy.deepcopy(CHARACTERS["eliza-default"])
    v2["bio"] = [*v2["bio"], "A second version."]

    def crash_point(name: str) -> None:
        if name == step:
            raise Crash(name)

    monkeypatch.setattr(releases, "crash_point", crash_point)
    with pytest.raises(Crash):
        functions.post("release_version", alice.token, {"agent_id": agent["id"], "character": v2, "grace_seconds": 0})
    monkeypatch.undo()
    reconcile.reconcile_one(agent["id"], actor="test restart")

    after = functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]
    [release] = functions.get("list_releases", alice.token, agent_id=agent["id"]).get_json()["releases"]
    assert release["serving"] == serving and release["status"] == ("done" if serving == "green" else "rolled_back")
    assert after["status"] == "running" and after["running_version"] == (2 if serving == "green" else 1)
    assert (after["url"] == agent["url"]) == (serving == "blue")
    assert len(instances_of(agent["id"])) == 1
    reply = functions.post("send_message", alice.token, {"agent_id": agent["id"], "text": "thanks"})
    assert reply.status_code == 200 and reply.get_json()["replies"][0]["text"] == "anytime."
    # And the next release goes through from whichever instance serves.
    again = functions.post("release_version", alice.token, {"agent_id": agent["id"], "version": 2, "grace_seconds": 0})
    assert again.get_json()["release"]["status"] == "done", again.get_json()
    assert len(instances_of(agent["id"])) == 1
