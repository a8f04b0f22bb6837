"""SupabaseStore beyond the contract: settings, what it sends, failures, and the service key kept secret."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import free_port
from paradyze import settings as settings_module
from paradyze import storage
from paradyze.errors import NotFound, ParadyzeError, Unavailable
from paradyze.settings import Settings
from paradyze.storage import supabase as supabase_module
from paradyze.storage.supabase import SupabaseStore
from tests.fakes.supabase_storage import FakeSupabaseStorage


@pytest.mark.parametrize(
    ("url", "key", "named"),
    [
        (None, "k", ["SUPABASE_URL"]),
        ("http://127.0.0.1:9", None, ["SUPABASE_SERVICE_ROLE_KEY"]),
        (None, None, ["SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"]),
    ],
)
def test_supabase_without_its_settings_names_the_missing_variables(
    tmp_path: Path, url: str | None, key: str | None, named: list[str]
) -> None:
    settings = Settings(PARADYZE_HOME=tmp_path, SUPABASE_URL=url, SUPABASE_SERVICE_ROLE_KEY=key)
    with pytest.raises(RuntimeError) as caught:
        SupabaseStore(settings)
    assert all(name in str(caught.value) for name in named), caught.value
    if key:
        assert key not in str(caught.value).replace("SUPABASE", "")


@pytest.fixture
def chosen_by_env(
    monkeypatch: pytest.MonkeyPatch, fake_supabase: FakeSupabaseStorage, service_key: str, tmp_path: Path
) -> Iterator[None]:
    monkeypatch.setenv("PARADYZE_HOME", str(tmp_path))
    monkeypatch.setenv("PARADYZE_STORE", "supabase")
    monkeypatch.setenv("SUPABASE_URL", fake_supabase.url)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", service_key)
    settings_module.get_settings.cache_clear()
    storage.get_store.cache_clear()
    yield
    settings_module.get_settings.cache_clear()
    storage.get_store.cache_clear()


def test_paradyze_store_supabase_selects_the_supabase_store(
    chosen_by_env: None, fake_supabase: FakeSupabaseStorage
) -> None:
    store = storage.get_store()
    assert isinstance(store, SupabaseStore)
    assert store.put("env-chosen", 1, b"{}") == "supabase://character-files/env-chosen/v1.character.json"
    assert "env-chosen/v1.character.json" in fake_supabase.names()


def test_uploads_are_json_never_upserted_and_authenticated(
    supabase_settings: Callable[..., Settings], fake_supabase: FakeSupabaseStorage, service_key: str
) -> None:
    store = SupabaseStore(supabase_settings(), timeout=5)
    character = str(uuid.uuid4())
    store.put(character, 1, b'{"name": "ChatDKG"}')
    stored = fake_supabase.buckets["character-files"][f"{character}/v1.character.json"]
    assert stored.mimetype == "application/json"
    uploads = [c for c in fake_supabase.calls if c.method == "POST" and character in c.path]
    assert uploads and all(c.headers.get("X-Upsert") == "false" for c in uploads)
    assert all(c.headers.get("Apikey") == service_key for c in uploads)


def test_delete_pages_through_more_than_one_listing(
    supabase_settings: Callable[..., Settings], fake_supabase: FakeSupabaseStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supabase_module, "_PAGE", 3)
    store = SupabaseStore(supabase_settings(), timeout=5)
    character = str(uuid.uuid4())
    for version in range(1, 9):
        store.put(character, version, b"{}")
    store.delete_character(character)
    assert not [n for n in fake_supabase.names() if n.startswith(character)]


def test_a_wrong_key_is_unavailable_and_the_key_never_shows(
    supabase_settings: Callable[..., Settings],
    fake_supabase: FakeSupabaseStorage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "sb-wrong-key-0b3d5e8a77"
    store = SupabaseStore(supabase_settings(SUPABASE_SERVICE_ROLE_KEY=wrong), timeout=5)
    fake_supabase.echo_auth_in_errors = True  # a server that repeats the key back must not make us leak it
    caplog.set_level(logging.DEBUG)
    try:
        errors: list[ParadyzeError] = []
        for call in (
            lambda: store.put("c", 1, b"{}"),
            lambda: store.get("supabase://character-files/c/v1.character.json"),
        ):
            with pytest.raises(Unavailable) as caught:
                call()
            errors.append(caught.value)
    finally:
        fake_supabase.echo_auth_in_errors = False
    for error in errors:
        assert error.code == "store_unavailable"
        assert wrong not in f"{error} {error.message!r} {error.details!r}"
    assert "invalid signature" in caplog.text  # the server's reason reached the log...
    assert wrong not in caplog.text  # ...without the key it echoed
    assert wrong not in repr(store)


def test_server_faults_are_unavailable_and_keep_the_key_out(
    supabase_settings: Callable[..., Settings],
    fake_supabase: FakeSupabaseStorage,
    service_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SupabaseStore(supabase_settings(), timeout=5)
    uri = store.put(str(uuid.uuid4()), 1, b"{}")
    fake_supabase.echo_auth_in_errors = True
    fake_supabase.fail_next(500)
    try:
        with pytest.raises(Unavailable) as caught:
            store.get(uri)
    finally:
        fake_supabase.echo_auth_in_errors = False
    assert "500" in caught.value.message
    assert service_key not in caught.value.message and service_key not in caplog.text
    assert store.get(uri) == b"{}"  # the next request is answered again


def test_endpoint_down_is_unavailable(supabase_settings: Callable[..., Settings], service_key: str) -> None:
    store = SupabaseStore(supabase_settings(SUPABASE_URL=f"http://127.0.0.1:{free_port()}"), timeout=2)
    for call in (
        lambda: store.put("c", 1, b"{}"),
        lambda: store.get("supabase://character-files/c/v1.character.json"),
        lambda: store.delete_character("c"),
    ):
        with pytest.raises(Unavailable, match="does not answer") as caught:
            call()
        assert service_key not in str(caught.value)


def test_a_missing_bucket_is_unavailable_not_a_missing_file(supabase_settings: Callable[..., Settings]) -> None:
    store = SupabaseStore(supabase_settings(PARADYZE_SUPABASE_BUCKET="no-such-bucket"), timeout=5)
    with pytest.raises(Unavailable):
        store.put("c", 1, b"{}")
    with pytest.raises(Unavailable):
        store.get("supabase://no-such-bucket/c/v1.character.json")


def test_uris_of_other_stores_or_buckets_are_not_found(supabase_settings: Callable[..., Settings]) -> None:
    store = SupabaseStore(supabase_settings(), timeout=5)
    for uri in ("gs://character-files/c/v1.character.json", "supabase://other-bucket/c/v1.character.json"):
        with pytest.raises(NotFound):
            store.get(uri)
