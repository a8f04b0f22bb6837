"""The `docker` backend: each agent is one container of the agent image, managed with docker-py."""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import AgentStartFailed, ParadyzeError, RuntimeUnavailable
from ..settings import Settings
from .base import AgentSpec, Owned, RuntimeStatus, Started, agent_environment, scrub_secrets
from .docker_container import (
    AGENT_DIR,
    AGENT_NETWORK,
    address_of,
    agent_network,
    agent_user,
    memory_bytes,
    mounts,
    state_detail,
)
from .images import agent_image, agent_memory

if TYPE_CHECKING:  # docker-py loads only when this backend is used
    from docker import DockerClient
    from docker.models.containers import Container

LABEL_AGENT = "paradyze.agent_id"
LABEL_INSTANCE = "paradyze.instance"
LABEL_VERSION = "paradyze.character_version"
AGENT_PATH = "/usr/local/bin:/usr/bin:/bin"
_START_POLL = 0.05
_BOOT_POLL = 0.25


class _Missing(Exception):
    """The container does not exist (docker's NotFound, translated in _docker_errors)."""


class DockerRuntime:
    """One container per agent, named paradyze-{instance}-{agent_id}.

    The handle is the full container id: a new container under the same name (a restart)
    gets a new handle, so a stale handle never stops or reports on the wrong container.
    """

    kind = "docker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: DockerClient | None = None
        # Booting ElizaOS is CPU-bound for seconds: more boots at once than cores only slows them all.
        self._boots = threading.BoundedSemaphore(max(1, settings.agent_start_concurrency))

    def container_name(self, agent_id: str) -> str:
        return f"paradyze-{self.settings.instance_key}-{agent_id}"

    def start(self, spec: AgentSpec) -> Started:
        """Run the agent's container and return once its server listens (or stopped trying).

        The agent's folder is mounted read-write at /agent; the container publishes no port.
        At most agent_start_concurrency containers boot at once; a container that exits while
        booting, or still boots at the start timeout, is returned as is: the caller's health wait
        reports it. Raises RuntimeUnavailable when the engine does not answer, AgentStartFailed
        otherwise (missing image, bad mount, container exiting before it has an address, ...).
        """
        name = self.container_name(spec.agent_id)
        # An earlier attempt may have left a container under this name: a retry replaces it.
        self._remove_by_name(name, spec)
        home = self.settings.agent_home(spec.agent_id)
        user = agent_user(home, spec)
        binds, character = mounts(self.settings, spec, home)
        with self._docker_errors(f"start agent {spec.agent_id}", start=True, secrets=spec.env.values()):
            from docker.types import LogConfig

            client = self._docker()
            container = client.containers.create(
                agent_image(self.settings),
                name=name,
                labels={
                    LABEL_AGENT: spec.agent_id,
                    LABEL_INSTANCE: self.settings.instance_key,
                    LABEL_VERSION: str(spec.character_version),
                },
                environment=self._environment(spec, character),
                user=user,
                working_dir=AGENT_DIR,
                mounts=binds,
                network=agent_network(self._docker()).name,
                mem_limit=agent_memory(self.settings),
                memswap_limit=agent_memory(self.settings),
                nano_cpus=int(self.settings.docker_cpus * 1e9),
                pids_limit=512,
                # The agent needs no capability (its port is above 1024) and never gains one.
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                # The platform restarts crashed agents itself, counting crashes; Docker must not.
                restart_policy={"Name": "no"},
                # tini as PID 1 forwards SIGTERM: a server as PID 1 would ignore it and sit out
                # the whole grace period.
                init=True,
                log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": "10m", "max-file": "3"}),
            )
            try:
                with self._boots:
                    container.start()
                    address = self._address(container)
                    self._await_listening(container, address)
            except BaseException:
                # Leave nothing behind from a failed start; the original error is what matters.
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                raise
        return Started(handle=str(container.id), url=f"http://{address}:{self.settings.docker_agent_port}")

    def gateway(self) -> str:
        """This host's address on the agent network: where agents reach a server the host runs.

        Raises RuntimeUnavailable when the engine does not answer.
        """
        with self._docker_errors("read the agent network"):
            configs = agent_network(self._docker()).attrs.get("IPAM", {}).get("Config") or []
        for config in configs:
            if config.get("Gateway"):
                return str(config["Gateway"])
        raise RuntimeUnavailable(f"Docker network {AGENT_NETWORK} has no gateway address")

    def stop(self, handle: str, grace: float) -> None:
        """SIGTERM, up to grace seconds, SIGKILL, then remove. A missing container is fine.

        Raises RuntimeUnavailable when the engine does not answer.
        """
        with contextlib.suppress(_Missing), self._docker_errors("stop agent container"):
            container = self._docker().containers.get(handle)
            container.stop(timeout=max(0, math.ceil(grace)))
            container.remove(force=True)

    def status(self, handle: str) -> RuntimeStatus:
        """The container's state; "missing" when it is gone. Raises RuntimeUnavailable."""
        try:
            with self._docker_errors("read agent container status"):
                container = self._docker().containers.get(handle)
                state: dict[str, Any] = container.attrs.get("State") or {}
                memory = memory_bytes(self._docker(), container) if container.status == "running" else None
        except _Missing:
            return RuntimeStatus(state="missing", alive=False, detail="container not found")
        exit_code = state.get("ExitCode") if container.status in ("exited", "dead") else None
        return RuntimeStatus(
            state=container.status,
            alive=container.status == "running",
            exit_code=exit_code,
            memory_bytes=memory,
            detail=state_detail(state),
        )

    def alive(self, handle: str) -> bool:
        """Raises RuntimeUnavailable when the engine does not answer."""
        try:
            with self._docker_errors("read agent container status"):
                return bool(self._docker().containers.get(handle).status == "running")
        except _Missing:
            return False

    def shares_server(self, handle: str) -> bool:
        return False  # a container is one agent's, its memory in the agent's home (mounted at /agent)

    def forget(self, agent_id: str, tenant: str) -> None:
        """Nothing to do: the agent's memory is in its home."""

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def logs(self, handle: str, tail: int = 200) -> list[str]:
        """The container's last `tail` lines (stdout and stderr); [] when it is gone."""
        try:
            with self._docker_errors("read agent container logs"):
                raw: bytes = self._docker().containers.get(handle).logs(tail=tail, stdout=True, stderr=True)
        except _Missing:
            return []
        return raw.decode("utf-8", "replace").splitlines()

    def list_owned(self) -> list[Owned]:
        """Every container, in any state, labelled with this platform instance.

        A container that is not running has no address; its url is "".
        """
        with self._docker_errors("list agent containers"):
            containers = self._docker().containers.list(
                all=True,
                filters={"label": f"{LABEL_INSTANCE}={self.settings.instance_key}"},
                ignore_removed=True,
            )
            owned = [
                Owned(agent_id=c.labels[LABEL_AGENT], handle=str(c.id), url=self._url_of(c))
                for c in containers
                if LABEL_AGENT in c.labels
            ]
        return owned

    # -- internals ---------------------------------------------------------------------------

    def _environment(self, spec: AgentSpec, character: str) -> dict[str, str]:
        """Every runtime's own variables, with all addresses inside the container (its port is
        never published); HOST too, which the reference agent reads where ElizaOS reads SERVER_HOST."""
        env = agent_environment(spec, instance_key=self.settings.instance_key, host="0.0.0.0",
                                port=self.settings.docker_agent_port, home=AGENT_DIR, path=AGENT_PATH)
        return {**env, "HOST": "0.0.0.0", "CHARACTER_PATH": character}

    def _docker(self) -> DockerClient:
        if self._client is None:
            import docker

            # Connects at once to learn the API version: an engine that is down fails here.
            self._client = docker.from_env(timeout=max(30, int(self.settings.agent_start_timeout)))
        return self._client

    def _remove_by_name(self, name: str, spec: AgentSpec) -> None:
        with (
            contextlib.suppress(_Missing),
            self._docker_errors(f"remove stale container of agent {spec.agent_id}", start=True),
        ):
            self._docker().containers.get(name).remove(force=True)

    def _address(self, container: Container) -> str:
        """Reload until the container has its address on the agent network; fail if it dies first."""
        deadline = time.monotonic() + self.settings.agent_start_timeout
        while True:
            container.reload()
            address = address_of(container)
            if address:
                return address
            if container.status in ("exited", "dead"):
                state = container.attrs.get("State") or {}
                raise AgentStartFailed(f"agent container exited during start ({state_detail(state)}); see its logs")
            if time.monotonic() >= deadline:
                timeout = self.settings.agent_start_timeout
                raise AgentStartFailed(f"the agent container had no address on {AGENT_NETWORK} within {timeout:g}s")
            time.sleep(_START_POLL)

    def _await_listening(self, container: Container, address: str) -> None:
        deadline = time.monotonic() + self.settings.agent_start_timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((address, self.settings.docker_agent_port), timeout=1):
                    return
            except OSError:
                pass
            container.reload()
            if container.status != "running":
                return
            time.sleep(_BOOT_POLL)

    def _url_of(self, container: Container) -> str:
        address = address_of(container)
        return f"http://{address}:{self.settings.docker_agent_port}" if address else ""

    @contextlib.contextmanager
    def _docker_errors(self, action: str, *, start: bool = False, secrets: Iterable[str] = ()) -> Iterator[None]:
        """The one place where docker-py's errors become domain errors.

        NotFound becomes _Missing (callers decide whether that is fine); an engine that does
        not answer becomes RuntimeUnavailable; any other Docker error is AgentStartFailed while
        starting and RuntimeUnavailable otherwise.
        """
        import docker.errors
        import requests.exceptions

        try:
            yield
        except ParadyzeError:
            raise
        except docker.errors.ImageNotFound as exc:
            raise AgentStartFailed(
                f"cannot {action}: image {agent_image(self.settings)!r} not found "
                "(build it with local_emulator/docker_images.sh or set PARADYZE_DOCKER_IMAGE)"
            ) from exc
        except docker.errors.NotFound as exc:
            raise _Missing(action) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            self._client = None  # reconnect next time; the engine may be back
            raise RuntimeUnavailable(f"cannot {action}: Docker Engine does not answer") from exc
        except docker.errors.APIError as exc:
            reason = scrub_secrets(str(exc.explanation or exc), secrets)
            if start:
                raise AgentStartFailed(f"cannot {action}: {reason}") from exc
            raise RuntimeUnavailable(f"cannot {action}: {reason}") from exc
        except docker.errors.DockerException as exc:
            # Raised by docker.from_env() when no engine answers on the socket.
            self._client = None
            raise RuntimeUnavailable(
                f"cannot {action}: Docker Engine does not answer ({scrub_secrets(str(exc), secrets)})"
            ) from exc


