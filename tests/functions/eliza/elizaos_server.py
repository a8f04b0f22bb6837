"""Runs one real ElizaOS 1.7.2 server for a test: its own folder, database, key and fake model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from paradyze import agent_keys
from paradyze.settings import get_settings

PLUGINS = ["@elizaos/plugin-sql", "@elizaos/plugin-bootstrap", "@elizaos/plugin-openai"]
CLI = "app/node_modules/@elizaos/cli/dist/index.js"
START_TIMEOUT_S = 120.0  # ~6-15 s on an idle machine; the test machine is shared


def installed() -> bool:
    root = get_settings().elizaos_dir
    return all((root / part).exists() for part in ("bun/node_modules/.bin/bun", CLI))


class ElizaServer:
    """`bun .../cli/dist/index.js start` in its own process group, on 127.0.0.1, requiring the key of
    `agent_id` (the platform's id for it).

    The folder holds the character and the PGlite database, so stop() then start() is a restart
    that keeps the agent's memory.
    """

    def __init__(self, home: Path, *, model_url: str, agent_id: str, name: str = "Ada",
                 character: dict[str, object] | None = None) -> None:
        self.home, self.model_url, self.agent_id = home, model_url, agent_id
        self.key = agent_keys.api_key(agent_id)  # as the platform gives it to the agents it runs
        self.home.mkdir(parents=True, exist_ok=True)
        self.character_path = home / "character.json"
        self.character_path.write_text(json.dumps(character or {
            "name": name, "bio": ["A test agent."], "plugins": PLUGINS}))
        self.port = 0
        self.log_path = home / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ElizaServer:
        root = get_settings().elizaos_dir
        self.port = _free_port()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home), "LANG": "C.UTF-8", "TZ": "UTC",
            "SERVER_HOST": "127.0.0.1", "ELIZA_NO_AUTO_INSTALL": "true",
            "PGLITE_DATA_DIR": str(self.home / "elizadb"), "ELIZA_SERVER_AUTH_TOKEN": self.key,
            "OPENAI_API_KEY": "test", "OPENAI_BASE_URL": self.model_url, "LOG_LEVEL": "info",
        }
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [str(root / "bun/node_modules/.bin/bun"), str(root / CLI),
                 "start", "--character", str(self.character_path), "--port", str(self.port)],
                cwd=self.home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(headers={"X-API-KEY": self.key}, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"ElizaOS exited with {self._proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.url}/api/server/health").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"ElizaOS did not answer health within {START_TIMEOUT_S:g}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the whole group (the CLI hands off to a child), SIGKILL after a grace period."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            until = time.monotonic() + grace
            while time.monotonic() < until:
                proc.poll()  # reap the leader, or the group never looks empty
                if not _group_alive(proc.pid):
                    return
                time.sleep(0.1)

    def eliza_id(self) -> str:
        """ElizaOS's own id for the agent."""
        with httpx.Client(headers={"X-API-KEY": self.key}, timeout=10.0) as client:
            return str(client.get(f"{self.url}/api/agents").json()["data"]["agents"][0]["id"])

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
