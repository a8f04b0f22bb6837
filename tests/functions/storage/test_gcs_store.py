"""GcsStore beyond the contract: settings, what it sends, and how GCS failures reach the caller."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import free_port
from paradyze import settings as settings_module
from paradyze import storage
from paradyze.errors import NotFound, Unavailable
from paradyze.settings import Settings
from paradyze.storage.gcs import GcsStore
from tests.fakes.gcs import FakeGcs


def test_gcs_without_a_bucket_names_the_missing_variable(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="PARADYZE_GCS_BUCKET"):
        GcsStore(Settings(PARADYZE_HOME=tmp_path, PARADYZE_GCS_BUCKET=None))


@pytest.fixture
def chosen_by_env(
    gcs_bucket: str, monkeypatch: pytest.MonkeyPatch, fake_gcs: FakeGcs, tmp_path: Path
) -> Iterator[None]:
    monkeypatch.setenv("PARADYZE_HOME", str(tmp_path))
    monkeypatch.setenv("PARADYZE_STORE", "gcs")
    monkeypatch.setenv("PARADYZE_GCS_BUCKET", gcs_bucket)
    monkeypatch.setenv("PARADYZE_GCS_API_ENDPOINT", fake_gcs.endpoint)
    settings_module.get_settings.cache_clear()
    storage.get_store.cache_clear()
    yield
    settings_module.get_settings.cache_clear()
    storage.get_store.cache_clear()


def test_paradyze_store_gcs_selects_the_gcs_store(gcs_bucket: str, chosen_by_env: None, fake_gcs: FakeGcs) -> None:
    store = storage.get_store()
    assert isinstance(store, GcsStore)
    uri = store.put("env-chosen", 1, b"{}")
    assert uri == f"gs://{gcs_bucket}/env-chosen/v1.character.json"  # no prefix configured
    assert "env-chosen/v1.character.json" in fake_gcs.names(gcs_bucket)


def test_objects_are_json_under_the_prefix_and_created_only_if_absent(
    gcs_bucket: str, gcs_settings: Callable[..., Settings], fake_gcs: FakeGcs
) -> None:
    store = GcsStore(gcs_settings(PARADYZE_GCS_PREFIX="/tenant-a/"), timeout=5)
    character = str(uuid.uuid4())
    uri = store.put(character, 3, b'{"name": "Sam"}')
    name = f"tenant-a/{character}/v3.character.json"
    assert uri == f"gs://{gcs_bucket}/{name}"
    assert fake_gcs.buckets[gcs_bucket][name].content_type == "application/json"
    uploads = [c for c in fake_gcs.calls if c.method == "POST" and c.path.startswith("/upload/")]
    assert uploads and all(c.args.get("ifGenerationMatch") == "0" for c in uploads)


def test_a_transient_503_is_retried(gcs_settings: Callable[..., Settings], fake_gcs: FakeGcs) -> None:
    store = GcsStore(gcs_settings(), timeout=10)
    character = str(uuid.uuid4())
    fake_gcs.fail_next(503)
    uri = store.put(character, 1, b'{"retried": true}')
    assert store.get(uri) == b'{"retried": true}'


def test_a_lasting_failure_is_store_unavailable(gcs_settings: Callable[..., Settings], fake_gcs: FakeGcs) -> None:
    store = GcsStore(gcs_settings(), timeout=5)
    uri = store.put(str(uuid.uuid4()), 1, b"{}")
    fake_gcs.fail_next(403)  # not retried: a permission problem will not go away by itself
    with pytest.raises(Unavailable) as caught:
        store.get(uri)
    assert caught.value.code == "store_unavailable"
    assert "403" in caught.value.message


def test_endpoint_down_is_unavailable_within_the_timeout(
    gcs_bucket: str, gcs_settings: Callable[..., Settings]
) -> None:
    store = GcsStore(gcs_settings(PARADYZE_GCS_API_ENDPOINT=f"http://127.0.0.1:{free_port()}"), timeout=1)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="does not answer"):
        store.put("anyone", 1, b"{}")
    with pytest.raises(Unavailable, match="does not answer"):
        store.get(f"gs://{gcs_bucket}/characters/anyone/v1.character.json")
    with pytest.raises(Unavailable, match="does not answer"):
        store.delete_character("anyone")
    print(f"three calls against a closed port gave up after {time.monotonic() - started:.1f} s")


def test_a_missing_bucket_is_unavailable_not_a_missing_file(gcs_settings: Callable[..., Settings]) -> None:
    store = GcsStore(gcs_settings(PARADYZE_GCS_BUCKET="no-such-bucket"), timeout=5)
    with pytest.raises(Unavailable, match="bucket not found"):
        store.put("anyone", 1, b"{}")
    with pytest.raises(Unavailable, match="bucket not found"):
        store.get("gs://no-such-bucket/anyone/v1.character.json")


def test_uris_of_other_stores_are_not_found(gcs_bucket: str, gcs_settings: Callable[..., Settings]) -> None:
    store = GcsStore(gcs_settings(), timeout=5)
    for uri in (
        "file:///tmp/x/v1.character.json",
        "supabase://character-files/x/v1.character.json",
        f"gs://{gcs_bucket}/../etc/passwd",
    ):
        with pytest.raises(NotFound):
            store.local_path(uri)


def test_character_ids_that_would_widen_the_delete_are_refused(gcs_settings: Callable[..., Settings]) -> None:
    store = GcsStore(gcs_settings(), timeout=5)
    for bad in ("", "a/b", ".."):
        with pytest.raises(ValueError):
            store.delete_character(bad)
