"""The console's flows in Debian's Chromium, driven by Playwright, against `streamlit run` and the emulator.

Each flow asserts what an operator sees and saves screenshots to tests/artifacts/console-*.png.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from console.client import ParadyzeClient
from helpers import REPO, fixture_characters, free_port
from tests.console.conftest import Backend

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
# url path -> text only that page shows once it has fully rendered
PAGES = {
    "": "shown of",
    "agents": "shown of",
    "create": "Runtime and policy",
    "agent": "Wants to be",
    "releases": "releases and rollbacks",
    "backups": "Run a backup now",
    "health": "Agents by state over time",
    "costs": "Estimated / month",
}
REFRESH_S = 2  # the console's live refresh, short so the live flows do not wait long
SLOW = 60_000  # ms: a loaded 2-core machine can take this long to render a page
expect.set_options(timeout=SLOW)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: install Debian's `chromium` to run this test"
)


@pytest.fixture(scope="module")
def console_url(emulator: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run console/app.py` headless, pointed at the emulator through URL and PARADYZE_HOME."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = {**os.environ, "PARADYZE_API_URL": emulator.url, "PARADYZE_HOME": str(emulator.home),
           "PARADYZE_CONSOLE_REFRESH": str(REFRESH_S)}
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
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # Debian's chromium, not a downloaded browser build.
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    context.set_default_timeout(SLOW)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def api(emulator: Backend) -> ParadyzeClient:
    return ParadyzeClient(emulator.url, emulator.token, timeout=120)


@pytest.fixture
def agent_id(api: ParadyzeClient) -> Iterator[str]:
    """A running agent the flow can act on (and delete); removed afterwards if the flow did not."""
    agent = api.create_agent(fixture_characters()["sam-altman"])
    yield agent.id
    if agent.id in {a.id for a in api.list_agents()}:
        api.delete_agent(agent.id)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def no_errors(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_text("not answering at")).to_have_count(0)


def test_every_page_has_a_working_deep_link(console_url: str, agent_id: str, page: Page) -> None:
    for path, marker in PAGES.items():
        url = f"{console_url}/{path}" + (f"?agent_id={agent_id}" if path in ("agent", "releases") else "")
        page.goto(url)
        expect(page.get_by_text(marker).first).to_be_visible()
        no_errors(page)
        shot(page, path or "home")
    page.goto(f"{console_url}/agent?agent_id=11111111-2222-3333-4444-555555555555")
    expect(page.get_by_text("Agent 11111111-2222-3333-4444-555555555555 not found.")).to_be_visible()
    shot(page, "agent-not-found")


def test_a_row_click_opens_the_agent_in_the_same_tab_where_delete_asks_for_its_name(
    console_url: str, agent_id: str, api: ParadyzeClient, page: Page
) -> None:
    page.goto(f"{console_url}/agents")
    page.get_by_role("textbox", name="Search").fill("Sam")
    page.keyboard.press("Enter")
    expect(page.get_by_text("1 shown of")).to_be_visible()
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 260, box["y"] + 35 + 17)  # the first row's Name cell, under the header
    page.wait_for_url(f"**/agent?agent_id={agent_id}")
    assert len(page.context.pages) == 1  # the same tab, the same session
    expect(page.get_by_text("Wants to be")).to_be_visible()
    shot(page, "detail-from-row")

    page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Sam Altman", exact=False).first).to_be_visible()
    go = dialog.get_by_role("button", name="Delete for good")
    expect(go).to_be_disabled()
    dialog.get_by_role("textbox").fill("Sam Altman")
    dialog.get_by_role("textbox").press("Enter")
    expect(go).to_be_enabled()
    shot(page, "delete-dialog")
    go.click()
    expect(page.get_by_text("Delete: 1 of 1 agents succeeded.")).to_be_visible()
    assert agent_id not in {a.id for a in api.list_agents()}
    shot(page, "deleted")


def test_the_detail_page_follows_the_agent_live_and_keeps_the_chat(
    console_url: str, agent_id: str, api: ParadyzeClient, page: Page
) -> None:
    page.goto(f"{console_url}/agent?agent_id={agent_id}")
    status = page.get_by_test_id("stMetric").filter(has_text="Status")
    expect(status).to_contain_text("running")
    api.hibernate_agent(agent_id)  # someone else acts; no click, no reload here
    expect(status).to_contain_text("hibernated", timeout=SLOW)
    shot(page, "detail-live-hibernated")

    page.get_by_role("tab", name="Chat").click()
    page.get_by_placeholder("Message Sam Altman").fill("Hello from the browser")
    page.keyboard.press("Enter")
    expect(page.get_by_text("woke up from hibernation")).to_be_visible(timeout=120_000)
    expect(status).to_contain_text("running")
    shot(page, "chat-woke")

    page.reload()  # the conversation comes from the server, so it is still there
    page.get_by_role("tab", name="Chat").click()
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text("Hello from the browser")
    expect(page.get_by_test_id("stChatMessage")).to_have_count(2)

    page.get_by_role("tab", name="Logs").click()
    page.get_by_role("textbox", name="Search the logs").fill("zzz-no-such-line")
    page.keyboard.press("Enter")
    expect(page.get_by_text("0 of")).to_be_visible()
    shot(page, "logs-search")


def test_a_phone_sees_the_list_and_the_theme_toggles(console_url: str, agent_id: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    context.set_default_timeout(SLOW)
    page = context.new_page()
    try:
        page.goto(f"{console_url}/agents")
        expect(page.get_by_text("shown of")).to_be_visible()
        title = page.get_by_role("heading", name="🤖 Agents")
        assert (title.bounding_box() or {"width": 999})["width"] <= 390
        shot(page, "phone")
        page.get_by_test_id("stExpandSidebarButton").click()
        page.get_by_text("🌙 Dark theme").click()
        app = page.locator(".stApp")
        expect(app).to_have_css("background-color", "rgb(14, 17, 23)")
        shot(page, "phone-dark")
    finally:
        context.close()
