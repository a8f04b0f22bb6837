"""The admin token: minted on demand, short-lived, and revoked all at once by moving a generation on.

An admin token is an HS256 JWT signed with the platform's JWT secret, with role service_role, its
own audience and issuer (so no user token passes for one), a lifetime of at most
PARADYZE_ADMIN_TOKEN_TTL_HOURS, and the generation it was minted under. revoke_all() moves the
generation on in the database, and every token of an older generation is refused from then on, on
every instance. Mint one with `python -m local_emulator.admin_token`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from . import db
from . import limits_repository as repo
from .caller import ADMIN_ROLE, SYSTEM
from .settings import Settings

AUDIENCE = "paradyze-admin"
ISSUER = "paradyze"


def mint(settings: Settings, *, ttl_hours: float | None = None, actor: str = "admin") -> str:
    """A new admin token of the current generation; ttl_hours is capped at the configured lifetime.

    Raises DatabaseUnavailable.
    """
    hours = min(ttl_hours or settings.admin_token_ttl_hours, settings.admin_token_ttl_hours)
    with db.transaction(SYSTEM) as conn:
        generation = repo.admin_token_generation(conn)
    now = int(time.time())
    claims: dict[str, Any] = {
        "role": ADMIN_ROLE, "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + int(hours * 3600),
        "jti": str(uuid.uuid4()), "gen": generation, "actor": actor,
    }
    return jwt.encode(claims, settings.jwt_secret_value(), algorithm="HS256")


def revoke_all() -> int:
    """Refuse every admin token minted so far; returns the new generation. Raises DatabaseUnavailable."""
    with db.transaction(SYSTEM) as conn:
        return repo.next_admin_token_generation(conn)


def current_generation() -> int:
    """Raises DatabaseUnavailable."""
    with db.transaction(SYSTEM) as conn:
        return repo.admin_token_generation(conn)


def describe(token: str) -> str:
    """A line that names a token without giving it away: its id, actor and expiry, never the signature."""
    claims = jwt.decode(token, options={"verify_signature": False})
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(claims["exp"])))
    return (f"admin token {claims['jti']} for {claims.get('actor', 'admin')}, generation {claims['gen']},"
            f" valid until {expires}")
