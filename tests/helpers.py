"""Test helpers shared by the suites: tokens, function clients, the emulator process, agent processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
# The shared fixtures sit beside the repository; PARADYZE_FIXTURES_DIR (as the console reads it) moves them.
FIXTURES = Path(os.environ.get("PARADYZE_FIXTURES_DIR") or REPO.parent / "shared" / "fixtures" / "characters")
SOURCE = str(REPO / "functions" / "main.py")


def fixture_characters() -> dict[str, dict[str, Any]]:
    """The fixture files exactly as users have them (two name plugins that are not installed)."""
    return {p.name.removesuffix(".character.json"): json.loads(p.read_text())
            for p in sorted(FIXTURES.glob("*.character.json"))}


def stop_embedded_postgres(home: Path) -> None:
    """Stop whatever embedded Postgres still serves the state folder home, if any."""
    pid_file = home / "pgdata" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return
    if str(home / "pgdata") not in cmdline:
        return  # the pid file is stale and the number belongs to someone else now
    os.kill(pid, signal.SIGINT)  # Postgres's fast shutdown
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """count ports free now, all different: each is held until every one is chosen, since a port
    just closed can be handed out again at once (two servers then race for one port)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


@dataclass
class User:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user() -> User:
    from paradyze.auth import USER_ROLE, mint_token
    from paradyze.settings import get_settings

    user_id = str(uuid.uuid4())
    return User(user_id, mint_token(get_settings(), role=USER_ROLE, sub=user_id))


class Functions:
    """Every function through functions-framework's own test client, as Cloud Functions loads it."""

    def __init__(self) -> None:
        import functions_framework

        self._clients: dict[str, Any] = {}
        self._create = functions_framework.create_app

    def client(self, name: str) -> Any:
        if name not in self._clients:
            self._clients[name] = self._create(name, SOURCE).test_client()
        return self._clients[name]

    def post(self, name: str, token: str | None, payload: Any = None, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = kw.pop("data", None)
        if data is None:
            data = json.dumps(payload if payload is not None else {})
        return self.client(name).post("/", data=data, headers=headers, content_type="application/json", **kw)

    def get(self, name: str, token: str | None, **params: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client(name).get("/", query_string=params, headers=headers)

    def everything_about(self, token: str, agent_id: str, message: str) -> list[str]:
        """Every answer a user can get about their agent, a reply to message included: what a
        secret must never appear in. Versions come third; the stored conversation last."""
        reads = [("get_agent", {"agent_id": agent_id}), ("list_agents", {}),
                 ("character_versions", {"agent_id": agent_id}), ("agent_events", {"agent_id": agent_id}),
                 ("agent_logs", {"agent_id": agent_id})]
        bodies = [self.get(name, token, **params).get_data(as_text=True) for name, params in reads]
        reply = self.post("send_message", token, {"agent_id": agent_id, "text": message})
        kept = self.get("agent_messages", token, agent_id=agent_id)  # the conversation as stored
        return [*bodies, reply.get_data(as_text=True), kept.get_data(as_text=True)]


@dataclass
class Emulator:
    home: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """An admin token for this emulator, minted as an operator would with the mint command, and
        written (--write) to $PARADYZE_HOME/admin-token, where the console looks for one."""
        if self._token is None:
            self._token = mint_admin_token(self.env())
        return self._token

    def env(self, **env: str) -> dict[str, str]:
        return {**os.environ, "PARADYZE_HOME": str(self.home), "PYTHONUNBUFFERED": "1",
                "PARADYZE_INSTANCE": "e2e", **self.extra_env, **env}

    @property
    def log(self) -> Path:
        return self.home / "emulator.log"

    def __post_init__(self) -> None:
        # On a shared server (DATABASE_URL), each emulator gets a database of its own, as the
        # embedded Postgres in its state folder would give it.
        if os.environ.get("DATABASE_URL") and "DATABASE_URL" not in self.extra_env:
            self.extra_env["DATABASE_URL"] = fresh_database(os.environ["DATABASE_URL"])

    def user(self) -> User:
        """A new user with a token signed by this emulator's secret."""
        from paradyze.auth import USER_ROLE, mint_token
        from paradyze.settings import Settings

        user_id = str(uuid.uuid4())
        return User(user_id, mint_token(Settings(PARADYZE_HOME=self.home), role=USER_ROLE, sub=user_id))

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def start(self, **env: str) -> Emulator:
        full_env = self.env(**env)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "local_emulator", "--port", str(self.port), "--no-console"],
                cwd=str(REPO), env=full_env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.proc.returncode}:\n{self.tail()}")
            if "\nready" in self.log.read_bytes()[offset:].decode(errors="replace"):
                try:
                    if requests.get(f"{self.url}/", timeout=2).status_code == 200:
                        return self
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"emulator did not start:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        self.proc = None
        # An emulator that crashed (the fault-injection tests) leaves its embedded Postgres running,
        # and the next emulator on that folder adopts it.
        stop_embedded_postgres(self.home)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def post(self, name: str, payload: Any = None, token: str | None = None, **kw: Any) -> requests.Response:
        headers = {**self.headers(token), **kw.pop("headers", {})}
        return requests.post(f"{self.url}/{name}", json=payload or {}, headers=headers, timeout=120, **kw)

    def get(self, name: str, token: str | None = None, **params: Any) -> requests.Response:
        return requests.get(f"{self.url}/{name}", params=params, headers=self.headers(token), timeout=120)


def mint_admin_token(env: dict[str, str]) -> str:
    """An admin token from `python -m local_emulator.admin_token --write`, run with the settings in env."""
    done = subprocess.run([sys.executable, "-m", "local_emulator.admin_token", "--write"], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"minting an admin token failed ({done.returncode}):\n{done.stderr}")
    return done.stdout.strip()


def fresh_database(url: str) -> str:
    """A new, empty database on the server at url; returns its URL."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"paradyze_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return make_conninfo(url, dbname=name)


def agent_processes(instance_key_prefix: str | None = None) -> dict[str, list[int]]:
    """agent id -> pids of the agent processes that run on this machine (group leaders only)."""
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        env = dict(item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
        agent = env.get(b"PARADYZE_AGENT_ID")
        key = env.get(b"PARADYZE_INSTANCE_KEY", b"").decode()
        if not agent or (instance_key_prefix and not key.startswith(instance_key_prefix)):
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X") or int(fields[2]) != int(entry.name):
            continue
        found.setdefault(agent.decode(), []).append(int(entry.name))
    return found
