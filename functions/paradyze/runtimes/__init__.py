"""Runtime backends, loaded lazily so that an SDK is imported only when its backend is chosen."""

from __future__ import annotations

import functools
import importlib

from ..errors import ValidationFailed
from .base import AgentRuntime

_BACKENDS = {
    "process": "ProcessRuntime",
    "docker": "DockerRuntime",
    "cloud_run": "CloudRunRuntime",
}


@functools.cache
def get_runtime(kind: str) -> AgentRuntime:
    """The backend named kind; raises ValidationFailed for an unknown one."""
    if kind not in _BACKENDS:
        raise ValidationFailed(
            f"unknown runtime {kind!r}",
            details=[{"loc": ["runtime"], "msg": f"must be one of {sorted(_BACKENDS)}"}],
        )
    from ..settings import get_settings

    module = importlib.import_module(f"{__name__}.{kind}")
    backend: AgentRuntime = getattr(module, _BACKENDS[kind])(get_settings())
    return backend
