"""Shared fixtures: one real Postgres per session, function test clients, tokens, and a running emulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "characters"
for entry in (str(REPO), str(REPO / "functions")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

# The in-process functions get a state folder of their own before paradyze reads its settings.
_HOME = Path(tempfile.mkdtemp(prefix="paradyze-test-"))
os.environ["PARADYZE_HOME"] = str(_HOME)
os.environ.setdefault("PARADYZE_INSTANCE", "test")
for var in ("PARADYZE_TEST_CRASH_AFTER", "PARADYZE_RUNTIME", "OPENROUTER_API_KEY"):
    os.environ.pop(var, None)

from paradyze import db  # noqa: E402
from paradyze.auth import ADMIN_ROLE, USER_ROLE, mint_token  # noqa: E402
from paradyze.settings import get_settings  # noqa: E402

SOURCE = str(REPO / "functions" / "main.py")


def fixture_characters() -> dict[str, dict[str, Any]]:
    return {p.name.removesuffix(".character.json"): json.loads(p.read_text())
            for p in sorted(FIXTURES.glob("*.character.json"))}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def database() -> Iterator[None]:
    """The session's Postgres (embedded in the test state folder, or DATABASE_URL), migrated once."""
    db.pool()
    yield
    from paradyze.reconcile import reconcile_all  # noqa: F401  (keeps import errors visible early)


@pytest.fixture
def conn(database: None) -> Iterator[Any]:
    """A transaction that is rolled back after the test."""
    with db.pool().connection() as connection:
        connection.autocommit = False
        try:
            yield connection
        finally:
            connection.rollback()
            connection.autocommit = True


@pytest.fixture(scope="session")
def admin_token() -> str:
    return mint_token(get_settings(), role=ADMIN_ROLE, actor="admin")


@dataclass
class User:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user() -> User:
    user_id = str(uuid.uuid4())
    return User(user_id, mint_token(get_settings(), role=USER_ROLE, sub=user_id))


@pytest.fixture
def alice() -> User:
    return make_user()


@pytest.fixture
def bob() -> User:
    return make_user()


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


@pytest.fixture(scope="session")
def functions(database: None) -> Functions:
    return Functions()


@pytest.fixture
def cleanup_agents(functions: Functions, admin_token: str) -> Iterator[list[str]]:
    """Agents a test created; deleted afterwards so no process outlives the test."""
    created: list[str] = []
    yield created
    for agent_id in created:
        functions.post("delete_agent", admin_token, {"agent_id": agent_id})


# --- the running emulator, over real HTTP ----------------------------------------------------------

@dataclass
class Emulator:
    home: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    @property
    def log(self) -> Path:
        return self.home / "emulator.log"

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def start(self, **env: str) -> Emulator:
        full_env = {**os.environ, "PARADYZE_HOME": str(self.home), "PYTHONUNBUFFERED": "1",
                    "PARADYZE_INSTANCE": "e2e", **self.extra_env, **env}
        token_file = self.home / "admin-token"
        token_file.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "local_emulator", "--port", str(self.port), "--no-console"],
                cwd=str(REPO), env=full_env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.proc.returncode}:\n{self.tail()}")
            if token_file.exists() and "ready" in self.log.read_text(errors="replace").split("emulator on")[-1]:
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

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def post(self, name: str, payload: Any = None, token: str | None = None, **kw: Any) -> requests.Response:
        return requests.post(f"{self.url}/{name}", json=payload or {}, headers=self.headers(token), timeout=120, **kw)

    def get(self, name: str, token: str | None = None, **params: Any) -> requests.Response:
        return requests.get(f"{self.url}/{name}", params=params, headers=self.headers(token), timeout=120)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """A fresh local emulator (own state folder, embedded Postgres), stopped after the test."""
    emu = Emulator(home=tmp_path / "home", port=free_port())
    emu.home.mkdir()
    emu.start()
    yield emu
    emu.stop()


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
