"""deploy/environments.toml: dev, staging and prod from one file; `[defaults]` apply to each environment."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .targets import function_targets

CONFIG = Path(__file__).with_name("environments.toml")
# Values may name these; they are filled in per environment ({function} is left for the services).
PLACEHOLDERS = ("env", "project", "project_number", "region", "prefix")


class SecretRef(BaseModel):
    """An environment variable of every function read from a Secret Manager secret."""

    model_config = ConfigDict(extra="forbid")
    secret: str = Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")
    generate: bool = False  # the deploy creates a random value when the secret has none


class Environment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    project: str
    project_number: str = Field(pattern=r"^\d+$")
    region: str = "us-central1"
    prefix: str = Field(default="paradyze", pattern=r"^[a-z][a-z0-9-]{0,20}$")
    image_repository: str
    runtime_service_account: str
    scheduler_service_account: str
    console_service_account: str
    memory: str = "512Mi"
    cpu: str = "1"
    min_instances: int = Field(default=0, ge=0)
    max_instances: int = Field(default=10, ge=1)
    # A function service is one gunicorn (functions-framework) per instance, with one worker per whole
    # vCPU, each of `threads` threads. Cloud Run sends an instance at most `concurrency` requests at
    # once, by default workers x threads, so that more start another instance instead of queueing.
    threads: int = Field(default=8, ge=1, le=64)
    concurrency: int | None = Field(default=None, ge=1)
    # The function targets deployed as services (default: every one in functions/main.py).
    targets: list[str] = Field(default_factory=function_targets)
    console: bool = True
    health_timeout: float = 300.0
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)

    @property
    def workers(self) -> int:
        """functions-framework's WORKERS: one per whole vCPU (cpu "2" is 2; "1" or "500m" is 1)."""
        return max(1, int(self.cpu)) if self.cpu.isdigit() else 1

    @property
    def request_concurrency(self) -> int:
        return self.concurrency or self.workers * self.threads

    def service_id(self, target: str) -> str:
        return f"{self.prefix}-{target.replace('_', '-')}"

    @property
    def console_id(self) -> str:
        return f"{self.prefix}-console"

    @property
    def function_url_template(self) -> str:
        """Every function's URL, `{function}` standing for its service's name (Cloud Run's deterministic URLs)."""
        return f"https://{self.prefix}-{{function}}-{self.project_number}.{self.region}.run.app"

    @property
    def audience(self) -> str:
        """The OIDC audience every function service accepts (its custom audience): one for all jobs."""
        return f"{self.prefix}-{self.name}"

    @property
    def location(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def image(self, name: str, tag: str) -> str:
        return f"{self.image_repository}/{name}:{tag}"


def load(name: str, path: Path = CONFIG) -> Environment:
    """The environment `name` from the file, defaults merged in and placeholders filled."""
    data = tomllib.loads(path.read_text())
    environments = data.get("environments", {})
    if name not in environments:
        raise KeyError(f"{path.name} has no environment {name!r} (it has: {', '.join(sorted(environments))})")
    merged = _merge(data.get("defaults", {}), environments[name])
    merged["name"] = name
    values = {key: str(merged.get(key, "")) for key in PLACEHOLDERS if key != "env"}
    values.update(env=name, region=str(merged.get("region", "us-central1")),
                  prefix=str(merged.get("prefix", "paradyze")))
    return Environment.model_validate(_fill(merged, values))


def environments(path: Path = CONFIG) -> list[str]:
    return sorted(tomllib.loads(path.read_text()).get("environments", {}))


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in values.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value
