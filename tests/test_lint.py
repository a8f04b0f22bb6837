"""The code reads as STYLE.md asks: ruff clean everywhere, mypy clean on the domain core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", "functions", "console", "local_emulator", "tests", "deploy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_the_domain_core() -> None:
    result = run("mypy", "-p", "paradyze")
    assert result.returncode == 0, result.stdout + result.stderr
