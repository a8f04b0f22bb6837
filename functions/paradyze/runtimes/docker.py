"""The `docker` backend: each agent is one container of settings.docker_image, managed with docker-py."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import AgentStartFailed, ParadyzeError, RuntimeUnavailable
from ..settings import Settings
from .base import AgentSpec, Owned, RuntimeStatus, Started

if TYPE_CHECKING:  # docker-py loads only when this backend is used
    from docker import DockerClient
    from docker.models.containers import Container

LABEL_AGENT = "paradyze.agent_id"
LABEL_INSTANCE = "paradyze.instance"
LABEL_VERSION = "paradyze.character_version"
# Agents publish their port on the host's loopback only: nothing outside this host reaches them.
PUBLISH_HOST = "127.0.0.1"
_PORT_POLL = 0.05


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

    def container_name(self, agent_id: str) -> str:
        return f"paradyze-{self.settings.instance_key}-{agent_id}"

    def start(self, spec: AgentSpec) -> Started:
        """Run the agent's container and return once Docker has published its port.

        Raises RuntimeUnavailable when the engine does not answer, AgentStartFailed otherwise
        (missing image, bad mount, container exiting before its port shows, ...).
        """
        name = self.container_name(spec.agent_id)
        # An earlier attempt may have left a container under this name: a retry replaces it.
        self._remove_by_name(name, spec)
        with self._docker_errors(f"start agent {spec.agent_id}", start=True, secrets=spec.env.values()):
            from docker.types import LogConfig, Mount

            client = self._docker()
            container = client.containers.create(
                self.settings.docker_image,
                name=name,
                labels={
                    LABEL_AGENT: spec.agent_id,
                    LABEL_INSTANCE: self.settings.instance_key,
                    LABEL_VERSION: str(spec.character_version),
                },
                environment=self._environment(spec),
                # A --mount bind (unlike -v) fails when the file is missing instead of creating
                # an empty directory in its place in the character store.
                mounts=[
                    Mount(
                        target=self.settings.docker_character_path,
                        source=str(spec.character_path),
                        type="bind",
                        read_only=True,
                    )
                ],
                ports={self._port_key: (PUBLISH_HOST, None)},
                mem_limit=self.settings.docker_memory,
                memswap_limit=self.settings.docker_memory,
                nano_cpus=int(self.settings.docker_cpus * 1e9),
                # The platform restarts crashed agents itself, counting crashes; Docker must not.
                restart_policy={"Name": "no"},
                # tini as PID 1 forwards SIGTERM: a node agent as PID 1 would ignore it and sit
                # out the whole grace period.
                init=True,
                log_config=LogConfig(type=LogConfig.types.JSON, config={"max-size": "10m", "max-file": "3"}),
            )
            try:
                container.start()
                port = self._published_port(container)
            except BaseException:
                # Leave nothing behind from a failed start; the original error is what matters.
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                raise
        return Started(handle=str(container.id), url=f"http://{PUBLISH_HOST}:{port}")

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
                memory = self._memory_bytes(container) if container.status == "running" else None
        except _Missing:
            return RuntimeStatus(state="missing", alive=False, detail="container not found")
        exit_code = state.get("ExitCode") if container.status in ("exited", "dead") else None
        return RuntimeStatus(
            state=container.status,
            alive=container.status == "running",
            exit_code=exit_code,
            memory_bytes=memory,
            detail=_detail(state),
        )

    def alive(self, handle: str) -> bool:
        """Raises RuntimeUnavailable when the engine does not answer."""
        try:
            with self._docker_errors("read agent container status"):
                return bool(self._docker().containers.get(handle).status == "running")
        except _Missing:
            return False

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

        A container that is not running has no published port; its url is "".
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

    @property
    def _port_key(self) -> str:
        return f"{self.settings.docker_agent_port}/tcp"

    def _environment(self, spec: AgentSpec) -> dict[str, str]:
        env = {k: v for k, v in spec.env.items() if v != ""}
        # Both names: the reference agent reads PORT, ElizaOS's server reads SERVER_PORT.
        env.update(
            {
                "CHARACTER_PATH": self.settings.docker_character_path,
                "PORT": str(self.settings.docker_agent_port),
                "SERVER_PORT": str(self.settings.docker_agent_port),
                "HOST": "0.0.0.0",
            }
        )
        return env

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

    def _published_port(self, container: Container) -> int:
        """Reload until Docker shows the host port it chose; fail if the container dies first."""
        deadline = time.monotonic() + self.settings.agent_start_timeout
        while True:
            container.reload()
            bindings = (container.ports or {}).get(self._port_key) or []
            for binding in bindings:
                if binding.get("HostPort"):
                    return int(binding["HostPort"])
            if container.status in ("exited", "dead"):
                state = container.attrs.get("State") or {}
                raise AgentStartFailed(f"agent container exited during start ({_detail(state)}); see its logs")
            if time.monotonic() >= deadline:
                raise AgentStartFailed(
                    f"Docker published no port for {self._port_key} within {self.settings.agent_start_timeout:g}s"
                )
            time.sleep(_PORT_POLL)

    def _url_of(self, container: Container) -> str:
        for binding in (container.ports or {}).get(self._port_key) or []:
            if binding.get("HostPort"):
                return f"http://{PUBLISH_HOST}:{binding['HostPort']}"
        return ""

    def _memory_bytes(self, container: Container) -> int | None:
        from docker.utils import version_lt

        # one_shot skips the second sample (a full second) but needs API 1.41.
        one_shot = None if version_lt(self._docker().api.api_version, "1.41") else True
        stats = container.stats(stream=False, one_shot=one_shot)
        memory = stats.get("memory_stats") or {}
        usage = memory.get("usage")
        if usage is None:
            return None
        # Like `docker stats`: page cache the kernel can drop is not the agent's memory.
        details = memory.get("stats") or {}
        cache = details.get("total_inactive_file", details.get("inactive_file", 0))
        return int(usage) - int(cache) if int(usage) >= int(cache) else int(usage)

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
                f"cannot {action}: image {self.settings.docker_image!r} not found "
                "(build it with local_emulator/docker_images.sh or set PARADYZE_DOCKER_IMAGE)"
            ) from exc
        except docker.errors.NotFound as exc:
            raise _Missing(action) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            self._client = None  # reconnect next time; the engine may be back
            raise RuntimeUnavailable(f"cannot {action}: Docker Engine does not answer") from exc
        except docker.errors.APIError as exc:
            reason = _scrub(str(exc.explanation or exc), secrets)
            if start:
                raise AgentStartFailed(f"cannot {action}: {reason}") from exc
            raise RuntimeUnavailable(f"cannot {action}: {reason}") from exc
        except docker.errors.DockerException as exc:
            # Raised by docker.from_env() when no engine answers on the socket.
            self._client = None
            raise RuntimeUnavailable(
                f"cannot {action}: Docker Engine does not answer ({_scrub(str(exc), secrets)})"
            ) from exc


def _detail(state: dict[str, Any]) -> str:
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


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """Blank out secret values an engine message might echo back (e.g. from the create request)."""
    for value in secrets:
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text
