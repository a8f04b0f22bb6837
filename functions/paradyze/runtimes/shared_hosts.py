"""ElizaOS servers shared by the agents of one owner: started on demand from a warm pool, stopped when empty.

One ElizaOS 1.7.2 process can run many agents, and a second agent in a running server costs about
0.1 s and a few MB, where a server of its own costs 4-8 s and 400 MB. So each owner (tenant) gets
one server, running as a uid of the owner's own, with the owner's memory in one PGlite database in
the owner's home (rows keyed by agent id). Agents of different owners never share a process, a uid
or a database. A server is claimed from a pool of servers that have already loaded ElizaOS
(eliza_host.mjs waits for its claim on stdin) and is stopped when its last agent stops.

Handles are JSON: the agent, its owner, and the server's pid, creation time, port, uid and log.
Every server is recorded in run/hosts/<pid>.json, so a restarted platform finds it again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import subprocess
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from ..agent_keys import api_key
from ..errors import AgentStartFailed
from ..settings import Settings
from .agent_users import AgentUser, AgentUsers, lock_down_state, prepare_home
from .base import AgentSpec, Owned, RuntimeStatus, Started
from .process_groups import free_port, running, stop_processes, uid_processes
from .server_pool import ServerPool

log = logging.getLogger(__name__)

NO_OWNER = str(uuid.UUID(int=0))
_CONTROL_TIMEOUT = 60.0
_MOVED_PORT = 3  # eliza_host.mjs exits with it when ElizaOS silently took another port


@dataclass(frozen=True)
class Server:
    tenant: str
    pid: int
    created: float
    port: int
    uid: int | None
    log: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class SharedHosts:
    """The owners' servers on this host; thread-safe, and safe across platform processes (file locks)."""

    def __init__(self, settings: Settings, users: AgentUsers | None, boots: threading.BoundedSemaphore) -> None:
        self.settings = settings
        self.users = users
        self._boots = boots
        self._hosts_dir = settings.run_dir / "hosts"
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._pool = ServerPool(settings)
        self._http = httpx.Client(timeout=_CONTROL_TIMEOUT)

    # --- the agents ------------------------------------------------------------------------

    def start(self, spec: AgentSpec) -> Started:
        tenant = spec.tenant or NO_OWNER
        try:
            character = json.loads(spec.character_path.read_text())
        except (OSError, ValueError) as exc:
            raise AgentStartFailed(f"could not read the character {spec.character_path}: {exc}") from exc
        body = {"character": character, "key": api_key(spec.agent_id),
                "settings": {k: v for k, v in spec.env.items() if v != ""}}
        with self._tenant(tenant):
            server = self._server(tenant, boot=True)
            assert server is not None
            self._control(server, f"agents/{spec.agent_id}/start", body)
        return Started(handle=_handle(spec.agent_id, server), url=server.url)

    def stop(self, handle: str, grace: float) -> None:
        info = json.loads(handle)
        with self._tenant(info["tenant"]):
            server = self._server(info["tenant"], boot=False)
            if server is None or (server.pid, server.created) != (info["pid"], info["created"]):
                return  # its server is gone; a newer one of the owner does not host this start of it
            left = self._control(server, f"agents/{info['agent']}/stop", {}, tolerate_gone=True)
            if not left:
                self._stop_server(server, grace)

    def forget(self, agent_id: str, tenant: str) -> None:
        """Delete the agent's memory from its owner's database (booting the owner's server if need be)."""
        with self._tenant(tenant):
            if not self._home(tenant).exists():
                return
            server = self._server(tenant, boot=True)
            assert server is not None
            if not self._control(server, f"agents/{agent_id}/forget", {}):
                self._stop_server(server, self.settings.agent_stop_grace)

    def alive(self, handle: str) -> bool:
        info = json.loads(handle)
        self._poll(info["pid"])
        return running(info["pid"], info["created"])

    def status(self, handle: str) -> RuntimeStatus:
        info = json.loads(handle)
        if not self.alive(handle):
            return RuntimeStatus(state="exited", alive=False, detail="its owner's server is gone")
        try:
            rss = psutil.Process(info["pid"]).memory_info().rss
        except psutil.Error:
            rss = 0
        return RuntimeStatus(state="running", alive=True, memory_bytes=rss or None,
                             detail=f"shares server pid {info['pid']} (port {info['port']}) with its owner's agents")

    def logs(self, handle: str, tail: int = 200) -> list[str]:
        path = Path(json.loads(handle)["log"])
        if not path.exists():
            return []
        with open(path, "rb") as fh:
            return [line.decode("utf-8", "replace").rstrip("\n") for line in deque(fh, maxlen=tail)]

    def list_owned(self) -> list[Owned]:
        owned = []
        for server in self._servers():
            try:
                agents = self._control(server, "agents", None)
            except AgentStartFailed:
                agents = []
            owned += [Owned(agent_id=a, handle=_handle(a, server), url=server.url) for a in agents]
        return owned

    def close(self) -> None:
        """End the pool's idle servers."""
        self._pool.close()

    # --- the owners' servers ---------------------------------------------------------------

    @contextmanager
    def _tenant(self, tenant: str) -> Any:
        """The owner's lock: in this process, and across processes sharing the state folder."""
        with self._guard:
            lock = self._locks.setdefault(tenant, threading.Lock())
        self._hosts_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with lock, open(self._hosts_dir / f"{tenant}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _server(self, tenant: str, *, boot: bool) -> Server | None:
        """The owner's running server, or a new one when boot; the caller holds the owner's lock."""
        for server in self._servers():
            if server.tenant == tenant:
                return server
        return self._boot(tenant) if boot else None

    def _servers(self) -> list[Server]:
        found = []
        for record in sorted(self._hosts_dir.glob("*.json")) if self._hosts_dir.exists() else []:
            try:
                server = Server(**json.loads(record.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            self._poll(server.pid)
            if running(server.pid, server.created):
                found.append(server)
            else:
                record.unlink(missing_ok=True)
        return found

    def _boot(self, tenant: str) -> Server:
        user = self.users.for_agent(f"owner:{tenant}") if self.users else None
        if user is not None:  # whatever still runs as the owner's user is left from a crash
            stop_processes(uid_processes(user.uid), grace=1.0)
        home = self._home(tenant)
        if user is not None:
            lock_down_state(self.settings.state_dir, home.parent)
        prepare_home(home, user)
        with self._boots:
            pooled = self._pool.take()
            child = pooled.child
            port = free_port(self.settings.agent_host)
            server = Server(tenant=tenant, pid=child.pid, created=psutil.Process(child.pid).create_time(),
                            port=port, uid=user.uid if user else None, log=pooled.log)
            self._claim(child, server, home, user)
            self._await_serving(child, server)
        (self._hosts_dir / f"{child.pid}.json").write_text(json.dumps(asdict(server)))
        return server

    def _claim(self, child: subprocess.Popen[bytes], server: Server, home: Path, user: AgentUser | None) -> None:
        env = {"SERVER_HOST": self.settings.agent_host, "SERVER_PORT": str(server.port), "PORT": str(server.port),
               "ELIZA_SERVER_AUTH_TOKEN": api_key(f"server:{server.tenant}"), "ELIZA_NO_AUTO_INSTALL": "true",
               "PGLITE_DATA_DIR": str(home / "elizadb"), "HOME": str(home), "PARADYZE_TENANT": server.tenant}
        claim: dict[str, Any] = {"home": str(home), "port": server.port, "env": env}
        if user is not None:
            claim |= {"uid": user.uid, "gid": user.gid}
        assert child.stdin is not None
        try:
            child.stdin.write((json.dumps(claim) + "\n").encode())
            child.stdin.flush()
        except OSError as exc:
            raise AgentStartFailed(f"the ElizaOS server {child.pid} exited before it was claimed") from exc

    def _await_serving(self, child: subprocess.Popen[bytes], server: Server) -> None:
        deadline = time.monotonic() + self.settings.agent_start_timeout
        while time.monotonic() < deadline:
            if child.poll() is not None:
                (self._hosts_dir / f"{child.pid}.json").unlink(missing_ok=True)
                if child.returncode == _MOVED_PORT:
                    raise AgentStartFailed(
                        f"the owner's ElizaOS server started on another port, not on its port {server.port} (taken"
                        " by another process); it was stopped",
                        details=[{"loc": ["agent", "port"], "msg": f"port {server.port} was taken"}])
                raise AgentStartFailed(f"the owner's ElizaOS server exited ({child.returncode}) before it served;"
                                       f" see {server.log}")
            try:
                self._control(server, "agents", None)
                return
            except AgentStartFailed:
                time.sleep(0.05)
        self._stop_server(server, 1.0)
        raise AgentStartFailed(
            f"the owner's ElizaOS server did not serve within {self.settings.agent_start_timeout:g}s; see {server.log}")

    def _control(self, server: Server, path: str, body: dict[str, Any] | None, *,
                 tolerate_gone: bool = False) -> list[str]:
        """Call the server's control API; returns the agents it runs afterwards."""
        headers = {"X-API-KEY": api_key(f"server:{server.tenant}")}
        try:
            if body is None:
                resp = self._http.get(f"{server.url}/_paradyze/{path}", headers=headers, timeout=5.0)
            else:
                resp = self._http.post(f"{server.url}/_paradyze/{path}", headers=headers, json=body)
        except httpx.HTTPError as exc:
            if tolerate_gone:
                return []
            raise AgentStartFailed(f"the owner's ElizaOS server at {server.url} did not answer: {exc}") from exc
        if resp.status_code != 200:
            raise AgentStartFailed(
                f"the owner's ElizaOS server refused {path}: HTTP {resp.status_code} {resp.text[:300]}")
        return [str(a) for a in resp.json().get("agents", [])]

    def _stop_server(self, server: Server, grace: float) -> None:
        procs = uid_processes(server.uid) if server.uid is not None else []
        try:
            leader = psutil.Process(server.pid)
            if leader.create_time() == server.created and leader not in procs:
                procs.append(leader)
        except psutil.Error:
            pass
        stop_processes(procs, grace)
        (self._hosts_dir / f"{server.pid}.json").unlink(missing_ok=True)
        self._poll(server.pid)

    def _home(self, tenant: str) -> Path:
        return self.settings.agent_home(f"owner-{tenant}")

    def _poll(self, pid: int) -> None:
        self._pool.reap(pid)

def _handle(agent_id: str, server: Server) -> str:
    return json.dumps({"shared": True, "agent": agent_id, "tenant": server.tenant, "pid": server.pid,
                       "created": server.created, "port": server.port, "uid": server.uid, "log": server.log},
                      sort_keys=True)

