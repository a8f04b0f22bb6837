"""Function servers as Cloud Run runs them (functions-framework, one target each), started and stopped by tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")


@dataclass
class FunctionServer:
    """`python -m functions_framework --target T` of a source folder, with only the given environment."""

    python: Path
    source: Path  # main.py
    target: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FunctionServer:
        base = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [str(self.python), "-m", "functions_framework", "--source", str(self.source),
                 "--target", self.target, "--host", "127.0.0.1", "--port", str(self.port)],
                env={**base, "HOME": str(self.log.parent), **self.env}, cwd=str(self.source.parent),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self, timeout: float = 120.0) -> str:
        wait_until_answers(self.url, self.process, self.log, timeout)
        return self.url

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def tail(self, lines: int = 40) -> str:
        return tail(self.log, lines)


@contextlib.contextmanager
def serving(servers: list[FunctionServer], timeout: float = 180.0) -> Iterator[list[FunctionServer]]:
    """All servers started at once, each answering, and all stopped afterwards."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()


def wait_until_answers(url: str, process: subprocess.Popen[bytes] | None, log: Path | None, timeout: float) -> None:
    """Until any HTTP answer comes from url; fails with the server's log when it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{url}: the server exited ({process.returncode}):\n{tail(log)}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout:g}s:\n{tail(log)}")


def tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
