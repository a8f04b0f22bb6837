"""Shared fixtures: one real Postgres per session, function test clients, tokens, and a running emulator."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
for entry in (str(REPO), str(REPO / "functions"), str(REPO / "tests")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

# The in-process functions get a state folder of their own before paradyze reads its settings.
_HOME = Path(tempfile.mkdtemp(prefix="paradyze-test-"))
os.environ["PARADYZE_HOME"] = str(_HOME)
os.environ.setdefault("PARADYZE_INSTANCE", "test")
# The fast reference agent by default; the ElizaOS suites ask for the real server themselves.
os.environ.setdefault("PARADYZE_AGENT", "reference")
for var in ("PARADYZE_TEST_CRASH_AFTER", "PARADYZE_RUNTIME", "OPENROUTER_API_KEY", "GOOGLE_CLOUD_PROJECT"):
    os.environ.pop(var, None)

from helpers import Emulator, Functions, User, free_port, make_user, stop_embedded_postgres  # noqa: E402
from paradyze import admin_tokens, db  # noqa: E402
from paradyze.settings import get_settings  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The session's embedded Postgres stops with it, and a passing session's state folder (about
    400 MB, mostly that Postgres) is removed; a failing one's stays to be looked at."""
    db.close()
    stop_embedded_postgres(_HOME)
    if exitstatus == 0:
        shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def database() -> Iterator[None]:
    """The session's Postgres (embedded in the test state folder, or DATABASE_URL), migrated once."""
    db.pool()
    yield
    from paradyze.reconcile import reconcile_all  # noqa: F401  (keeps import errors visible early)


@pytest.fixture
def conn(database: None) -> Iterator[Any]:
    """A transaction that is rolled back after the test, as the login role (the database's owner, which
    grants and alters), not the platform's service_role that pooled connections run as."""
    with db.pool().connection() as connection:
        connection.autocommit = False
        connection.execute("set local role none")
        try:
            yield connection
        finally:
            connection.rollback()
            connection.autocommit = True


@pytest.fixture
def admin_token(database: None) -> str:
    """A fresh admin token per test: a test that revokes every admin token leaves the next one working."""
    return admin_tokens.mint(get_settings(), actor="admin")


@pytest.fixture
def alice() -> User:
    return make_user()


@pytest.fixture
def bob() -> User:
    return make_user()


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


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """A fresh local emulator (own state folder, embedded Postgres), stopped after the test."""
    emu = Emulator(home=tmp_path / "home", port=free_port())
    emu.home.mkdir()
    emu.start()
    yield emu
    emu.stop()


