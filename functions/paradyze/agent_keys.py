"""Each agent's own API key (ElizaOS's ELIZA_SERVER_AUTH_TOKEN): derived, so it is never stored."""

from __future__ import annotations

import hashlib
import hmac

from .settings import get_settings
from .slots import agent_of


def api_key(agent_id: str) -> str:
    """The key the platform gives the agent at start and sends as X-API-KEY on every call.

    Derived from the platform's secrets key and the agent id: the platform can always recompute
    it, no table or response ever holds it, and one agent's key says nothing about another's.
    """
    secret = get_settings().secrets_key_value().encode()
    # An agent's twin (the green of a blue/green release) is the same agent, with the same key.
    return hmac.new(secret, f"agent-api-key:{agent_of(agent_id)}".encode(), hashlib.sha256).hexdigest()
