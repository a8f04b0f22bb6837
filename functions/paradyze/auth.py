"""Callers and their tokens: users' HS256 JWTs as Supabase issues them, the admin token, and the Google
OIDC tokens of the platform's own service accounts (Cloud Scheduler's, the console's on Cloud Run)."""

from __future__ import annotations

import re
import time
from typing import Any

import jwt

from . import admin_tokens
from .caller import ADMIN_ROLE, PLATFORM_OWNER, SYSTEM, USER_ROLE, Caller
from .errors import Forbidden, Unauthenticated
from .settings import Settings

__all__ = ["ADMIN_ROLE", "PLATFORM_OWNER", "SYSTEM", "USER_ROLE", "USER_AUDIENCE", "Caller", "caller_from_header",
           "mint_token"]

# The audience Supabase Auth writes into every user's access token.
USER_AUDIENCE = "authenticated"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_LEEWAY_S = 30
_MINT_COMMAND = "python -m local_emulator.admin_token"


def caller_from_header(header: str | None, settings: Settings) -> Caller:
    """The caller named by an Authorization header.

    Raises Unauthenticated (no token, a bad or expired one, a revoked admin token) and Forbidden
    (a valid token of a role that cannot call the API). Raises DatabaseUnavailable when an admin
    token's generation cannot be checked.
    """
    if not header:
        raise Unauthenticated("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    token = token.strip()
    if _service_accounts(settings) and _algorithm(token) == "RS256":
        return _service_account_caller(token, settings)
    claims = _decode(token, settings)
    role = claims.get("role")
    if role == ADMIN_ROLE:
        return _admin_caller(claims, settings)
    if role != USER_ROLE:
        raise Forbidden(f"tokens with role {role!r} cannot call this API")
    return _user_caller(claims, settings)


def _decode(token: str, settings: Settings) -> dict[str, Any]:
    """The claims of a token signed with the JWT secret that has not expired; every token must expire."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret_value(),
            algorithms=["HS256"],
            options={"require": ["exp", "role"], "verify_aud": False},
            leeway=_LEEWAY_S,
        )
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"the token has no {exc.claim!r} claim; every token must name its role and"
                              " expire ('exp')") from exc
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    return claims


def _audiences(claims: dict[str, Any]) -> list[Any]:
    aud = claims.get("aud")
    return aud if isinstance(aud, list) else [aud]


def _user_caller(claims: dict[str, Any], settings: Settings) -> Caller:
    """A Supabase user: audience authenticated, our project's issuer (when configured), a uuid sub."""
    if USER_AUDIENCE not in _audiences(claims):
        raise Unauthenticated(f"the token's audience ('aud') must be {USER_AUDIENCE!r}, as Supabase Auth issues it")
    if settings.jwt_issuer and claims.get("iss") != settings.jwt_issuer:
        raise Unauthenticated(f"the token was not issued by {settings.jwt_issuer} ('iss')")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not _UUID.fullmatch(sub):
        raise Unauthenticated("the token's 'sub' must be the user's id, a uuid such as"
                              " 3f2b8c1e-5d4a-4e8b-9c7d-1a2b3c4d5e6f")
    user_id = sub.lower()
    if user_id == PLATFORM_OWNER:
        raise Unauthenticated("the token's 'sub' is the platform's reserved owner id, not a user's")
    return Caller(role=USER_ROLE, user_id=user_id, claims={**claims, "sub": user_id})


def _admin_caller(claims: dict[str, Any], settings: Settings) -> Caller:
    """An admin token minted by admin_tokens.mint: its audience and issuer, short-lived, not revoked."""
    if admin_tokens.AUDIENCE not in _audiences(claims) or claims.get("iss") != admin_tokens.ISSUER:
        raise Unauthenticated(f"not an admin token of this platform; mint one with `{_MINT_COMMAND}`")
    issued, expires, generation = claims.get("iat"), claims.get("exp"), claims.get("gen")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (issued, expires, generation)):
        raise Unauthenticated("an admin token needs integer 'iat', 'exp' and 'gen' claims")
    assert isinstance(issued, int) and isinstance(expires, int)
    if expires - issued > settings.admin_token_ttl_hours * 3600 + _LEEWAY_S or issued > time.time() + _LEEWAY_S:
        raise Unauthenticated(f"admin tokens live {settings.admin_token_ttl_hours:g} hours at most;"
                              f" mint a new one with `{_MINT_COMMAND}`")
    if generation != admin_tokens.current_generation():
        raise Unauthenticated(f"this admin token has been revoked; mint a new one with `{_MINT_COMMAND}`")
    return Caller(role=ADMIN_ROLE, user_id=None, claims=claims)


def _algorithm(token: str) -> str | None:
    try:
        return str(jwt.get_unverified_header(token).get("alg"))
    except jwt.InvalidTokenError:
        return None


_GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


def _service_accounts(settings: Settings) -> dict[str, str]:
    """The accounts whose Google OIDC tokens are admins, by email, with what they are called in events."""
    accounts = {"scheduler": settings.scheduler_service_account, "console": settings.console_service_account}
    return {email: name for name, email in accounts.items() if email}


def _service_account_caller(token: str, settings: Settings) -> Caller:
    """A Google OIDC token (Cloud Scheduler's, or the console's from its metadata server): signed by
    Google, for our audience, of one of the configured accounts, its email verified."""
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
    accounts = _service_accounts(settings)
    if claims.get("email") not in accounts or not claims.get("email_verified"):
        raise Forbidden("the OIDC token is not of the scheduler's or the console's service account")
    return Caller(role=ADMIN_ROLE, user_id=None,
                  claims={"role": ADMIN_ROLE, "actor": f"{accounts[claims['email']]}:{claims['email']}"})


def mint_token(settings: Settings, *, role: str = USER_ROLE, sub: str | None = None, ttl: int = 3600,
               actor: str | None = None) -> str:
    """A user's token as Supabase Auth issues it (for tests and local use); admin tokens: admin_tokens.mint."""
    now = int(time.time())
    claims: dict[str, Any] = {"role": role, "iss": settings.jwt_issuer or "paradyze-local", "iat": now,
                              "exp": now + ttl, "aud": USER_AUDIENCE}
    if sub:
        claims["sub"] = sub
    if actor:
        claims["actor"] = actor
    return jwt.encode(claims, settings.jwt_secret_value(), algorithm="HS256")
