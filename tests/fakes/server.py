"""The plumbing every local API fake shares: a threaded server on 127.0.0.1 and injected failures.

A fake subclasses `LocalApi` (or `LocalApiWithFailures`), builds its Flask app in `_build_app()`,
and is used as `with Fake() as fake:`, its base URL being `fake.endpoint`. The server is made (and
its port chosen) when the fake is made, so the URL is known before `start()`.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any, Self

from flask import Flask, request
from werkzeug.serving import WSGIRequestHandler, make_server


@dataclass(frozen=True)
class Call:
    """One request a JSON API fake was sent: what the tests assert on."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        pass  # each fake records the requests it is sent instead


class LocalApi:
    """Serves `_build_app()` on a free port of 127.0.0.1 (or another address of this host) from a daemon thread.

    `host` is for clients that cannot reach this host's loopback, e.g. containers, which reach it
    at their bridge network's gateway address: only ever one of this host's own addresses.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._server = make_server(host, 0, self._build_app(), threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def _build_app(self) -> Flask:
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._after_stop()

    def _after_stop(self) -> None:
        """Extra work once the server has stopped answering (e.g. stopping what the fake runs)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalApiWithFailures(LocalApi):
    """A LocalApi whose next requests can be made to fail; `_lock` guards the fake's state and that queue."""

    def __init__(self, *, lock: threading.Lock | threading.RLock | None = None) -> None:
        self._lock = lock if lock is not None else threading.Lock()
        self._failures: list[tuple[int, str]] = []
        super().__init__()

    def fail_next(self, status: int, times: int = 1, message: str = "injected failure") -> None:
        """Answer the next `times` requests with `status` (e.g. 503) and message, touching no state."""
        with self._lock:
            self._failures.extend([(status, message)] * times)

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def _next_failure(self) -> tuple[int, str] | None:
        """The (status, message) the current request must fail with, if any; call it with `_lock` held."""
        return self._failures.pop(0) if self._failures else None

    def _record_json_call(self, calls: list[Call]) -> tuple[int, str] | None:
        """Append the current request to calls; the failure it must be answered with, if any."""
        body = request.get_json(silent=True) if request.data else None
        with self._lock:
            calls.append(Call(request.method, request.path, dict(request.args), copy.deepcopy(body)))
            return self._next_failure()
