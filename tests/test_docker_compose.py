"""docker-compose.yml as the compose CLI itself reads it: services, health checks, start order."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read `compose config` output")

REPO = Path(__file__).resolve().parents[1]
STATE_DIR = "/var/lib/paradyze"


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` exists; run local_emulator/docker_engine.sh")
    # Only the file's own defaults: no overrides, and no provider key from this shell in the output.
    providers = ("OPENROUTER_", "OPENAI_", "ANTHROPIC_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARADYZE_", *providers))}
    result = subprocess.run(
        [*command, "-f", str(REPO / "docker-compose.yml"), "config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{' '.join(command)} config failed:\n{result.stderr}"
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def binds(service: dict[str, Any]) -> set[tuple[str, str, bool]]:
    """(source, target, read_only) of every volume, whichever syntax the CLI prints."""
    out = set()
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            parts = volume.split(":")
            out.add((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
        else:
            out.add((volume["source"], volume["target"], bool(volume.get("read_only"))))
    return out


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_the_stack_has_its_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "functions", "console", "agent-image", "list-agents",
                                        "health-check"}


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name in ("postgres", "functions", "console", "list-agents", "health-check"):
        check = compose["services"][name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name


def test_services_start_only_once_what_they_need_is_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    functions = services["functions"]["depends_on"]
    assert functions["postgres"]["condition"] == "service_healthy"
    assert functions["agent-image"]["condition"] == "service_completed_successfully"
    assert services["console"]["depends_on"]["functions"]["condition"] == "service_healthy"


def test_functions_run_the_docker_runtime_against_postgres(compose: dict[str, Any]) -> None:
    functions = compose["services"]["functions"]
    env = env_of(functions)
    assert env["PARADYZE_RUNTIME"] == "docker"
    assert env["DATABASE_URL"].startswith("postgresql://paradyze:")
    assert "@postgres:" in env["DATABASE_URL"]
    assert env["PARADYZE_DOCKER_IMAGE"] == compose["services"]["agent-image"]["image"]
    command = " ".join(functions["command"])
    assert "exec python -m local_emulator --no-console" in command and "--port 8080" in command
    # The console's admin token is minted at each start (tokens are short-lived), never baked in.
    assert "python -m local_emulator.admin_token --write" in command
    mounts = binds(functions)
    assert ("/var/run/docker.sock", "/var/run/docker.sock", False) in mounts
    # The engine resolves bind-mount sources on the host: the state folder must sit at the same path.
    assert (STATE_DIR, STATE_DIR, False) in mounts
    assert env["PARADYZE_HOME"] == STATE_DIR


def test_console_talks_to_the_functions_service(compose: dict[str, Any]) -> None:
    console = compose["services"]["console"]
    assert env_of(console)["PARADYZE_API_URL"] == "http://functions:8080"
    assert "console/app.py" in console["command"] and "8501" in console["command"]
    assert (STATE_DIR, STATE_DIR, True) in binds(console)


def test_builds_use_dockerfiles_that_exist(compose: dict[str, Any]) -> None:
    built = {name: s["build"] for name, s in compose["services"].items() if "build" in s}
    assert set(built) == {"postgres", "functions", "console", "list-agents", "health-check"}
    for name, build in built.items():
        context = Path(build["context"])
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        assert build["args"]["BASE_IMAGE"] == "paradyze/base:bookworm", name


def test_function_targets_run_from_the_platform_image_as_on_cloud_run(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, target in (("list-agents", "list_agents"), ("health-check", "health_check")):
        service = services[name]
        assert service["image"] == "paradyze/functions:latest"
        assert service["build"]["dockerfile"] == "deploy/functions.Dockerfile"
        assert env_of(service)["FUNCTION_TARGET"] == target
        assert service["depends_on"]["functions"]["condition"] == "service_healthy"
    assert services["console"]["image"] == "paradyze/console:latest"


def test_agents_run_the_elizaos_image_that_docker_images_sh_builds(compose: dict[str, Any]) -> None:
    # Its build context is the pinned install, outside the repository: docker_images.sh builds it.
    services = compose["services"]
    assert services["agent-image"]["image"] == "paradyze/elizaos:1.7.2"
    assert "build" not in services["agent-image"]
    # The functions check characters' plugins against the same install the image holds.
    assert ("/opt/paradyze/elizaos-1.7.2", "/opt/paradyze/elizaos-1.7.2", True) in binds(services["functions"])


def test_nothing_is_published_beyond_this_host(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port}"
