"""What the docker backend sets up around an agent's container: its folder and user, mounts, network, and
what it reads back (address, state, memory)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AgentStartFailed
from ..settings import Settings
from .base import AgentSpec

if TYPE_CHECKING:  # docker-py loads only when this backend is used
    from docker import DockerClient
    from docker.models.containers import Container
    from docker.models.networks import Network

# Every agent container joins this bridge network and publishes no port: only this host (and no
# other agent: inter-container traffic is off) reaches an agent, at its address on the network.
# Not an --internal network, because agents call their model APIs (and chat services) outside.
# One network per host rather than per platform instance: Docker has only about 30 address
# pools for bridge networks, and with inter-container traffic off, sharing one isolates as well.
AGENT_NETWORK = "paradyze-agents"
_NO_ICC = {"com.docker.network.bridge.enable_icc": "false"}
# The agent's own folder (Settings.agent_home) inside the container: working directory and memory.
AGENT_DIR = "/agent"
# The unprivileged user both agent images define; a root platform hands it the agent's folder.
AGENT_UID = AGENT_GID = 10001


def agent_user(home: Path, spec: AgentSpec) -> str:
    """Create the agent's folder and return the user its container runs as, who owns it.

    A root platform gives the folder to the images' unprivileged user (the agent itself
    never runs as root); an unprivileged platform cannot, so the agent runs as the platform's
    own user, who already owns it. Links are changed, never followed.
    """
    try:
        home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return f"{os.getuid()}:{os.getgid()}"
        for folder, dirs, files in os.walk(home):
            for path in (folder, *(os.path.join(folder, n) for n in (*dirs, *files))):
                st = os.lstat(path)
                if (st.st_uid, st.st_gid) != (AGENT_UID, AGENT_GID):
                    os.lchown(path, AGENT_UID, AGENT_GID)
    except OSError as exc:
        raise AgentStartFailed(f"cannot prepare the folder of agent {spec.agent_id}: {exc.strerror}") from exc
    return f"{AGENT_UID}:{AGENT_GID}"


def mounts(settings: Settings, spec: AgentSpec, home: Path) -> tuple[list[Any], str]:
    """The agent's folder at /agent, read-write, and where its character file is in there.

    A character file outside the folder is bind-mounted read-only at docker_character_path.
    --mount binds (unlike -v) fail when the source is missing instead of creating an empty
    directory in its place.
    """
    from docker.types import Mount

    mounts = [Mount(target=AGENT_DIR, source=str(home), type="bind", read_only=False)]
    character = Path(os.path.abspath(spec.character_path))
    if character.is_relative_to(home.resolve()):
        return mounts, f"{AGENT_DIR}/{character.relative_to(home.resolve()).as_posix()}"
    target = settings.docker_character_path
    mounts.append(Mount(target=target, source=str(character), type="bind", read_only=True))
    return mounts, target


def agent_network(client: DockerClient) -> Network:
    """The agent network, created on first use. Call inside _docker_errors."""
    import docker.errors

    try:
        return client.networks.get(AGENT_NETWORK)
    except docker.errors.NotFound:
        pass
    try:
        return client.networks.create(
            AGENT_NETWORK,
            driver="bridge",
            check_duplicate=True,
            options=_NO_ICC,
            labels={"paradyze.role": "agents"},
        )
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: another start created it just now
            raise
        return client.networks.get(AGENT_NETWORK)


def memory_bytes(client: DockerClient, container: Container) -> int | None:
    from docker.utils import version_lt

    # one_shot skips the second sample (a full second) but needs API 1.41.
    one_shot = None if version_lt(client.api.api_version, "1.41") else True
    stats = container.stats(stream=False, one_shot=one_shot)
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None
    # Like `docker stats`: page cache the kernel can drop is not the agent's memory.
    details = memory.get("stats") or {}
    cache = details.get("total_inactive_file", details.get("inactive_file", 0))
    return int(usage) - int(cache) if int(usage) >= int(cache) else int(usage)


def address_of(container: Container) -> str:
    """The container's address on the agent network; "" while it has none (e.g. not running)."""
    networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return str((networks.get(AGENT_NETWORK) or {}).get("IPAddress") or "")


def state_detail(state: dict[str, Any]) -> str:
    parts = [f"status {state.get('Status', '?')}"]
    if state.get("Status") in ("exited", "dead"):
        parts.append(f"exit code {state.get('ExitCode')}")
    if state.get("OOMKilled"):
        parts.append("OOMKilled")
    health = (state.get("Health") or {}).get("Status")
    if health and state.get("Status") == "running":  # a dead container's last health says nothing
        parts.append(f"health {health}")
    if state.get("Error"):
        parts.append(f"error: {state['Error']}")
    return ", ".join(parts)
