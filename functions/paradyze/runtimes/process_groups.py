"""Processes on this host, found and stopped safely: by pid and creation time (never a reused pid), or by uid."""

from __future__ import annotations

import os
import signal
import socket
from typing import Any

import psutil

from .base import ENV_AGENT_ID


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def created(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return -1.0


def running(pid: int, created: float) -> bool:
    """The process pid runs, and is the one created at `created` (not a later process given the same pid)."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == created and proc.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False


def uid_processes(uid: int) -> list[psutil.Process]:
    """Every process of uid: a process can leave its process group with setsid, never its uid."""
    return [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]


def send(proc: psutil.Process, sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


def stop_processes(procs: list[psutil.Process], grace: float) -> None:
    """SIGTERM, up to grace seconds to exit, then SIGKILL; returns once they are gone."""
    for proc in procs:
        send(proc, signal.SIGTERM)
    _gone, alive = psutil.wait_procs(procs, timeout=max(grace, 0.0))
    for proc in alive:
        send(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)


# --- an agent's own server: the process group (or uid) it was launched as ----------------------

def members(info: dict[str, Any]) -> list[psutil.Process]:
    """Every process of the agent: all of its uid's when it has its own (a process can leave its
    group with setsid, never its uid), else those of its process group."""
    uid = info.get("uid")
    if uid is not None and uid != os.geteuid():
        return uid_processes(uid)
    if not group_is_ours(info):
        return []
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == info["pid"]:
                found.append(proc)
        except (ProcessLookupError, PermissionError):
            pass
    return found


def group_is_ours(info: dict[str, Any]) -> bool:
    """The group still holds our agent: its leader, or, the leader gone, a member that carries
    the agent's id (a pid reused by another program must never be signalled)."""
    if running(info["pid"], info["created"]):
        return True
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == info["pid"] and proc.environ().get(ENV_AGENT_ID) == info.get("agent"):
                return True
        except (psutil.Error, ProcessLookupError, PermissionError):
            pass
    return False


def listener(info: dict[str, Any]) -> tuple[int, float, int] | None:
    """(pid, created, port) of a member listening on TCP, preferring the agent's own port."""
    found = None
    for proc in members(info):
        try:
            conns = proc.net_connections(kind="tcp")
            born = proc.create_time()
        except psutil.Error:
            continue
        for conn in conns:
            if conn.status == psutil.CONN_LISTEN:
                if conn.laddr.port == info["port"]:
                    return proc.pid, born, conn.laddr.port
                found = found or (proc.pid, born, conn.laddr.port)
    return found
