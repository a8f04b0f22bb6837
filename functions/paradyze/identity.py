"""Google ID tokens for calling private Cloud Run agents: fetched with the platform's credentials, cached."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlparse

import jwt

from .errors import RuntimeUnavailable
from .settings import get_settings

_REFRESH_BEFORE_S = 300  # Google ID tokens live an hour; renew well before they lapse
_cache: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


def headers_for(url: str) -> dict[str, str]:
    """The Authorization header a request to the agent at url needs ({} for agents that are open).

    Raises RuntimeUnavailable when no identity token can be had (no credentials, metadata server down).
    """
    settings = get_settings()
    if settings.cloud_run_public or not settings.cloud_run_invoker:
        return {}
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if not any(host.endswith(suffix.strip()) for suffix in settings.id_token_hosts.split(",") if suffix.strip()):
        return {}
    return {"Authorization": f"Bearer {token(f'{parsed.scheme}://{parsed.netloc}')}"}


def token(audience: str) -> str:
    """An ID token for audience (the agent's base URL), from the cache while it stays fresh."""
    with _lock:
        cached = _cache.get(audience)
    if cached and cached[1] - _REFRESH_BEFORE_S > time.time():
        return cached[0]
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.id_token

    try:
        fresh: str = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    except google.auth.exceptions.GoogleAuthError as exc:
        raise RuntimeUnavailable(f"cannot get an identity token to call the agent: {type(exc).__name__}") from exc
    expires = float(jwt.decode(fresh, options={"verify_signature": False}).get("exp", time.time() + 600))
    with _lock:
        _cache[audience] = (fresh, expires)
    return fresh
