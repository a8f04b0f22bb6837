"""The console's own identity on Cloud Run: Google ID tokens of its service account, for the functions.

Deployed, the console runs as a service account of its own and holds no admin token: it asks the
metadata server (or a service-account key named by GOOGLE_APPLICATION_CREDENTIALS) for an ID token
whose audience is the functions' (PARADYZE_API_AUDIENCE), and the functions take that account as an
admin (PARADYZE_CONSOLE_SERVICE_ACCOUNT). Tokens live an hour and are kept until five minutes before.
"""

from __future__ import annotations

import threading
import time

_REFRESH_BEFORE_S = 300
_cache: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


class NoIdentity(Exception):
    """No ID token could be had: no metadata server and no service-account key."""


def id_token(audience: str) -> str:
    """An ID token for audience, from the cache while it stays fresh. Raises NoIdentity."""
    with _lock:
        cached = _cache.get(audience)
    if cached and cached[1] - _REFRESH_BEFORE_S > time.time():
        return cached[0]
    # Imported here: only a deployed console needs google-auth.
    import google.auth.exceptions
    import google.auth.jwt
    import google.auth.transport.requests
    import google.oauth2.id_token

    try:
        token: str = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    except google.auth.exceptions.GoogleAuthError as exc:
        raise NoIdentity(f"no Google identity to call the functions with ({type(exc).__name__}: {exc})") from exc
    expires = float(google.auth.jwt.decode(token, verify=False).get("exp", time.time() + 600))
    with _lock:
        _cache[audience] = (token, expires)
    return token
