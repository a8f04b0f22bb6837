"""Fixtures for the console tests: a running function API (the real local emulator) and its admin token."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
for entry in (str(REPO), str(REPO / "functions")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from console.settings import get_console_settings  # noqa: E402
from helpers import Emulator, free_port  # noqa: E402


@dataclass(frozen=True)
class Backend:
    url: str
    token: str
    home: Path
    log: Path


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """One local emulator for all the console tests, with its own PARADYZE_HOME."""
    home = tmp_path_factory.mktemp("paradyze-home")
    emu = Emulator(home=home, port=free_port())
    emu.start()
    try:
        yield Backend(url=emu.url, token=emu.token, home=home, log=emu.log)
    finally:
        emu.stop()


@pytest.fixture
def console_env(emulator: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """Point the console at the emulator the way an operator would: URL plus PARADYZE_HOME's token file."""
    monkeypatch.setenv("PARADYZE_API_URL", emulator.url)
    monkeypatch.setenv("PARADYZE_HOME", str(emulator.home))
    monkeypatch.delenv("PARADYZE_ADMIN_TOKEN", raising=False)
    get_console_settings.cache_clear()
    yield emulator
    get_console_settings.cache_clear()
