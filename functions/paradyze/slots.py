"""An agent's two runtime identities: its own id (blue or green in turn) and its twin.

A blue/green release runs the new version beside the old one, and two servers of one agent must
never share a home: a home holds the agent's memory (ElizaOS's PGlite folder, which one server at a
time may open), and the process runtime ends whatever still runs as a home's user before it starts
another. So the new version runs as the agent's twin, with a home, user and container of its own,
and the two identities take turns serving. The twin of an agent id (a version 4 uuid, as
gen_random_uuid and uuid4 make) is the same uuid marked version 8 (RFC 9562's custom version), so
the agent is found from either without a lookup; its key is the agent's (agent_keys).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .agents import Agent

_TWIN_VERSION = 8
_AGENT_VERSION = 4


def _with_version(value: str, version: int) -> str:
    raw = bytearray(uuid.UUID(value).bytes)
    raw[6] = (raw[6] & 0x0F) | (version << 4)
    return str(uuid.UUID(bytes=bytes(raw)))


def twin(agent_id: str) -> str:
    """The agent's second runtime identity."""
    return _with_version(agent_id, _TWIN_VERSION)


def agent_of(instance_id: str) -> str:
    """The agent an identity belongs to: itself, or the agent whose twin it is."""
    try:
        parsed = uuid.UUID(instance_id)
    except ValueError:
        return instance_id
    return _with_version(instance_id, _AGENT_VERSION) if parsed.version == _TWIN_VERSION else instance_id


def serving(agent: Agent) -> str:
    """The identity that serves the agent."""
    return agent.instance_id or agent.id


def other(agent: Agent) -> str:
    """The identity that does not serve: where the next release starts green."""
    return twin(agent.id) if serving(agent) == agent.id else agent.id
