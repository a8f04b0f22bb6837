"""Settings are checked once, when the functions start: one error names every variable to set or fix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import functions_framework
import pytest

from helpers import SOURCE
from paradyze import settings as settings_module
from paradyze.settings import ConfigurationError, Settings


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """An environment a test sets, read afresh by get_settings, and put back after."""
    monkeypatch.setenv("PARADYZE_HOME", str(tmp_path))
    settings_module.get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    settings_module.get_settings.cache_clear()


@pytest.mark.parametrize(("env", "named"), [
    ({"PARADYZE_STORE": "gcs"}, ["PARADYZE_GCS_BUCKET"]),
    ({"PARADYZE_STORE": "supabase"}, ["SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"]),
    ({"PARADYZE_STORE": "supabase", "SUPABASE_URL": "https://x.supabase.co"}, ["SUPABASE_SERVICE_ROLE_KEY"]),
    ({"PARADYZE_RUNTIME": "cloud_run"}, ["GOOGLE_CLOUD_PROJECT", "PARADYZE_CLOUD_RUN_INVOKER"]),
    ({"PARADYZE_RUNTIME": "cloud_run", "GOOGLE_CLOUD_PROJECT": "p", "PARADYZE_CLOUD_RUN_PUBLIC": "true"}, []),
    ({"PARADYZE_SCHEDULER": "cloud"}, ["GOOGLE_CLOUD_PROJECT", "PARADYZE_SCHEDULER_SERVICE_ACCOUNT"]),
    ({"PARADYZE_BACKUP_URI": "gs:/bucket/backups"}, ["PARADYZE_BACKUP_URI"]),
    ({"PARADYZE_BACKUP_URI": "gs://"}, ["PARADYZE_BACKUP_URI"]),
    ({"PARADYZE_BACKUP_URI": "gs://paradyze-backups/weekly"}, []),
    ({"PARADYZE_CORS_ORIGINS": "https://app.example/path"}, ["PARADYZE_CORS_ORIGINS"]),
    ({"PARADYZE_TIMEZONE": "Mars/Olympus"}, ["PARADYZE_TIMEZONE"]),
    ({"PARADYZE_DB_POOL_MAX": "many"}, ["PARADYZE_DB_POOL_MAX"]),
])
def test_each_missing_or_malformed_setting_is_named(environment: pytest.MonkeyPatch, env: dict[str, str],
                                                    named: list[str]) -> None:
    for key, value in env.items():
        environment.setenv(key, value)
    if not named:
        assert settings_module.get_settings()
        return
    with pytest.raises(ConfigurationError) as info:
        settings_module.get_settings()
    message = str(info.value)
    lines = message.splitlines()[1:]
    assert len(lines) == len(named), message
    for variable, line in zip(named, lines, strict=True):
        assert variable in line, message


def test_everything_wrong_at_once_is_one_error_naming_each(environment: pytest.MonkeyPatch) -> None:
    for key, value in {"PARADYZE_STORE": "gcs", "PARADYZE_SCHEDULER": "cloud", "PARADYZE_RUNTIME": "cloud_run",
                       "PARADYZE_BACKUP_URI": "s3://elsewhere", "DATABASE_URL": "postgres://u:hunter2@db/x"}.items():
        environment.setenv(key, value)
    with pytest.raises(ConfigurationError) as info:
        settings_module.get_settings()
    message = str(info.value)
    for variable in ("PARADYZE_GCS_BUCKET", "GOOGLE_CLOUD_PROJECT", "PARADYZE_SCHEDULER_SERVICE_ACCOUNT",
                     "PARADYZE_CLOUD_RUN_INVOKER", "PARADYZE_BACKUP_URI"):
        assert variable in message
    assert message.count("GOOGLE_CLOUD_PROJECT is required") == 2  # once for each backend that needs it
    assert "hunter2" not in message


def test_the_functions_refuse_to_start_without_what_their_backend_needs(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("PARADYZE_STORE", "supabase")
    with pytest.raises(ConfigurationError, match="SUPABASE_URL"):
        functions_framework.create_app("list_agents", SOURCE)


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="PARADYZE_GCS_BUCKET"):
        Settings(PARADYZE_STORE="gcs")


def test_only_settings_reads_the_environment() -> None:
    package = Path(settings_module.__file__).parent
    readers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                     if p.name != "settings.py" and ("os.environ" in p.read_text() or "os.getenv" in p.read_text()))
    assert readers == [], f"read the environment through Settings instead: {readers}"
