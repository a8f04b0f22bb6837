"""What runs one revision in the fake Cloud Run: an Instance (the process, watched by a thread of its
own) and the Runner that says what to run for an image and how to probe its startup."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Instance:
    """One revision's running agent process, watched by a thread of its own."""

    revision: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    health_path: str | None  # None: a TCP probe of the port
    startup_timeout: float
    state: str = "starting"  # then "ready", or "failed" with a message; "stopped" once deleted
    message: str = ""
    restarts: int = 0
    process: subprocess.Popen[bytes] | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)  # set once failed or retired for good
    on_ready: Callable[[], None] | None = None
    on_failure: Callable[[], None] | None = None

    def launch(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=str(REPO),
            )
        threading.Thread(target=self._watch, daemon=True, name=f"fake-run-{self.revision}").start()

    def fail(self, message: str) -> None:
        self.state, self.message = "failed", message
        self.stopped.set()
        if self.on_failure is not None:
            self.on_failure()

    def _healthy(self) -> bool:
        if self.health_path is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                return False
        try:
            return requests.get(f"http://127.0.0.1:{self.port}{self.health_path}", timeout=1).ok
        except requests.RequestException:
            return False

    def _watch(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not self.stopping.is_set():
            assert self.process is not None
            code = self.process.poll()
            if code is not None and self.state == "starting":
                self.fail(
                    f"Revision '{self.revision}' is not ready and cannot serve traffic. The user-provided "
                    f"container failed to start and listen on the port defined provided by the PORT={self.port} "
                    f"environment variable. Container called exit({code})."
                )
                return
            if code is not None:
                # Cloud Run replaces a crashed instance; so does the fake, with a growing pause.
                self.restarts += 1
                if self.stopping.wait(min(0.2 * self.restarts, 3.0)):
                    break
                self.launch()
                return
            if self.state == "starting" and self._healthy():
                self.state = "ready"
                if self.on_ready is not None:
                    self.on_ready()
            elif self.state == "starting" and time.monotonic() > deadline:
                self.terminate(0.5)
                self.fail(f"Revision '{self.revision}' did not answer health within {self.startup_timeout:g}s.")
                return
            self.stopping.wait(0.05 if self.state == "starting" else 0.2)

    def terminate(self, grace: float) -> None:
        """SIGTERM to the process group, grace seconds, then SIGKILL."""
        self.stopping.set()
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


@dataclass(frozen=True)
class Runner:
    """What the fake runs for an image: argv from the container's env (PORT set), and its startup probe."""

    argv: Callable[[dict[str, str]], list[str]]
    health_path: str | None = None  # None: TCP, Cloud Run's default startup probe
