"""The AgentRuntime Protocol: how the platform starts, stops and watches agents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..agent_keys import api_key

# How a backend finds its own agents again after a restart of the platform.
ENV_AGENT_ID = "PARADYZE_AGENT_ID"
ENV_INSTANCE = "PARADYZE_INSTANCE_KEY"


@dataclass(frozen=True)
class AgentSpec:
    """Everything a backend needs to run one agent."""

    agent_id: str
    character_path: Path  # the runtime character (eliza_character.for_runtime): secret-free, in the agent home
    character_version: int
    env: dict[str, str] = field(default_factory=dict)  # secrets and provider keys; never logged
    tenant: str = ""  # the agent's owner: agents of different owners never share a process

    def __repr__(self) -> str:  # keep secret values out of tracebacks and logs
        return f"AgentSpec(agent_id={self.agent_id!r}, version={self.character_version})"


def agent_environment(spec: AgentSpec, *, instance_key: str, host: str, port: int, home: str,
                      path: str) -> dict[str, str]:
    """spec.env (the platform's allow-listed variables), then the variables every runtime sets
    itself, which always win: where the agent listens, its own key, no installs at run time, its
    memory in its home, and how the backend finds it again. Nothing of the platform's own
    environment is inherited."""
    own = {
        "PORT": str(port),
        "SERVER_PORT": str(port),
        "SERVER_HOST": host,
        "ELIZA_SERVER_AUTH_TOKEN": api_key(spec.agent_id),
        "ELIZA_NO_AUTO_INSTALL": "true",
        "PGLITE_DATA_DIR": f"{home}/elizadb",
        "HOME": home,
        "PATH": path,
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        ENV_AGENT_ID: spec.agent_id,
        ENV_INSTANCE: instance_key,
    }
    return {**{k: v for k, v in spec.env.items() if v != ""}, **own}


@dataclass(frozen=True)
class Started:
    handle: str  # opaque to the platform, stored in agents.runtime_handle
    url: str  # base URL of the agent's ElizaOS-compatible REST API


@dataclass(frozen=True)
class RuntimeStatus:
    state: str  # "running", "exited", "missing" (or a backend's own word, e.g. "restarting")
    alive: bool
    exit_code: int | None = None
    memory_bytes: int | None = None
    detail: str = ""
    cpu_seconds: float | None = None  # CPU time (user + system) of the current instance, where the backend knows it


@dataclass(frozen=True)
class Owned:
    """An agent instance the backend finds running under this platform instance."""

    agent_id: str
    handle: str
    url: str


@runtime_checkable
class AgentRuntime(Protocol):
    kind: str

    def start(self, spec: AgentSpec) -> Started:
        """Start the agent; returns once it was launched, or once it listens where it should (process).

        Health is awaited by the caller.

        Raises RuntimeUnavailable when the backend itself is down, AgentStartFailed otherwise.
        """

    def stop(self, handle: str, grace: float) -> None:
        """Stop gracefully (SIGTERM, grace seconds, then kill) and release it. Idempotent."""

    def status(self, handle: str) -> RuntimeStatus:
        """State, exit code and memory use; may take a moment (memory statistics)."""

    def alive(self, handle: str) -> bool:
        """Whether the instance runs: the cheap check used while waiting and reconciling."""

    def logs(self, handle: str, tail: int = 200) -> list[str]: ...

    def list_owned(self) -> list[Owned]:
        """Every agent instance of this platform instance, found from the backend itself."""

    def shares_server(self, handle: str) -> bool:
        """Whether the instance is one agent of a server its owner's agents share, its memory there
        (keyed by the agent's id) rather than in a home of its own."""

    def forget(self, agent_id: str, tenant: str) -> None:
        """Delete what the backend keeps of the agent outside its home (its rows in a shared server's
        database); a no-op where an agent's memory is all in its home or a database of its own."""

    def close(self) -> None:
        """Release what the backend holds open (a warm pool's servers, clients); it can be built again."""


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """Blank out secret values a backend's error message might echo back (e.g. from a create request)."""
    for value in secrets:
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text
