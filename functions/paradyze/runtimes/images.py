"""The agent image and memory limit the container runtimes (docker, cloud_run) use by default."""

from __future__ import annotations

from ..settings import ELIZAOS_VERSION, Settings

# Both built locally by local_emulator/docker_images.sh, from the debootstrap base, with no registry.
ELIZAOS_IMAGE = f"paradyze/elizaos:{ELIZAOS_VERSION}"
REFERENCE_IMAGE = "paradyze/reference-agent:latest"
# An idle ElizaOS 1.7.2 holds about 350-430 MB; its peaks (migrations at start, a reply) need
# headroom. The reference agent is one small Python process: the Settings default stays.
ELIZAOS_MEMORY = "1g"


def agent_image(settings: Settings) -> str:
    """PARADYZE_DOCKER_IMAGE when set, else the image of the chosen agent server."""
    if "docker_image" in settings.model_fields_set:
        return settings.docker_image
    return ELIZAOS_IMAGE if settings.agent == "elizaos" else REFERENCE_IMAGE


def agent_memory(settings: Settings) -> str:
    """PARADYZE_DOCKER_MEMORY when set, else a limit that fits the chosen agent server."""
    if "docker_memory" in settings.model_fields_set:
        return settings.docker_memory
    return ELIZAOS_MEMORY if settings.agent == "elizaos" else settings.docker_memory
