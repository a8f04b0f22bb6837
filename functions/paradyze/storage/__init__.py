"""Character stores, loaded lazily: local folder (default), Google Cloud Storage, Supabase Storage."""

from __future__ import annotations

import functools
import importlib

from ..settings import get_settings
from .base import CharacterStore

_BACKENDS = {"local": ("local", "LocalStore"), "gcs": ("gcs", "GcsStore"), "supabase": ("supabase", "SupabaseStore")}


@functools.lru_cache(maxsize=1)
def get_store() -> CharacterStore:
    settings = get_settings()
    module_name, cls = _BACKENDS[settings.store]
    module = importlib.import_module(f"{__name__}.{module_name}")
    store: CharacterStore = getattr(module, cls)(settings)
    return store
