"""Google ID tokens for calling private Cloud Run agents: an httpx.Auth that fetches and caches them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from urllib.parse import urlsplit

import httpx
import jwt

from .errors import RuntimeUnavailable
from .settings import Settings

_REFRESH_BEFORE_S = 300  # Google ID tokens live an hour; renew well before they lapse

Fetch = Callable[[str], str]


class IdTokenAuth(httpx.Auth):
    """Adds `Authorization: Bearer <ID token for the agent's base URL>` to calls to hosts ending in
    one of `hosts` (Cloud Run's `.run.app`); other hosts are called as they are.

    Tokens are cached per audience until five minutes before they expire. Raises RuntimeUnavailable
    (from the request) when no token can be had: no credentials, metadata server down.
    """

    def __init__(self, hosts: list[str], fetch: Fetch | None = None) -> None:
        self.hosts = [h for h in (s.strip() for s in hosts) if h]
        self._fetch = fetch or _fetch_google_id_token
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> IdTokenAuth | None:
        """The auth private Cloud Run agents need, or None when agents are public or no invoker is set."""
        if settings.cloud_run_public or not settings.cloud_run_invoker:
            return None
        return cls(settings.id_token_hosts.split(","))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers_for(str(request.url)))
        yield request

    def headers_for(self, url: str) -> dict[str, str]:
        """What a call to url carries: the ID token for its base URL when its host is one of ours."""
        parts = urlsplit(url)
        if not any((parts.hostname or "").endswith(suffix) for suffix in self.hosts):
            return {}
        return {"Authorization": f"Bearer {self.token(f'{parts.scheme}://{parts.netloc}')}"}

    def token(self, audience: str) -> str:
        """An ID token for audience (the agent's base URL), from the cache while it stays fresh."""
        with self._lock:
            cached = self._cache.get(audience)
        if cached and cached[1] - _REFRESH_BEFORE_S > time.time():
            return cached[0]
        fresh = self._fetch(audience)
        expires = float(jwt.decode(fresh, options={"verify_signature": False}).get("exp", time.time() + 600))
        with self._lock:
            self._cache[audience] = (fresh, expires)
        return fresh


def _fetch_google_id_token(audience: str) -> str:
    # Imported here: google-auth is needed only where agents run on private Cloud Run.
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.id_token

    try:
        token: str = google.oauth2.id_token.fetch_id_token(google.auth.transport.requests.Request(), audience)
    except google.auth.exceptions.GoogleAuthError as exc:
        raise RuntimeUnavailable(f"cannot get an identity token to call the agent: {type(exc).__name__}") from exc
    return token
