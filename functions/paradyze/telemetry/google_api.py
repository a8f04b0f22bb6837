"""An HTTP session for Google's REST APIs: Application Default Credentials in the cloud, none against a local fake."""

from __future__ import annotations

from datetime import UTC, datetime

import requests


def session(endpoint_override: str | None, scopes: list[str]) -> requests.Session:
    """A session for one API: with Google credentials, or plain when endpoint_override names a fake."""
    if endpoint_override:
        return requests.Session()
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=scopes)
    return AuthorizedSession(credentials)


def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as the RFC 3339 timestamp Google's JSON APIs take."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
