"""Each console page loaded in headless Chromium from `streamlit run`, against the local emulator."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from console.client import ParadyzeClient
from helpers import FIXTURES, REPO, fixture_characters, free_port
from tests.console.conftest import Backend

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
FIXTURE = FIXTURES
# url path -> text only that page shows once it has fully rendered
PAGES = {
    "": "shown of",
    "create": "Runtime and policy",
    "agent": "Last activity",
    "backups": "Run a backup now",
    "health": "Agents by state over time",
    "costs": "Estimated / month",
}
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1400,1800",
    # Without it the screenshot is taken before Streamlit's websocket has delivered the page.
    "--virtual-time-budget=15000",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: install Debian's `chromium` to run this test"
)


@pytest.fixture(scope="module")
def console_url(emulator: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run console/app.py` headless, pointed at the emulator through URL and PARADYZE_HOME."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, "PARADYZE_API_URL": emulator.url, "PARADYZE_HOME": str(emulator.home)}
    env.pop("PARADYZE_ADMIN_TOKEN", None)
    command = [
        sys.executable, "-m", "streamlit", "run", "console/app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        _warm_up(url, tmp_path_factory.mktemp("warm-up"))
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def agent_id(emulator: Backend) -> Iterator[str]:
    """One running agent, so the pages have something to show."""
    client = ParadyzeClient(emulator.url, emulator.token, timeout=120)
    character = fixture_characters()["sam-altman"]
    agent = client.create_agent(character)
    client.send_message(agent.id, "Hello from the browser test")
    yield agent.id
    client.delete_agent(agent.id)


def _warm_up(url: str, tmp_path: Path) -> None:
    """The first session of a fresh server imports pandas, altair and pydantic; wait that out once."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if PAGES[""] in _chromium(tmp_path, "--dump-dom", url):
            return
    pytest.fail(f"the console at {url} never rendered its first page")


def _chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"  # a fresh profile every time
    done = subprocess.run(
        [str(CHROMIUM), *CHROME_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
    )
    shutil.rmtree(profile, ignore_errors=True)
    return done.stdout


@pytest.mark.parametrize("path", list(PAGES), ids=lambda p: p or "agents")
def test_page_loads_in_chromium_without_errors(
    console_url: str, agent_id: str, path: str, tmp_path: Path
) -> None:
    url = f"{console_url}/{path}" + (f"?agent_id={agent_id}" if path == "agent" else "")
    # The first load of a page in a fresh server imports pandas and altair; give it a few tries.
    for _ in range(3):
        dom = _chromium(tmp_path, "--dump-dom", url)
        if PAGES[path] in dom:
            break
    assert PAGES[path] in dom, f"{url} never finished rendering:\n{dom[-2000:]}"
    assert 'data-testid="stException"' not in dom, f"{url} shows a Streamlit exception"
    assert "Traceback" not in dom, f"{url} shows a traceback"
    assert "not answering at" not in dom and "No admin token" not in dom, f"{url} shows the backend banner"
    assert "Page not found" not in dom

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"console-{path or 'agents'}.png"
    for _ in range(3):  # a screenshot can still come out blank when the server was slow to answer
        shot.unlink(missing_ok=True)
        _chromium(tmp_path, f"--screenshot={shot}", url)
        if shot.exists() and not _blank(shot):
            break
    assert shot.exists() and not _blank(shot), f"the screenshot of {url} is blank"


def _blank(png: Path) -> bool:
    from PIL import Image  # Pillow comes with Streamlit

    with Image.open(png) as image:
        low, high = image.convert("L").getextrema()
    return high - low < 16
