"""Runtime fixtures: a Docker Engine client, skipping with the reason when there is none."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from paradyze.settings import Settings


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker-py client; skips the module when no engine answers or the agent image is missing."""
    docker = pytest.importorskip("docker")
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException):
        pytest.skip(f"Docker Engine not answering at {where}; run local_emulator/docker_engine.sh")
    image = Settings().docker_image
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.skip(f"agent image {image} missing; build it with local_emulator/docker_images.sh")
    yield client
    client.close()


