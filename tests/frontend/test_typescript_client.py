"""A TypeScript client generated from openapi.json (openapi-typescript) type-checks with tsc --noEmit.

The folder's package.json pins both tools; `npm ci` installs them from the lockfile on first use.
client.ts calls create_agent and send_message through the generated types only, and its
@ts-expect-error lines must stay errors, so types that went `any` or `{}` fail the check too.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import functions_framework
import pytest

from helpers import SOURCE

HERE = Path(__file__).resolve().parent


def npm(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("npm")
    assert exe, "node and npm are needed for the TypeScript client check (node 20 or later)"
    return subprocess.run([exe, *args], cwd=HERE, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tools() -> None:
    """npm ci, again only when the lockfile changed since the last install."""
    lock = hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()
    stamp = HERE / "node_modules" / ".paradyze-lock.sha256"
    if stamp.exists() and stamp.read_text() == lock:
        return
    result = npm("ci", "--no-audit", "--no-fund")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stamp.write_text(lock)


def test_the_generated_client_type_checks(tools: None) -> None:
    spec = functions_framework.create_app("openapi_spec", SOURCE).test_client().get("/")
    assert spec.status_code == 200
    (HERE / "openapi.json").write_bytes(spec.get_data())
    generated = npm("run", "-s", "generate")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    types = (HERE / "generated" / "api.d.ts").read_text()
    assert '"/create_agent"' in types and '"/send_message"' in types
    checked = npm("run", "-s", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
