"""A message's one write: one call of public.record_message_delivery, in one round trip to the database."""

from __future__ import annotations

from . import db
from .caller import SYSTEM


def record_delivery(*, agent_id: str, count: int, owner_id: str, sender: str,
                    turns: list[tuple[str, str]], slot_id: str | None) -> None:
    """As the platform, in one statement: count `count` messages to and from the agent and stamp its
    activity, append the (role, text) turns to the (agent, sender) conversation in order, and free
    the request slot. Raises DatabaseUnavailable."""
    db.statement(
        SYSTEM,
        "select public.record_message_delivery(%(agent)s::uuid, %(count)s, %(owner)s::uuid, %(sender)s,"
        " %(roles)s::text[], %(texts)s::text[], %(slot)s::uuid)",
        {"agent": agent_id, "count": count, "owner": owner_id, "sender": sender,
         "roles": [role for role, _ in turns], "texts": [text for _, text in turns], "slot": slot_id},
    )
