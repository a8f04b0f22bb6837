"""Runtime backends, loaded lazily so that an SDK is imported only when its backend is chosen."""

from __future__ import annotations

import importlib
import threading

from ..errors import ValidationFailed
from .base import AgentRuntime

_BACKENDS = {
    "process": "ProcessRuntime",
    "docker": "DockerRuntime",
    "cloud_run": "CloudRunRuntime",
}
_built: dict[str, AgentRuntime] = {}
_building = threading.Lock()


def get_runtime(kind: str) -> AgentRuntime:
    """The backend named kind, built once from the settings; raises ValidationFailed for an unknown one."""
    if kind in _built:
        return _built[kind]
    if kind not in _BACKENDS:
        raise ValidationFailed(
            f"unknown runtime {kind!r}",
            details=[{"loc": ["runtime"], "msg": f"must be one of {sorted(_BACKENDS)}"}],
        )
    from ..settings import get_settings

    with _building:
        if kind not in _built:
            module = importlib.import_module(f"{__name__}.{kind}")
            _built[kind] = getattr(module, _BACKENDS[kind])(get_settings())
        return _built[kind]


def close_runtimes() -> None:
    """Close the backends built so far (a warm pool's servers end) and forget them, so the next
    get_runtime builds from the settings as they are then."""
    with _building:
        built = list(_built.values())
        _built.clear()
    for backend in built:
        backend.close()
