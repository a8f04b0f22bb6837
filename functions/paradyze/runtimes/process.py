"""The `process` backend: each agent is a child process running the configured agent command."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from ..db import REPO_ROOT
from ..errors import AgentStartFailed
from ..settings import AGENT_ENV_PASSTHROUGH, Settings
from .base import AgentSpec, Owned, RuntimeStatus, Started

REFERENCE_AGENT = REPO_ROOT / "local_emulator" / "reference_agent.py"
_ENV_AGENT_ID = "PARADYZE_AGENT_ID"
_ENV_INSTANCE = "PARADYZE_INSTANCE_KEY"
# What an agent keeps of the platform's environment besides provider keys: enough to run a program.
_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


class ProcessRuntime:
    """Handles are JSON: pid, the process's start time (so a reused pid is never mistaken), port."""

    kind = "process"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log_dir = settings.run_dir / "logs"
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def start(self, spec: AgentSpec) -> Started:
        port = _free_port(self.settings.agent_host)
        argv = self._argv(spec, port)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.agent_id}.log"
        env = self.settings.inherited_env(_BASE_ENV + AGENT_ENV_PASSTHROUGH)
        env.update({k: v for k, v in spec.env.items() if v != ""})
        env.update({
            _ENV_AGENT_ID: spec.agent_id,
            _ENV_INSTANCE: self.settings.instance_key,
            "PORT": str(port),
            "SERVER_PORT": str(port),
            "HOST": self.settings.agent_host,
            "CHARACTER_PATH": str(spec.character_path),
            "PYTHONUNBUFFERED": "1",
        })
        try:
            with open(log_path, "ab") as log:
                # A session of its own: the agent outlives a restart of the functions, and
                # stop() can signal the agent's whole process group.
                child = subprocess.Popen(
                    argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True, cwd=str(REPO_ROOT),
                )
        except OSError as exc:
            raise AgentStartFailed(f"could not run the agent command {argv[0]!r}: {exc.strerror}") from exc
        with self._lock:
            self._children[child.pid] = child
        handle = {"pid": child.pid, "started": _start_ticks(child.pid), "port": port, "log": str(log_path)}
        return Started(handle=json.dumps(handle), url=self._url(port))

    def stop(self, handle: str, grace: float) -> None:
        info = json.loads(handle)
        pid = info["pid"]
        if not self._is_ours(info):
            self._reap(pid)
            return
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not self._is_ours(info):
                break
            time.sleep(0.05)
        else:
            _signal_group(pid, signal.SIGKILL)
            for _ in range(100):
                if not self._is_ours(info):
                    break
                time.sleep(0.02)
        self._reap(pid)

    def status(self, handle: str) -> RuntimeStatus:
        info = json.loads(handle)
        self._poll_child(info["pid"])
        if not self._is_ours(info):
            child = self._children.get(info["pid"])
            code = child.returncode if child else None
            return RuntimeStatus(state="exited", alive=False, exit_code=code, detail="process is gone")
        return RuntimeStatus(state="running", alive=True, memory_bytes=_rss_bytes(info["pid"]),
                             detail=f"pid {info['pid']}")

    def alive(self, handle: str) -> bool:
        return self._is_ours(json.loads(handle))

    def logs(self, handle: str, tail: int = 200) -> list[str]:
        path = Path(json.loads(handle)["log"])
        if not path.exists():
            return []
        with open(path, "rb") as fh:
            lines = deque(fh, maxlen=tail)
        return [line.decode("utf-8", "replace").rstrip("\n") for line in lines]

    def list_owned(self) -> list[Owned]:
        owned = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            env = _environ(int(entry.name))
            if env.get(_ENV_INSTANCE) != self.settings.instance_key or _ENV_AGENT_ID not in env:
                continue
            pid = int(entry.name)
            # Only the process the platform launched (the group leader), not its children.
            if not _exists(pid) or _group_of(pid) != pid:
                continue
            port = int(env.get("PORT", "0"))
            handle = {"pid": pid, "started": _start_ticks(pid), "port": port,
                      "log": str(self.log_dir / f"{env[_ENV_AGENT_ID]}.log")}
            owned.append(Owned(agent_id=env[_ENV_AGENT_ID], handle=json.dumps(handle), url=self._url(port)))
        return owned

    def _argv(self, spec: AgentSpec, port: int) -> list[str]:
        template = self.settings.agent_command or (
            f"{shlex.quote(sys.executable)} {shlex.quote(str(REFERENCE_AGENT))}"
            " --character {character} --port {port} --host {host}"
        )
        values = {"character": str(spec.character_path), "port": str(port), "host": self.settings.agent_host,
                  "agent_id": spec.agent_id}
        return [part.format(**values) for part in shlex.split(template)]

    def _url(self, port: int) -> str:
        return f"http://{self.settings.agent_host}:{port}"

    def _is_ours(self, info: dict[str, int]) -> bool:
        self._poll_child(info["pid"])
        return _exists(info["pid"]) and _start_ticks(info["pid"]) == info["started"]

    def _poll_child(self, pid: int) -> None:
        child = self._children.get(pid)
        if child is not None:
            child.poll()  # reaps an exited child so it does not linger as a zombie

    def _reap(self, pid: int) -> None:
        with self._lock:
            child = self._children.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2:].split()


def _exists(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _start_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else -1


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
