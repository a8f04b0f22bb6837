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
    token = token.strip()
    if settings.scheduler_service_account and _algorithm(token) == "RS256":
        return _scheduler_caller(token, settings)
    try:
        claims = jwt.decode(
            token,
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
    # uuid.UUID also reads "urn:uuid:…" and braces; Postgres (auth.uid()) reads the claim as written.
    if str(sub).lower() != user_id:
        raise Unauthenticated("the token's 'sub' must be the user's uuid in its plain form")
    return Caller(role=USER_ROLE, user_id=user_id, claims=claims)


def _algorithm(token: str) -> str | None:
    try:
        return str(jwt.get_unverified_header(token).get("alg"))
    except jwt.InvalidTokenError:
        return None


_GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


def _scheduler_caller(token: str, settings: Settings) -> Caller:
    """Cloud Scheduler's OIDC token: signed by Google, for our audience, of the configured account."""
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.id_token

    audience = settings.scheduler_oidc_audience or settings.public_url
    try:
        claims = google.oauth2.id_token.verify_token(
            token, google.auth.transport.requests.Request(), audience=audience, certs_url=settings.google_certs_url,
            clock_skew_in_seconds=30,
        )
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise Unauthenticated(f"invalid OIDC token: {exc}") from exc
    if claims.get("iss") not in _GOOGLE_ISSUERS:
        raise Unauthenticated("the OIDC token was not issued by Google")
    if claims.get("email") != settings.scheduler_service_account or not claims.get("email_verified"):
        raise Forbidden("the OIDC token is not the scheduler's service account")
    return Caller(role=ADMIN_ROLE, user_id=None,
                  claims={"role": ADMIN_ROLE, "actor": f"scheduler:{claims['email']}"})


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
