"""Limits of the process runtime: concurrent starts take turns booting."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from paradyze.runtimes.base import AgentSpec, Started
from paradyze.runtimes.process import ProcessRuntime
from paradyze.settings import Settings

# A server that takes a while to boot, then says when it started listening.
SLOW_SERVER = ("/usr/bin/python3 -c \"import socket, sys, time; print('STARTED', time.time(), flush=True);"
               " time.sleep(1.0);"
               " s = socket.create_server(('127.0.0.1', int(sys.argv[1])));"
               " print('LISTENING', time.time(), flush=True); time.sleep(600)\" {port}")


def test_no_more_servers_boot_at_once_than_the_limit(tmp_path: Path) -> None:
    settings = Settings(PARADYZE_HOME=Path(tempfile.mkdtemp(prefix="paradyze-limits-")),
                        PARADYZE_INSTANCE=f"limits-{uuid.uuid4().hex[:6]}", PARADYZE_AGENT="reference",
                        PARADYZE_AGENT_COMMAND=SLOW_SERVER, PARADYZE_AGENT_START_CONCURRENCY=1)
    runtime = ProcessRuntime(settings)
    character = tmp_path / "c.json"
    character.write_text(json.dumps({"name": "Slow", "bio": "boots slowly"}))
    specs = [AgentSpec(agent_id=str(uuid.uuid4()), character_path=character, character_version=1) for _ in range(3)]
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            started: list[Started] = list(pool.map(runtime.start, specs))

        def said(handle: str, word: str) -> float:
            [line] = [line for line in runtime.logs(handle) if line.startswith(word)]
            return float(line.split()[1])

        order = sorted(started, key=lambda s: said(s.handle, "STARTED"))
        # Each server was launched only once the one before it was serving.
        for before, after in zip(order, order[1:], strict=False):
            assert said(after.handle, "STARTED") >= said(before.handle, "LISTENING")
        assert all(runtime.alive(s.handle) for s in started)
    finally:
        for owned in runtime.list_owned():
            runtime.stop(owned.handle, grace=1.0)
    deadline = time.monotonic() + 10
    while runtime.list_owned() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runtime.list_owned() == []
    shutil.rmtree(settings.state_dir, ignore_errors=True)
