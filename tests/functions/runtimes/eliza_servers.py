"""The ElizaOS servers on this host that run a given agent, found as an operator would: from /proc and the sockets."""

from __future__ import annotations

import uuid

import httpx
import psutil

from paradyze.agent_keys import api_key

NO_OWNER = str(uuid.UUID(int=0))


def servers_of(agent_id: str, owner: str = NO_OWNER) -> list[psutil.Process]:
    """Every server process that runs agent_id: a server of its own (the CLI, found by the agent id in
    its environment), or its owner's shared server (which lists it to the owner's server key)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if any(arg.endswith("@elizaos/cli/dist/index.js") for arg in cmdline):
                if proc.environ().get("PARADYZE_AGENT_ID") == agent_id:
                    found.append(proc)
            elif any(arg.endswith("eliza_host.mjs") for arg in cmdline) and agent_id in hosted(proc, owner):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def hosted(proc: psutil.Process, owner: str) -> list[str]:
    """The agents a shared server runs, asked with its owner's server key ([] for another owner's server)."""
    ports = [c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    for port in ports:
        try:
            resp = httpx.get(f"http://127.0.0.1:{port}/_paradyze/agents",
                             headers={"X-API-KEY": api_key(f"server:{owner}")}, timeout=10)
        except httpx.HTTPError:
            continue
        if resp.status_code == 200:
            return [str(a) for a in resp.json()["agents"]]
    return []


def shared_servers(*, listening: bool = True) -> list[psutil.Process]:
    """Every shared server on this host that serves (claimed by an owner), or every one when not
    listening (the warm pool's too, which serve nothing until claimed)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(arg.endswith("eliza_host.mjs") for arg in proc.info["cmdline"] or []) and (not listening or any(
                    c.status == psutil.CONN_LISTEN for c in proc.net_connections(kind="tcp"))):
                found.append(proc)
        except psutil.Error:
            pass
    return found
