"""Who is calling: the value every service and transaction takes (auth.py turns tokens into it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ADMIN_ROLE = "service_role"
USER_ROLE = "authenticated"

# The owner of agents the admin creates without naming a user. Supabase Auth never gives a user
# this id, and auth.py refuses user tokens that claim it, so no user can see those agents.
PLATFORM_OWNER = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a user (role authenticated, sub) or the platform's admin (service_role)."""

    role: str
    user_id: str | None
    claims: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE

    @property
    def actor(self) -> str:
        """How events name this caller."""
        return f"user:{self.user_id}" if not self.is_admin else str(self.claims.get("actor", "admin"))


SYSTEM = Caller(role=ADMIN_ROLE, user_id=None, claims={"role": ADMIN_ROLE, "actor": "system"})
