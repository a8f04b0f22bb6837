"""Backups to Google Cloud Storage: archive uploaded, listed and restored from there, through our fake of
its JSON API and through fake-gcs-server, a real GCS emulator; and a bucket refusing or missing."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator

import pytest

from helpers import Functions, User, fixture_characters
from paradyze.characters import sha256_hex
from paradyze.settings import get_settings
from tests.fakes.gcs import FakeGcs
from tests.fakes.gcs_emulator import GcsEmulator

BUCKET = "paradyze-backups"


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGcs]:
    with FakeGcs(buckets=(BUCKET,)) as fake:
        _back_up_to(fake.endpoint, monkeypatch)
        yield fake


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsEmulator]:
    with GcsEmulator(buckets=(BUCKET,)) as gcs:
        _back_up_to(gcs.endpoint, monkeypatch)
        yield gcs


def _back_up_to(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Backups go to BUCKET, through the GCS JSON API at endpoint."""
    settings = get_settings()
    monkeypatch.setattr(settings, "backup_uri", f"gs://{BUCKET}/weekly")
    monkeypatch.setattr(settings, "gcs_api_endpoint", endpoint)


def _object(store: FakeGcs | GcsEmulator, name: str) -> bytes:
    if isinstance(store, FakeGcs):
        return store.buckets[BUCKET][name].data
    return bytes(store.client().bucket(BUCKET).blob(name).download_as_bytes())


@pytest.mark.parametrize("backend", ["gcs", "emulator"])
def test_backup_goes_to_the_bucket_and_restores_from_it(
        functions: Functions, alice: User, admin_token: str, cleanup_agents: list[str], backend: str,
        request: pytest.FixtureRequest) -> None:
    store: FakeGcs | GcsEmulator = request.getfixturevalue(backend)
    resp = functions.post("create_agent", alice.token, {"character": fixture_characters()["eliza-default"]})
    assert resp.status_code == 201, resp.get_json()
    agent = resp.get_json()["agent"]
    backup = functions.post("backup_agents", admin_token).get_json()["backup"]
    assert backup["location"].startswith(f"gs://{BUCKET}/weekly/paradyze-backup-")
    [name] = store.names(BUCKET)
    data = _object(store, name)
    assert sha256_hex(data) == backup["sha256"] and len(data) == backup["size_bytes"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["counts"]["versions"] == backup["versions"]
    assert not list(get_settings().backups_dir.glob(f"{name.rsplit('/', 1)[-1]}")), "no local copy is kept"

    functions.post("delete_agent", alice.token, {"agent_id": agent["id"]})
    restored = functions.post("restore_backup", admin_token, {"backup_id": backup["id"]})
    assert restored.status_code == 200, restored.get_json()
    assert restored.get_json()["restore"]["agents"] >= 1
    cleanup_agents.append(agent["id"])
    assert functions.get("get_agent", alice.token, agent_id=agent["id"]).get_json()["agent"]["status"] == "hibernated"


def test_bucket_refusing_is_503_and_records_no_backup(
        functions: Functions, admin_token: str, gcs: FakeGcs) -> None:
    before = len(functions.get("list_backups", admin_token).get_json()["backups"])
    gcs.fail_next(403, times=5)  # refused credentials: not retried, so the answer comes at once
    resp = functions.post("backup_agents", admin_token)
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit()
    assert len(functions.get("list_backups", admin_token).get_json()["backups"]) == before


def test_a_missing_bucket_is_a_503_and_records_no_backup(
        functions: Functions, admin_token: str, emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "backup_uri", "gs://no-such-bucket/weekly")
    before = len(functions.get("list_backups", admin_token).get_json()["backups"])
    resp = functions.post("backup_agents", admin_token)
    assert resp.status_code == 503 and resp.headers["Retry-After"].isdigit(), resp.get_json()
    assert len(functions.get("list_backups", admin_token).get_json()["backups"]) == before
