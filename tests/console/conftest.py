"""Fixtures for the console tests: a running function API (the real local emulator) and its admin token."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
for entry in (str(REPO), str(REPO / "functions")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from console.settings import get_console_settings  # noqa: E402

# The emulator starts an embedded Postgres and applies migrations before it answers.
EMULATOR_START_TIMEOUT = 180.0


@dataclass(frozen=True)
class Backend:
    url: str
    token: str
    home: Path
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(proc: subprocess.Popen[bytes], url: str, home: Path, log: Path) -> str:
    deadline = time.monotonic() + EMULATOR_START_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the emulator exited with {proc.returncode}:\n{_tail(log)}")
        token_file = home / "admin-token"
        if token_file.exists() and (token := token_file.read_text().strip()):
            try:
                resp = requests.get(
                    f"{url}/health_check", headers={"Authorization": f"Bearer {token}"}, timeout=10
                )
                if resp.status_code == 200:
                    return token
                last = f"health_check answered {resp.status_code}: {resp.text[:300]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
        time.sleep(0.5)
    raise RuntimeError(f"the emulator did not become healthy ({last}):\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """`python -m local_emulator --port <free> --no-console` with its own PARADYZE_HOME."""
    if not (REPO / "local_emulator" / "__main__.py").exists():
        pytest.skip("local_emulator/__main__.py does not exist yet; the console tests need the emulator")
    home = tmp_path_factory.mktemp("paradyze-home")
    log = home / "emulator.log"
    port = free_port()
    env = {**os.environ, "PARADYZE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("PARADYZE_ADMIN_TOKEN", None)
    with log.open("wb") as out:
        # Its own session, so stopping it also stops the agents and Postgres it started.
        proc = subprocess.Popen(
            [sys.executable, "-m", "local_emulator", "--port", str(port), "--no-console"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        token = _wait_until_healthy(proc, url, home, log)
        yield Backend(url=url, token=token, home=home, log=log)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def console_env(emulator: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """Point the console at the emulator the way an operator would: URL plus PARADYZE_HOME's token file."""
    monkeypatch.setenv("PARADYZE_API_URL", emulator.url)
    monkeypatch.setenv("PARADYZE_HOME", str(emulator.home))
    monkeypatch.delenv("PARADYZE_ADMIN_TOKEN", raising=False)
    get_console_settings.cache_clear()
    yield emulator
    get_console_settings.cache_clear()
