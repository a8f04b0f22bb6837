"""Sending a message to an agent, waking it first when it is hibernated (wake-on-message)."""

from __future__ import annotations

import time
from typing import Any

from . import agent_client, db, lifecycle, repository
from .agents import MessageSend
from .auth import SYSTEM, Caller
from .errors import AgentUnreachable, InvalidTransition, Unavailable

# A message to an agent in these states starts (or joins) a wake, then is delivered.
_WAKEABLE = frozenset({"hibernated", "hibernating", "waking", "provisioning"})


def send(caller: Caller, cmd: MessageSend) -> dict[str, Any]:
    """Deliver cmd.text and return the agent's replies: {"replies": [...], "woke": bool}.

    The message is delivered once or reported undelivered (503 with Retry-After), never half:
    it is sent only after the agent answers health, and a failed send is not retried.
    Raises NotFound, InvalidTransition (agent in error), Unavailable.
    """
    agent = lifecycle.get(caller, cmd.agent_id)
    deadline = time.monotonic() + cmd.wake_timeout_s
    woke = False
    if agent.status in _WAKEABLE or (agent.status == "running" and not agent.url):
        woke = True
        # Concurrent messages queue on the agent's lock behind one wake; later ones find it running.
        agent = lifecycle.wake(caller, cmd.agent_id, reason="message arrived")
    elif agent.status == "error":
        raise InvalidTransition(f"agent {cmd.agent_id} is in error ({agent.status_reason}); wake it first",
                                details=[{"loc": ["agent_id"], "msg": "agent is in error"}])
    if time.monotonic() > deadline:
        raise Unavailable(f"agent {cmd.agent_id} took longer than {cmd.wake_timeout_s:.0f} s to wake;"
                          " the message was not delivered, send it again")
    with db.transaction(SYSTEM) as conn:
        row = repository.get_agent(conn, cmd.agent_id)
        repository.touch_activity(conn, cmd.agent_id, messages=1)
    assert row is not None and row["url"]
    try:
        replies = agent_client.send_message(row["url"], row["eliza_agent_id"] or row["name"], cmd.text,
                                            user_id=caller.user_id or "admin",
                                            timeout=max(1.0, deadline - time.monotonic()))
    except AgentUnreachable as exc:
        raise AgentUnreachable(f"agent {cmd.agent_id} did not answer; the message was not delivered"
                               f" ({exc.message})") from exc
    with db.transaction(SYSTEM) as conn:
        repository.touch_activity(conn, cmd.agent_id, messages=len(replies))
    return {"replies": [{"text": r.get("text", ""), **{k: v for k, v in r.items() if k != "text"}} for r in replies],
            "woke": woke, "agent_id": cmd.agent_id}
