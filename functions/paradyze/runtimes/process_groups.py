"""Processes on this host, found and stopped safely: by pid and creation time (never a reused pid), or by uid."""

from __future__ import annotations

import signal
import socket

import psutil


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
