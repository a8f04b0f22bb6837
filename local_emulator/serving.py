"""Serving the functions: one threaded process (werkzeug), or several worker processes (gunicorn).

One Python process serves about one core's worth of requests; with --workers each worker is a
process of its own, as functions-framework runs in production (gunicorn), each with its own pool.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Protocol

from local_emulator.app import build_app

REPO_ROOT = Path(__file__).resolve().parents[1]


class Server(Protocol):
    def stop(self) -> None:
        """Stop serving; requests in flight are finished first."""


class _Threaded:
    def __init__(self, host: str, port: int) -> None:
        from werkzeug.serving import make_server

        self._server = make_server(host, port, build_app(), threaded=True)
        threading.Thread(target=self._server.serve_forever, name="functions", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()


class _Workers:
    def __init__(self, host: str, port: int, workers: int, threads: int) -> None:
        # A request holds at most one pooled connection at a time (agent locks have their own), so a
        # worker needs one per thread and a couple spare, not the single-process default.
        env = {**os.environ, "PARADYZE_DB_POOL_MAX": os.environ.get("PARADYZE_DB_POOL_MAX", str(threads + 2))}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers),
             "--threads", str(threads), "--worker-class", "gthread", "--keep-alive", "30",
             "--graceful-timeout", "20", "--timeout", "0", "--log-level", "warning", "local_emulator.wsgi:app"],
            cwd=REPO_ROOT, env=env)

    def stop(self) -> None:
        self._proc.terminate()  # gunicorn finishes requests in flight, then exits
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def serve(host: str, port: int, workers: int, threads: int) -> Server:
    """Start serving every function on host:port, in the background."""
    return _Threaded(host, port) if workers <= 1 else _Workers(host, port, workers, threads)
