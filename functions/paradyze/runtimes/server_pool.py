"""The warm pool: ElizaOS servers that have loaded the server and its plugins and wait to be claimed.

Each runs eliza_host.mjs as the platform's user, with nothing of any owner's: no key, no home, no
port. It waits for its claim on stdin and exits when stdin closes, so a pooled server never
outlives the platform process that started it. Claiming one skips loading ElizaOS (about a
second on an idle host, several under load); the pool refills in the background.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..errors import AgentStartFailed
from ..settings import Settings
from .base import ENV_INSTANCE

HOST_SCRIPT = Path(__file__).with_name("eliza_host.mjs")


@dataclass
class Pooled:
    child: subprocess.Popen[bytes]
    log: str  # the server's own log, which it keeps once claimed


class ServerPool:
    """Up to settings.agent_pool idle servers; take() hands one out (a new one when the pool is empty)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: deque[Pooled] = deque()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(settings.agent_pool):
            self._refill()

    def take(self) -> Pooled:
        with self._lock:
            while self._idle and self._idle[0].child.poll() is not None:
                self._idle.popleft()
            taken = self._idle.popleft() if self._idle else None
        if self.settings.agent_pool:
            threading.Thread(target=self._refill, daemon=True, name="pool-refill").start()
        return taken or self._spawn()

    def reap(self, pid: int) -> None:
        """Collect the exit of a server this pool started, so it never lingers as a zombie."""
        with self._lock:
            child = self._children.get(pid)
            if child is not None and child.poll() is not None:
                del self._children[pid]

    def close(self) -> None:
        """End the idle servers (they would end on their own when this process exits); a refill still
        booting when the pool closes ends its server instead of keeping it."""
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), deque()
        for pooled in idle:
            _end(pooled)

    def _refill(self) -> None:
        with self._lock:
            short = not self._closed and len(self._idle) < self.settings.agent_pool
        if short:
            pooled = self._spawn()
            with self._lock:
                kept = not self._closed
                if kept:
                    self._idle.append(pooled)
            if not kept:
                _end(pooled)

    def _spawn(self) -> Pooled:
        logs = self.settings.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_path = logs / f"host-{uuid.uuid4().hex}.log"
        eliza = self.settings.elizaos_dir
        bun = eliza / "bun" / "node_modules" / ".bin" / "bun"
        env = {"PATH": str(bun.parent), "LANG": "C.UTF-8", "TZ": "UTC", "HOME": "/nonexistent",
               "PARADYZE_ELIZAOS_APP": str(eliza / "app"), "PARADYZE_HOST": "1",
               ENV_INSTANCE: self.settings.instance_key}
        if not bun.exists():
            raise AgentStartFailed(f"ElizaOS is not installed in {eliza}: run local_emulator/elizaos.sh")
        with open(log_path, "ab") as log_file:
            try:
                child = subprocess.Popen(
                    [str(bun), str(HOST_SCRIPT)], env=env, cwd="/", stdin=subprocess.PIPE, stdout=log_file,
                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, umask=0o077)
            except OSError as exc:
                raise AgentStartFailed(f"could not run ElizaOS from {eliza}: {exc.strerror}") from exc
        with self._lock:
            self._children[child.pid] = child
        return Pooled(child=child, log=str(log_path))


def _end(pooled: Pooled) -> None:
    pooled.child.kill()
    pooled.child.wait(timeout=5)
