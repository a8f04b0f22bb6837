"""Retention, on an injected clock: events go by age and by count per agent, oldest first in batches;
backups go by the policy with their archives; character versions stay."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import Functions, User, make_user
from paradyze import db, repository, retention
from paradyze.auth import SYSTEM
from paradyze.settings import get_settings
from tests.fakes.gcs import FakeGcs

NOW = datetime.now(UTC)


@pytest.fixture
def agent(database: None) -> Iterator[tuple[User, str]]:
    user = make_user()
    character_id = str(uuid.uuid4())
    with db.transaction(SYSTEM) as conn:
        repository.insert_character_with_id(conn, character_id, user.id, "kept")
        for n in (1, 2):
            repository.insert_version(conn, character_id=character_id, version=n, user_id=user.id,
                                      config={"name": "kept", "bio": [f"v{n}"]}, sha256="0" * 64,
                                      storage_uri="file:///x")
        row = repository.insert_agent(conn, user_id=user.id, character_id=character_id, name="kept",
                                      runtime="process", idle_timeout_minutes=60, auto_hibernate=True,
                                      idempotency_key=None, request_sha256=None, status="hibernated",
                                      desired_state="hibernated")
    yield user, row.id
    with db.transaction(SYSTEM) as conn:
        repository.delete_character(conn, character_id)


def _events(agent_id: str, user_id: str, ages: list[timedelta]) -> None:
    with db.transaction(SYSTEM) as conn:
        for age in ages:
            conn.execute("insert into public.agent_events (agent_id, user_id, actor, reason, at)"
                         " values (%s, %s, 'test', %s, %s)", (agent_id, user_id, f"{age.days}d", NOW - age))


def _reasons(functions: Functions, user: User, agent_id: str) -> list[str]:
    body = functions.get("agent_events", user.token, agent_id=agent_id, limit=200).get_json()
    return [e["reason"] for e in body["events"]]


def test_events_older_than_the_policy_go_first_in_batches(functions: Functions, agent: tuple[User, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    user, agent_id = agent
    monkeypatch.setattr(get_settings(), "event_keep_days", 90)
    _events(agent_id, user.id, [timedelta(days=d) for d in (120, 100, 100, 95, 91, 89, 88, 1)])
    done = retention.prune(SYSTEM, now=NOW, batch=2)
    assert done["events_by_age"] >= 5 and done["complete"]
    assert _reasons(functions, user, agent_id) == ["1d", "88d", "89d"]
    # Three days on, the 89- and 88-day-old events are past 90 days too.
    assert retention.prune(SYSTEM, now=NOW + timedelta(days=3), batch=2)["events_by_age"] >= 2
    assert _reasons(functions, user, agent_id) == ["1d"]
    # Character versions are history: never pruned.
    versions = functions.get("character_versions", user.token, agent_id=agent_id).get_json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]


def test_an_agent_keeps_only_its_newest_events_past_the_count(functions: Functions, agent: tuple[User, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    user, agent_id = agent
    other_user, other = make_user(), str(uuid.uuid4())  # a deleted agent's events: not counted with these
    monkeypatch.setattr(get_settings(), "event_keep_per_agent", 4)
    _events(agent_id, user.id, [timedelta(hours=h) for h in range(11)])
    _events(other, other_user.id, [timedelta(hours=h) for h in range(3)])
    done = retention.prune(SYSTEM, now=NOW, batch=3)
    # Seven of these; the sweep is platform-wide, so other agents' extra events (earlier tests') go too.
    assert done["events_by_count"] >= 7
    with db.transaction(SYSTEM) as conn:
        left = conn.execute("select at from public.agent_events where agent_id = %s order by at desc",
                            (agent_id,)).fetchall()
        assert conn.execute("select count(*) as n from public.agent_events where agent_id = %s",
                            (other,)).fetchone()["n"] == 3
        conn.execute("select set_config('paradyze.retention', 'on', true)")
        conn.execute("delete from public.agent_events where agent_id = %s", (other,))
    assert [r["at"] for r in left] == [NOW - timedelta(hours=h) for h in range(4)]
    assert retention.prune(SYSTEM, now=NOW, batch=3)["events_by_count"] == 0


def test_events_stay_append_only_outside_the_retention_sweep(agent: tuple[User, str]) -> None:
    user, agent_id = agent
    _events(agent_id, user.id, [timedelta(0)])
    with pytest.raises(Exception, match="append-only"), db.transaction(SYSTEM) as conn:
        conn.execute("delete from public.agent_events where agent_id = %s", (agent_id,))


def _backups(tmp_path: Path, ages_days: list[int]) -> dict[int, tuple[str, Path]]:
    made = {}
    with db.transaction(SYSTEM) as conn:
        for age in ages_days:
            archive = tmp_path / f"backup-{age}d.tar.gz"
            archive.write_bytes(b"archive")
            row = repository.insert_backup(conn, location=archive.as_uri(), sha256="0" * 64, size_bytes=7,
                                           characters=0, versions=0, agents=0, manifest={}, created_by="test")
            conn.execute("update public.backups set created_at = %s where id = %s",
                         (NOW - timedelta(days=age), row["id"]))
            made[age] = (str(row["id"]), archive)
    return made


def _existing() -> int:
    with db.transaction(SYSTEM) as conn:
        return int(conn.execute("select count(*) as n from public.backups").fetchone()["n"])


def test_backups_past_the_policy_go_with_their_archives(functions: Functions, admin_token: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    # The session's other backups are minutes old, newer than these: keep them and one of ours.
    monkeypatch.setattr(settings, "backup_keep", _existing() + 1)
    monkeypatch.setattr(settings, "backup_min_age_days", 7)
    made = _backups(tmp_path, [2, 5, 10, 20])
    done = retention.prune(SYSTEM, now=NOW)
    # 5 days old is past the count but younger than the minimum age: kept for now.
    assert sorted(done["backups"]) == sorted([made[10][0], made[20][0]])
    assert made[2][1].exists() and made[5][1].exists()
    assert not made[10][1].exists() and not made[20][1].exists()
    listed = {b["id"] for b in functions.get("list_backups", admin_token, limit=200).get_json()["backups"]}
    assert {made[2][0], made[5][0]} <= listed and not {made[10][0], made[20][0]} & listed
    assert retention.prune(SYSTEM, now=NOW + timedelta(days=3))["backups"] == [made[5][0]]
    assert made[2][1].exists() and not made[5][1].exists()
    with db.transaction(SYSTEM) as conn:
        conn.execute("delete from public.backups where id = %s", (made[2][0],))


def test_an_archive_in_a_bucket_goes_with_its_row_and_an_outage_keeps_both(
        functions: Functions, admin_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    with FakeGcs(buckets=("retained",)) as gcs:
        monkeypatch.setattr(settings, "backup_uri", "gs://retained/weekly")
        monkeypatch.setattr(settings, "gcs_api_endpoint", gcs.endpoint)
        monkeypatch.setattr(settings, "backup_keep", _existing())
        old = functions.post("backup_agents", admin_token).get_json()["backup"]
        with db.transaction(SYSTEM) as conn:
            conn.execute("update public.backups set created_at = %s where id = %s",
                         (NOW - timedelta(days=30), old["id"]))
        gcs.fail_next(403, times=1)  # refused: not retried
        assert retention.prune(SYSTEM, now=NOW)["backups"] == []
        assert len(gcs.names("retained")) == 1
        assert retention.prune(SYSTEM, now=NOW)["backups"] == [old["id"]]
        assert gcs.names("retained") == []
    listed = {b["id"] for b in functions.get("list_backups", admin_token, limit=200).get_json()["backups"]}
    assert old["id"] not in listed
