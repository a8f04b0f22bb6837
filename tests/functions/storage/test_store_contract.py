"""One contract for every character store: local, GCS (on its fake) and Supabase Storage (on its fake)."""

from __future__ import annotations

import stat
import threading
import uuid

import pytest

from helpers import FIXTURES
from paradyze.errors import Conflict, NotFound
from paradyze.storage.base import CharacterStore

SCHEMES = {"local": "file://", "gcs": "gs://", "supabase": "supabase://"}


def new_id() -> str:
    return str(uuid.uuid4())


def test_put_returns_a_uri_that_get_reads_back(store: CharacterStore) -> None:
    character = new_id()
    uri = store.put(character, 1, b'{"name": "Eliza"}')
    assert uri.startswith(SCHEMES[store.kind])
    assert uri.endswith(f"{character}/v1.character.json")
    assert store.get(uri) == b'{"name": "Eliza"}'


def test_real_character_files_round_trip_byte_for_byte(store: CharacterStore) -> None:
    files = sorted(FIXTURES.glob("*.character.json"))
    assert files, f"no fixture characters in {FIXTURES}"
    for number, path in enumerate(files, start=1):
        data = path.read_bytes()
        assert store.get(store.put(new_id(), number, data)) == data


def test_same_bytes_again_is_a_no_op_with_the_same_uri(store: CharacterStore) -> None:
    character = new_id()
    first = store.put(character, 1, b'{"v": 1}')
    assert store.put(character, 1, b'{"v": 1}') == first
    assert store.get(first) == b'{"v": 1}'


def test_different_bytes_for_an_existing_version_conflict_and_change_nothing(store: CharacterStore) -> None:
    character = new_id()
    uri = store.put(character, 1, b'{"v": "original"}')
    with pytest.raises(Conflict):
        store.put(character, 1, b'{"v": "replacement"}')
    assert store.get(uri) == b'{"v": "original"}'
    # The next version is a different name, so it is not a conflict.
    assert store.get(store.put(character, 2, b'{"v": "replacement"}')) == b'{"v": "replacement"}'


def test_racing_writers_of_one_version_leave_exactly_one_winner(store: CharacterStore) -> None:
    character = new_id()
    outcomes: dict[int, str | Exception] = {}

    def write(n: int) -> None:
        try:
            outcomes[n] = store.put(character, 1, f'{{"writer": {n}}}'.encode())
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
            outcomes[n] = exc

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [n for n, outcome in outcomes.items() if isinstance(outcome, str)]
    assert len(outcomes) == 4 and len(winners) == 1, outcomes
    assert all(isinstance(o, Conflict) for n, o in outcomes.items() if n not in winners), outcomes
    assert store.get(str(outcomes[winners[0]])) == f'{{"writer": {winners[0]}}}'.encode()


def test_local_path_is_a_read_only_file_with_exactly_the_bytes(store: CharacterStore) -> None:
    data = FIXTURES.joinpath("eliza-default.character.json").read_bytes()
    uri = store.put(new_id(), 1, data)
    path = store.local_path(uri)
    assert path.is_file() and path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, oct(path.stat().st_mode)
    assert store.local_path(uri) == path  # the second call finds the same file


def test_missing_version_is_not_found(store: CharacterStore) -> None:
    character = new_id()
    uri = store.put(character, 1, b"{}")
    missing = uri.replace("/v1.character.json", "/v9.character.json")
    with pytest.raises(NotFound):
        store.get(missing)
    with pytest.raises(NotFound):
        store.local_path(missing)


def test_delete_character_removes_every_version_and_nothing_else(store: CharacterStore) -> None:
    doomed, kept = new_id(), new_id()
    doomed_uris = [store.put(doomed, v, f'{{"v": {v}}}'.encode()) for v in range(1, 6)]
    kept_uri = store.put(kept, 1, b'{"kept": true}')
    store.local_path(doomed_uris[0])  # a cached copy must not outlive the delete either
    kept_path = store.local_path(kept_uri)

    store.delete_character(doomed)

    for uri in doomed_uris:
        with pytest.raises(NotFound):
            store.get(uri)
        with pytest.raises(NotFound):
            store.local_path(uri)
    assert store.get(kept_uri) == b'{"kept": true}'
    assert store.local_path(kept_uri) == kept_path and kept_path.read_bytes() == b'{"kept": true}'
    # A deleted character's id starts over cleanly.
    assert store.get(store.put(doomed, 1, b'{"again": true}')) == b'{"again": true}'


def test_delete_of_an_unknown_character_is_a_no_op(store: CharacterStore) -> None:
    kept_uri = store.put(new_id(), 1, b"{}")
    store.delete_character(new_id())
    assert store.get(kept_uri) == b"{}"
