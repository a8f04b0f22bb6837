"""Sending a message to an agent, waking it first when it is hibernated (wake-on-message)."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from . import (
    agent_client,
    conversation,
    db,
    eliza_character,
    lifecycle,
    limits,
    queries,
    repository,
    telemetry,
)
from .agents import AgentPublic, MessageSend
from .auth import SYSTEM, Caller
from .errors import AgentFailed, AgentUnreachable, InvalidTransition, ModelKeyMissing, Unavailable
from .settings import get_settings

# Wakes run here so that a message can stop waiting for one without cancelling it: the agent
# still comes up, and the next message finds it running.
_wakes = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="wake-on-message")


def send(caller: Caller, cmd: MessageSend) -> dict[str, Any]:
    """Deliver cmd.text and return the agent's replies: {"replies": [...], "woke": bool}.

    A hibernated agent is woken first; messages arriving during one wake wait on the same wake
    (the agent's lock), so they cause one start. The message is delivered once or reported
    undelivered, never half: it is sent only to a running agent that answers health, and a
    failed send is not retried. An agent that chooses not to answer gives no replies. Raises
    NotFound, InvalidTransition (agent in error), RateLimited, QuotaExceeded (waking it would pass
    the owner's quota), Unavailable (the wake took longer than wake_timeout_s, or the message did
    not reach the agent), and AgentFailed (it reached the agent, which failed to reply: a client
    must not send it again).
    """
    limits.check_rate(caller, "send_message")
    deadline = time.monotonic() + cmd.wake_timeout_s
    agent = queries.get(caller, cmd.agent_id)
    woke = False
    while True:
        if agent.status == "error":
            raise InvalidTransition(f"agent {cmd.agent_id} is in error ({agent.status_reason}); wake it first",
                                    details=[{"loc": ["agent_id"], "msg": "agent is in error"}])
        if agent.status != "running" or not agent.url:
            woke = True
            agent = _wake_within(caller, cmd.agent_id, deadline)
        if get_settings().agent == "elizaos" and eliza_character.started_without_model(cmd.agent_id):
            raise _no_model(cmd.agent_id)  # ElizaOS would store the message and fail: never send it
        with db.transaction(SYSTEM) as conn:
            admitted = repository.begin_message(conn, cmd.agent_id)
            row = repository.get_agent(conn, cmd.agent_id)
        if admitted and row is not None:
            break
        if time.monotonic() > deadline:
            raise _undelivered(cmd.agent_id, "the agent did not stay running")
        agent = queries.get(caller, cmd.agent_id)  # hibernated again meanwhile: wake it again
    replies: list[dict[str, Any]] = []
    sent_at = time.monotonic()
    try:
        replies = agent_client.get_client().send_message(
            row["url"], cmd.agent_id, cmd.text, user_id=caller.user_id or "admin",
            eliza_agent_id=row["eliza_agent_id"], timeout=max(5.0, deadline - time.monotonic()))
    except AgentUnreachable as exc:
        raise AgentUnreachable(f"agent {cmd.agent_id} did not answer; the message was not delivered"
                               f" ({exc.message})") from exc
    except AgentFailed as exc:
        raise AgentFailed(f"the message to agent {cmd.agent_id} was delivered, but {exc.message};"
                          " sending it again would repeat it",
                          details=[{"loc": ["agent_id"], "msg": "delivered, no reply"}]) from exc
    finally:
        telemetry.message_done(cmd.agent_id, sent_at, len(replies))
        with db.transaction(SYSTEM) as conn:
            repository.end_message(conn, cmd.agent_id, len(replies))
    conversation.record(caller, cmd.agent_id, str(row["user_id"]), cmd.text, replies)
    return {"replies": replies, "woke": woke, "agent_id": cmd.agent_id}


def _wake_within(caller: Caller, agent_id: str, deadline: float) -> AgentPublic:
    future = _wakes.submit(telemetry.carry(lifecycle.wake), caller, agent_id, reason="message arrived")
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except concurrent.futures.TimeoutError:
        raise _undelivered(agent_id, "it is still waking") from None


def _undelivered(agent_id: str, why: str) -> Unavailable:
    return Unavailable(f"the message to agent {agent_id} was not delivered: {why}; send it again shortly",
                       details=[{"loc": ["agent_id"], "msg": why}])


def _no_model(agent_id: str) -> ModelKeyMissing:
    keys = "OPENAI_API_KEY, ANTHROPIC_API_KEY or OPENROUTER_API_KEY"
    return ModelKeyMissing(
        f"agent {agent_id} has no model to answer with, so the message was not sent: set {keys} for the"
        " platform (then hibernate and wake the agent), or in the character's settings.secrets with"
        " update_character",
        details=[{"loc": ["agent_id"], "msg": f"no model key: set {keys}"}])
