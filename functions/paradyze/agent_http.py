"""HTTP/1.1 to agents over kept-alive connections: the standard library's http.client and a small pool.

A message is one short POST to an agent the platform already knows, so the call is kept to what it
needs: a pooled connection, the request, the whole answer read. httpx spent about a quarter of a
worker's CPU per message on URL models, auth and redirect flows and its pool; this spends a fraction.
`HttpxTransport` runs the same calls through an httpx transport (tests answer with
httpx.MockTransport as ElizaOS does).

Failures come out as three kinds, which decide whether a message may have been delivered:
ConnectFailed (it was not), TimedOut and ConnectionBroke (it may have been).
"""

from __future__ import annotations

import http.client
import json as jsonlib
import select
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

# Node closes idle keep-alive sockets after 5 s: drop ours first, so that a message is never written
# into a socket the agent is closing (which would leave its delivery in doubt).
IDLE_S = 4.0
CONNECT_TIMEOUT_S = 5.0
_IDLE_MAX = 64  # idle connections kept over all agents, as httpx's pool kept at most


class AgentHttpError(Exception):
    """A call that got no answer."""


class ConnectFailed(AgentHttpError):
    """No connection: nothing was sent."""


class TimedOut(AgentHttpError):
    """Sent, and no answer within the timeout."""


class ConnectionBroke(AgentHttpError):
    """Sent, and the connection broke before the whole answer came."""


@dataclass(frozen=True)
class Reply:
    """An agent's answer, read in full."""

    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        """The body as JSON. Raises ValueError when it is not."""
        return jsonlib.loads(self.content)


class Transport(Protocol):
    def request(self, method: str, url: str, *, headers: dict[str, str], body: bytes | None,
                timeout: float) -> Reply:
        """One call. Raises ConnectFailed, TimedOut, ConnectionBroke."""

    def close(self) -> None: ...


class KeepAlive:
    """Kept-alive connections per (scheme, host, port), shared by threads; thread-safe.

    A connection is used by one call at a time: taken from the idle list, given back after the
    whole answer is read. Idle ones older than IDLE_S, or that the agent closed, are not reused.
    """

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *, headers: dict[str, str], body: bytes | None,
                timeout: float) -> Reply:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        key = (parts.scheme, parts.hostname or "", parts.port or (443 if https else 80))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._take(key)
        if conn is None:
            cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
            conn = cls(key[1], key[2], timeout=min(CONNECT_TIMEOUT_S, timeout))
            try:
                conn.connect()
            except OSError as exc:
                conn.close()
                raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        assert conn.sock is not None
        conn.sock.settimeout(timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            reply = Reply(answer.status, answer.read(), {k.lower(): v for k, v in answer.getheaders()})
        except TimeoutError as exc:
            conn.close()
            raise TimedOut(f"no answer within {timeout:g} s") from exc
        except (http.client.HTTPException, OSError) as exc:
            conn.close()
            raise ConnectionBroke(type(exc).__name__) from exc
        if answer.will_close:
            conn.close()
        else:
            self._give_back(key, conn)
        return reply

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn, _ in conns:
                conn.close()

    def _take(self, key: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        now = time.monotonic()
        stale = []
        found = None
        with self._lock:
            conns = self._idle.get(key, [])
            while conns:
                conn, since = conns.pop()
                if now - since < IDLE_S and not _closed_by_peer(conn):
                    found = conn
                    break
                stale.append(conn)
            stale += [c for c, since in conns if now - since >= IDLE_S]
            conns[:] = [(c, since) for c, since in conns if now - since < IDLE_S]
        for conn in stale:
            conn.close()
        return found

    def _give_back(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        now = time.monotonic()
        stale = []
        with self._lock:
            # Agents not called for a while leave their idle connections here: drop the expired ones,
            # so that no more than _IDLE_MAX sockets stay open however many agents there are.
            for other in list(self._idle):
                stale += [c for c, since in self._idle[other] if now - since >= IDLE_S]
                kept = [(c, since) for c, since in self._idle[other] if now - since < IDLE_S]
                if kept:
                    self._idle[other] = kept
                else:
                    del self._idle[other]
            if sum(len(conns) for conns in self._idle.values()) < _IDLE_MAX:
                self._idle.setdefault(key, []).append((conn, now))
            else:
                stale.append(conn)
        for old in stale:
            old.close()


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed (or spoken out of turn): drop it."""
    if conn.sock is None:
        return True
    poller = select.poll()
    poller.register(conn.sock, select.POLLIN)
    return bool(poller.poll(0))


class HttpxTransport:
    """The same calls through an httpx transport: what tests answer with (httpx.MockTransport)."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        self._http = httpx.Client(transport=transport)

    def request(self, method: str, url: str, *, headers: dict[str, str], body: bytes | None,
                timeout: float) -> Reply:
        try:
            answer = self._http.request(method, url, headers=headers, content=body, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ConnectFailed(type(exc).__name__) from exc
        except httpx.TimeoutException as exc:
            raise TimedOut(f"no answer within {timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise ConnectionBroke(type(exc).__name__) from exc
        return Reply(answer.status_code, answer.content, {k.lower(): v for k, v in answer.headers.items()})

    def close(self) -> None:
        self._http.close()
