"""The `process` backend: agents are process groups on this host, in their own homes, as users of their own.

ElizaOS agents run in their owner's shared server (shared_hosts.py) unless PARADYZE_AGENT_HOSTING
is "own"; an agent whose home still holds a database of its own (made before shared hosting)
keeps a server of its own, so its memory stays where it is. The rest of this module runs one
process group per agent: the reference agent, PARADYZE_AGENT_COMMAND, or ElizaOS hosted alone.

When the platform runs as root, every agent runs under a uid and gid of its own (agent_users.py),
so agents cannot read each other's /proc entries, homes or the platform's state folder. Without
root, agents run as the platform's own user, and the log says so.

Handles are JSON: the group leader's pid and creation time (so a reused pid is never mistaken),
the pid and creation time of the process that serves the port, the port, the uid and the log.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import psutil

from ..db import REPO_ROOT
from ..errors import AgentStartFailed
from ..settings import Settings
from .agent_users import AgentUser, AgentUsers, lock_down_state, prepare_home, python_for
from .base import ENV_AGENT_ID, ENV_INSTANCE, AgentSpec, Owned, RuntimeStatus, Started, agent_environment
from .process_groups import created as _created
from .process_groups import free_port as _free_port
from .process_groups import listener, members, stop_processes
from .process_groups import running as _running
from .shared_hosts import SharedHosts

log = logging.getLogger(__name__)

REFERENCE_AGENT = REPO_ROOT / "local_emulator" / "reference_agent.py"
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_RUNTIME_CHARACTER = "character.json"
_POLL_S = 0.1


class ProcessRuntime:
    kind = "process"

    def __init__(self, settings: Settings, users: AgentUsers | None = None) -> None:
        self.settings = settings
        self.log_dir = settings.run_dir / "logs"
        self.users: AgentUsers | None = None
        if os.geteuid() == 0:
            self.users = users or AgentUsers()
        else:
            log.warning("not running as root: agents run as this user (uid %s), not each as its own user;"
                        " they can read each other's /proc entries and this user's files", os.geteuid())
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        # Booting ElizaOS is CPU-bound for seconds: more boots at once than cores only slows them all.
        self._boots = threading.BoundedSemaphore(max(1, settings.agent_start_concurrency))
        self.shared = SharedHosts(settings, self.users, self._boots) if self._hosts_shared() else None

    # --- AgentRuntime ----------------------------------------------------------------------

    def start(self, spec: AgentSpec) -> Started:
        home = self.settings.agent_home(spec.agent_id)
        if self._hosts_shared() and not (home / "elizadb").exists():
            return self._shared().start(spec)
        user = self._user_for(spec.agent_id)
        if user is not None:
            # One server per agent, ever: whatever still runs as the agent's user (left by a crash
            # of the platform) ends before the new one starts.
            self.stop(json.dumps({"pid": 0, "created": -1.0, "uid": user.uid}), grace=1.0)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.chmod(0o700)
        character = self._prepare(home, user, spec.character_path)
        log_path = self.log_dir / f"{spec.agent_id}.log"
        with self._boots:
            port = _free_port(self.settings.agent_host)
            argv = self._argv(spec.agent_id, character, port, user)
            env = self._env(spec, home, port)
            try:
                with open(log_path, "ab") as log_file:
                    # A session of its own: the agent outlives a restart of the functions, and
                    # stop() can signal the agent's whole process group.
                    child = subprocess.Popen(
                        argv, env=env, cwd=str(home), stdin=subprocess.DEVNULL, stdout=log_file,
                        stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, umask=0o077,
                        **_as_user(user),
                    )
            except OSError as exc:
                raise AgentStartFailed(f"could not run the agent command {argv[0]!r}: {exc.strerror}") from exc
            with self._lock:
                self._children[child.pid] = child
            info: dict[str, Any] = {"pid": child.pid, "created": _created(child.pid), "port": port,
                                    "log": str(log_path), "agent": spec.agent_id,
                                    "uid": user.uid if user else None}
            info["server"] = self._await_listening(info)
        return Started(handle=json.dumps(info), url=self._url(port))

    def stop(self, handle: str, grace: float) -> None:
        info = _parse(handle)
        if info.get("shared"):
            return self._shared().stop(handle, grace)
        stop_processes(members(info), grace)
        self._reap(info["pid"])

    def status(self, handle: str) -> RuntimeStatus:
        info = _parse(handle)
        if info.get("shared"):
            return self._shared().status(handle)
        if not self.alive(handle):
            child = self._children.get(info["pid"])
            code = child.returncode if child else None
            return RuntimeStatus(state="exited", alive=False, exit_code=code, detail="process is gone")
        rss, cpu = 0, 0.0
        for proc in members(info):
            try:
                rss += proc.memory_info().rss
                cpu += sum(proc.cpu_times()[:2])
            except psutil.Error:
                pass
        return RuntimeStatus(state="running", alive=True, memory_bytes=rss or None,
                             detail=f"pid {info['pid']}, port {info['port']}", cpu_seconds=cpu)

    def alive(self, handle: str) -> bool:
        """The group leader and the process serving the port both still run.

        kill -9 of either is seen at once; stop() then ends whatever is left of the group.
        """
        info = _parse(handle)
        if info.get("shared"):
            return self._shared().alive(handle)
        self._poll_child(info["pid"])
        server = info.get("server") or [info["pid"], info["created"]]
        return _running(info["pid"], info["created"]) and _running(server[0], server[1])

    def logs(self, handle: str, tail: int = 200) -> list[str]:
        path = Path(json.loads(handle)["log"])
        if not path.exists():
            return []
        with open(path, "rb") as fh:
            lines = deque(fh, maxlen=tail)
        return [line.decode("utf-8", "replace").rstrip("\n") for line in lines]

    def forget(self, agent_id: str, tenant: str) -> None:
        """Delete what the agent's server keeps of it outside its home: its rows in its owner's database."""
        if self.shared is not None:
            self.shared.forget(agent_id, tenant)

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()

    def list_owned(self) -> list[Owned]:
        owned = self.shared.list_owned() if self.shared is not None else []
        for proc in psutil.process_iter(["pid", "uids", "create_time"]):
            try:
                if os.getpgid(proc.pid) != proc.pid:
                    continue  # only the process the platform launched, the leader of its group
                env = proc.environ()
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
            if env.get(ENV_INSTANCE) != self.settings.instance_key or ENV_AGENT_ID not in env:
                continue
            agent_id, port = env[ENV_AGENT_ID], int(env.get("PORT", "0"))
            uids = proc.info["uids"]
            if uids is None or proc.info["create_time"] is None:
                continue  # it ended while we looked
            info: dict[str, Any] = {"pid": proc.pid, "created": proc.info["create_time"], "port": port,
                                    "log": str(self.log_dir / f"{agent_id}.log"), "agent": agent_id,
                                    "uid": uids.real if self.users else None}
            # One still booting, or serving another port, is listed too: whoever adopts it finds it
            # unhealthy and restarts it, and a platform that stops sees it.
            server = listener(info)
            info["server"] = list(server[:2]) if server and server[2] == port else [proc.pid, info["created"]]
            owned.append(Owned(agent_id=agent_id, handle=json.dumps(info), url=self._url(port)))
        return owned

    # --- starting --------------------------------------------------------------------------

    def _shared(self) -> SharedHosts:
        if self.shared is None:  # shared hosting chosen after this runtime was made, or a handle of it
            self.shared = SharedHosts(self.settings, self.users, self._boots)
        return self.shared

    def _hosts_shared(self) -> bool:
        """ElizaOS runs many agents in one server; the reference agent and other commands do not."""
        s = self.settings
        return s.agent == "elizaos" and not s.agent_command and s.agent_hosting == "shared"

    def _user_for(self, agent_id: str) -> AgentUser | None:
        return self.users.for_agent(agent_id) if self.users else None

    def _prepare(self, home: Path, user: AgentUser | None, character_path: Path) -> Path:
        """The agent's home, ready to run in, holding the character it runs; returns that file.

        The character is copied in unless it is already there: the agent's user can read
        nothing outside its home and the installed server.
        """
        if user is not None:
            lock_down_state(self.settings.state_dir, home.parent)
        prepare_home(home, user)
        target = home / _RUNTIME_CHARACTER
        if not (target.exists() and target.samefile(character_path)):
            try:
                shutil.copyfile(character_path, target)
            except OSError as exc:
                raise AgentStartFailed(f"could not read the character {character_path}: {exc.strerror}") from exc
        if user is not None:
            os.chown(target, user.uid, user.gid)
        target.chmod(0o600)
        return target

    def _argv(self, agent_id: str, character: Path, port: int, user: AgentUser | None) -> list[str]:
        if self.settings.agent_command:
            values = {"character": str(character), "port": str(port), "host": self.settings.agent_host,
                      "agent_id": agent_id}
            return [part.format(**values) for part in shlex.split(self.settings.agent_command)]
        if self.settings.agent == "elizaos":
            eliza = self.settings.elizaos_dir
            bun = eliza / "bun" / "node_modules" / ".bin" / "bun"
            cli = eliza / "app" / "node_modules" / "@elizaos" / "cli" / "dist" / "index.js"
            if not bun.exists() or not cli.exists():
                raise AgentStartFailed(f"ElizaOS is not installed in {eliza}: run local_emulator/elizaos.sh")
            return [str(bun), str(cli), "start", "--character", str(character), "--port", str(port)]
        return [python_for(user), "-u", str(REFERENCE_AGENT), "--character", str(character),
                "--port", str(port), "--host", self.settings.agent_host]

    def _env(self, spec: AgentSpec, home: Path, port: int) -> dict[str, str]:
        return agent_environment(spec, instance_key=self.settings.instance_key, host=self.settings.agent_host,
                                 port=port, home=str(home), path=self._path())

    def _path(self) -> str:
        """bun alone for ElizaOS: its CLI runs `npm view @elizaos/cli` on every start when npm is on
        the PATH, an unbounded network call (2-3 s here) before it serves; without npm it skips it."""
        if self.settings.agent == "elizaos" and not self.settings.agent_command:
            return str(self.settings.elizaos_dir / "bun" / "node_modules" / ".bin")
        return _SYSTEM_PATH

    def _await_listening(self, info: dict[str, Any]) -> list[float]:
        """Wait until the group serves a port; returns [pid, created] of the process serving it.

        ElizaOS moves to another port, silently, when its own is taken: a group serving any other
        port is stopped and the start fails. A group that exits, or is still booting when the
        start timeout is up, is returned as is: the caller's health wait reports it.
        """
        deadline = time.monotonic() + self.settings.agent_start_timeout
        while time.monotonic() < deadline and self.alive(json.dumps(info)):
            found = listener(info)
            if found is not None:
                pid, created, port = found
                if port != info["port"]:
                    self.stop(json.dumps(info), grace=1.0)
                    raise AgentStartFailed(
                        f"the agent server started on port {port}, not on its port {info['port']}"
                        f" (taken by another process); it was stopped",
                        details=[{"loc": ["agent", "port"], "msg": f"expected {info['port']}, got {port}"}])
                return [pid, created]
            time.sleep(_POLL_S)
        return [info["pid"], info["created"]]



    def _url(self, port: int) -> str:
        return f"http://{self.settings.agent_host}:{port}"

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


def _parse(handle: str) -> dict[str, Any]:
    """A handle's fields; one written by an older version (no creation time) reads as gone."""
    info: dict[str, Any] = {"created": -1.0, "agent": None, "uid": None, "server": None, **json.loads(handle)}
    return info


def _as_user(user: AgentUser | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}

