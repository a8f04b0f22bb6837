"""The console the emulator starts writes its output to the state folder, not to /dev/null."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from helpers import free_port
from local_emulator.__main__ import _start_console


def test_the_console_log_is_in_the_state_folder(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "console.log"
    proc = _start_console(port, "http://127.0.0.1:9", "not-a-real-token", log=log)
    assert proc is not None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text == "ok":
                    break
            except requests.RequestException:
                time.sleep(0.3)
        assert proc.poll() is None, log.read_text(errors="replace")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    # Streamlit's own start-up lines, as an operator would look for them.
    assert f"http://127.0.0.1:{port}" in log.read_text(errors="replace")
