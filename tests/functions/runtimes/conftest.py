"""Runtime fixtures: a Docker Engine client (skipping with the reason when there is none), and the
in-process functions run with settings of a test's own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from paradyze.runtimes import close_runtimes
from paradyze.settings import Settings, get_settings


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




@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set environment variables for the in-process functions, which then read their settings and
    build their runtimes afresh; both are put back after the test."""

    def apply(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        close_runtimes()  # a warm pool built from the settings before ends with them
        get_settings.cache_clear()

    yield apply
    close_runtimes()
    monkeypatch.undo()
    get_settings.cache_clear()
