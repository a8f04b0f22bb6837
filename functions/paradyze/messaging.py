"""Sending a message to an agent, waking it first when it is hibernated (wake-on-message)."""

from __future__ import annotations

import time
from typing import Any

from . import (
    agent_client,
    conversation,
    db,
    delivery_repository,
    eliza_character,
    lifecycle,
    limits,
    telemetry,
)
from .agents import Agent, MessageSend
from .auth import SYSTEM, Caller
from .errors import (
    AgentBusy,
    AgentFailed,
    AgentUnreachable,
    InvalidTransition,
    ModelKeyMissing,
    NotFound,
    Unavailable,
)
from .instances import require_agent
from .settings import get_settings


def send(caller: Caller, cmd: MessageSend) -> dict[str, Any]:
    """Deliver cmd.text and return the agent's replies: {"replies": [...], "woke": bool}.

    To a running agent that is one round of reads (the caller's request slot and rate, then the
    agent as the caller) and one write after the reply (counts, activity stamp, the conversation,
    and the slot given back); the message is held in flight meanwhile (db.message_in_flight), so a
    hibernate waits for it. A hibernated agent is woken first, within this request: messages arriving during
    one wake wait on the same wake (the agent's lock), so they cause one start. The message is
    delivered once or reported undelivered, never half: it is sent only to a running agent, and a
    failed send is not retried. An agent that chooses not to answer gives no replies. Raises
    NotFound, InvalidTransition (agent in error), RateLimited, QuotaExceeded (waking it would pass
    the owner's quota), Unavailable (the wake took longer than wake_timeout_s, or the message did
    not reach the agent), and AgentFailed (it reached the agent, which failed to reply: a client
    must not send it again).
    """
    deadline = time.monotonic() + cmd.wake_timeout_s
    woke = False
    slot: limits.Slot | None = None
    try:
        while True:
            # In flight before the read: a hibernate that marks the agent after this read waits for us.
            # Every statement of the message runs on the connection that holds it.
            with db.message_in_flight(cmd.agent_id, timeout=max(0.01, deadline - time.monotonic())) as conn:
                if slot is None:
                    slot, agent = _admit_and_read(conn, caller, cmd.agent_id)
                else:
                    with db.transaction_on(conn, caller):
                        agent = require_agent(conn, cmd.agent_id)
                if agent.status == "running" and agent.url:
                    return {"replies": _deliver(conn, caller, agent, cmd, deadline, slot), "woke": woke,
                            "agent_id": cmd.agent_id}
            if agent.status == "error":
                raise InvalidTransition(f"agent {cmd.agent_id} is in error ({agent.status_reason}); wake it first",
                                        details=[{"loc": ["agent_id"], "msg": "agent is in error"}])
            if woke and time.monotonic() > deadline:
                raise _undelivered(cmd.agent_id, "the agent did not stay running")
            woke = True
            _wake_within(caller, cmd.agent_id, deadline)
    finally:
        if slot is not None:
            limits.give_back_alone(slot)  # only when the message's own write did not


def _admit_and_read(conn: db.Conn, caller: Caller, agent_id: str) -> tuple[limits.Slot, Agent]:
    """The message's one round of reads: the caller's request slot and rate (as the platform), then
    the agent as the caller, under RLS. Raises TooManyInFlight, RateLimited, NotFound."""
    with db.transaction_on(conn, SYSTEM):
        slot = limits.admit(conn, caller, "send_message", then_as_caller=True)
        try:
            return slot, require_agent(conn, agent_id)
        except NotFound as exc:
            missing = exc  # the call still counts against the rate: commit it, then free the slot
    limits.give_back(conn, slot)  # a statement alone, on this connection: a message never takes two
    slot.id = None
    raise missing


def _deliver(conn: db.Conn, caller: Caller, agent: Agent, cmd: MessageSend, deadline: float,
             slot: limits.Slot) -> list[dict[str, Any]]:
    assert agent.url is not None
    if get_settings().agent == "elizaos" and eliza_character.started_without_model(agent.id):
        raise _no_model(agent.id)  # ElizaOS would store the message and fail: never send it
    replies: list[dict[str, Any]] = []
    answered = False
    sent_at = time.monotonic()
    try:
        replies = agent_client.get_client().send_message(
            agent.url, agent.id, cmd.text, user_id=caller.user_id or "admin",
            eliza_agent_id=agent.eliza_agent_id, timeout=max(5.0, deadline - time.monotonic()))
        answered = True
    except AgentUnreachable as exc:
        raise AgentUnreachable(f"agent {agent.id} did not answer; the message was not delivered"
                               f" ({exc.message})") from exc
    except AgentFailed as exc:
        raise AgentFailed(f"the message to agent {agent.id} was delivered, but {exc.message};"
                          " sending it again would repeat it",
                          details=[{"loc": ["agent_id"], "msg": "delivered, no reply"}]) from exc
    finally:
        telemetry.message_done(cmd.agent_id, sent_at, len(replies))
        # The message's one write, one statement and its own transaction: counts, activity, the
        # conversation the console reads back (when it was answered), and the request slot back.
        delivery_repository.record_delivery(
            conn, agent_id=agent.id, count=1 + len(replies), owner_id=agent.user_id,
            sender=conversation.sender(caller), turns=conversation.turns(cmd.text, replies) if answered else [],
            slot_id=slot.id)
        slot.id = None
    return replies


def _wake_within(caller: Caller, agent_id: str, deadline: float) -> None:
    """Wake the agent, waiting no longer than deadline; a start still under way is left to finish
    by the next message, a wake, or the sweep (reconcile), never by a thread outliving the request."""
    try:
        lifecycle.wake(caller, agent_id, reason="message arrived", deadline=deadline)
    except AgentBusy:
        raise _undelivered(agent_id, "it is still waking") from None
    if time.monotonic() > deadline:
        raise _undelivered(agent_id, "it was still waking when wake_timeout_s ran out")


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
