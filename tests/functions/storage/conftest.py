"""Store fixtures: the local fakes of GCS and Supabase Storage, and a store of each kind on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paradyze.settings import Settings
from paradyze.storage.base import CharacterStore
from tests.fakes.gcs import FakeGcs
from tests.fakes.gcs_emulator import GcsEmulator
from tests.fakes.supabase_storage import FakeSupabaseStorage

GCS_BUCKET = "paradyze-test"
SERVICE_KEY = "sb-service-role-key-4f9c2e7d1a"  # distinctive, so a leak is easy to spot


@pytest.fixture
def gcs_bucket() -> str:
    return GCS_BUCKET


@pytest.fixture
def service_key() -> str:
    return SERVICE_KEY


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[FakeGcs]:
    with FakeGcs(buckets=(GCS_BUCKET,)) as fake:
        yield fake


@pytest.fixture(scope="module")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """fake-gcs-server: the GCS store is also checked against a real emulator, not only our fake."""
    with GcsEmulator(buckets=(GCS_BUCKET,)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def fake_supabase() -> Iterator[FakeSupabaseStorage]:
    with FakeSupabaseStorage(SERVICE_KEY) as fake:
        yield fake


def settings_for(home: Path, **values: Any) -> Settings:
    return Settings(PARADYZE_HOME=home, **values)


@pytest.fixture
def gcs_settings(tmp_path: Path, fake_gcs: FakeGcs) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values = {
            "PARADYZE_GCS_BUCKET": GCS_BUCKET,
            "PARADYZE_GCS_PREFIX": "characters",
            "PARADYZE_GCS_API_ENDPOINT": fake_gcs.endpoint,
            **overrides,
        }
        return settings_for(tmp_path / "home", **values)

    return make


@pytest.fixture
def supabase_settings(tmp_path: Path, fake_supabase: FakeSupabaseStorage) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values = {"SUPABASE_URL": fake_supabase.url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY, **overrides}
        return settings_for(tmp_path / "home", **values)

    return make


@pytest.fixture(params=["local", "gcs", "gcs-emulator", "supabase"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> CharacterStore:
    """One store of each kind; the remote ones on their fakes, each with its own state folder."""
    if request.param == "local":
        from paradyze.storage.local import LocalStore

        return LocalStore(settings_for(tmp_path / "home"))
    if request.param == "gcs":
        from paradyze.storage.gcs import GcsStore

        return GcsStore(request.getfixturevalue("gcs_settings")(), timeout=5)
    if request.param == "gcs-emulator":
        from paradyze.storage.gcs import GcsStore

        emulator = request.getfixturevalue("gcs_emulator")
        settings = settings_for(tmp_path / "home", PARADYZE_GCS_BUCKET=GCS_BUCKET, PARADYZE_GCS_PREFIX="characters",
                                PARADYZE_GCS_API_ENDPOINT=emulator.endpoint)
        return GcsStore(settings, timeout=5)
    from paradyze.storage.supabase import SupabaseStore

    return SupabaseStore(request.getfixturevalue("supabase_settings")(), timeout=5)
