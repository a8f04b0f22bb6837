"""The SQL of a message's one write. Parameterised; messaging owns the transaction."""

from __future__ import annotations

from .db import Conn


def record_delivery(conn: Conn, *, agent_id: str, count: int, owner_id: str, sender: str,
                    turns: list[tuple[str, str]], slot_id: str | None) -> None:
    """In one statement: count `count` messages to and from the agent and stamp its activity, append
    the (role, text) turns to the (agent, sender) conversation in order, and free the request slot."""
    conn.execute(
        "with counted as ("
        "  update public.agents set last_activity_at = greatest(last_activity_at, now()),"
        "   message_count = message_count + %(count)s where id = %(agent)s"
        "), stored as ("
        "  insert into public.agent_messages (agent_id, user_id, sender, role, text)"
        "  select %(agent)s, %(owner)s, %(sender)s, t.role, t.text"
        "   from unnest(%(roles)s::text[], %(texts)s::text[]) with ordinality as t(role, text, n) order by t.n"
        "), freed as ("
        "  delete from public.user_operations where id = %(slot)s"
        ") select 1",
        {"agent": agent_id, "count": count, "owner": owner_id, "sender": sender,
         "roles": [role for role, _ in turns], "texts": [text for _, text in turns], "slot": slot_id},
    )
