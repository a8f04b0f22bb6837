"""Callers and their tokens: HS256 JWTs as Supabase issues them."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from .errors import Forbidden, Unauthenticated
from .settings import Settings

ADMIN_ROLE = "service_role"
USER_ROLE = "authenticated"


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


def caller_from_header(header: str | None, settings: Settings) -> Caller:
    """The caller named by an Authorization header; raises Unauthenticated."""
    if not header:
        raise Unauthenticated("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    try:
        claims = jwt.decode(
            token.strip(),
            settings.jwt_secret_value(),
            algorithms=["HS256"],
            options={"require": ["role"], "verify_aud": False},
            leeway=30,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    role = claims.get("role")
    if role == ADMIN_ROLE:
        return Caller(role=ADMIN_ROLE, user_id=None, claims=claims)
    if role != USER_ROLE:
        raise Forbidden(f"tokens with role {role!r} cannot call this API")
    sub = claims.get("sub")
    try:
        user_id = str(uuid.UUID(str(sub)))
    except ValueError as exc:
        raise Unauthenticated("the token's 'sub' must be the user's uuid") from exc
    return Caller(role=USER_ROLE, user_id=user_id, claims=claims)


def mint_token(settings: Settings, *, role: str, sub: str | None = None, ttl: int = 3600,
               actor: str | None = None) -> str:
    """A token like Supabase's: for tests, the local emulator's admin token and the scheduler."""
    now = int(time.time())
    claims: dict[str, Any] = {"role": role, "iss": "paradyze-local", "iat": now, "exp": now + ttl}
    if sub:
        claims["sub"] = sub
        claims["aud"] = "authenticated"
    if actor:
        claims["actor"] = actor
    return jwt.encode(claims, settings.jwt_secret_value(), algorithm="HS256")
