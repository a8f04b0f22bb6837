"""The deploy tool's plan, apply and automatic rollback against local fakes of Cloud Run, Scheduler and Secret Manager.

The fake Cloud Run really runs each revision of the platform image as functions-framework with its
FUNCTION_TARGET, against a Postgres database of its own, with the secrets the fake Secret Manager
holds: health_check on a new revision is a real request to the real function.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import psycopg
import pytest
import requests
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from deploy import config
from deploy.apply import apply
from deploy.desired import Release
from deploy.gcp import Endpoints, make_clients
from deploy.plan import make_plan
from deploy.targets import newest_migration
from helpers import REPO, fresh_database, mint_admin_token
from paradyze import db
from paradyze.settings import get_settings
from tests.fakes.cloud_run import FakeCloudRun, Runner
from tests.fakes.cloud_scheduler import FakeCloudScheduler
from tests.fakes.secret_manager import FakeSecretManager

PROJECT = "paradyze-test"
IMAGES = "registry.test/paradyze"
BEHIND = "29991231235959"  # a migration no database has: a release that needs it must not serve


def _function(env: dict[str, str]) -> list[str]:
    return [sys.executable, "-m", "functions_framework", "--source", str(REPO / "functions" / "main.py"),
            "--target", env["FUNCTION_TARGET"], "--host", "127.0.0.1", "--port", env["PORT"]]


@pytest.fixture(scope="module")
def database_url(database: None) -> Iterator[str]:
    url = fresh_database(db.database_url(get_settings()))
    with ConnectionPool(url, kwargs={"autocommit": True, "row_factory": dict_row}, min_size=1, max_size=1) as pool:
        db.migrate(pool)  # what `supabase db push` does in the deploy
    yield url
    with psycopg.connect(db.database_url(get_settings()), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{psycopg.conninfo.conninfo_to_dict(url)["dbname"]}" with (force)')


@pytest.fixture(scope="module")
def cloud() -> Iterator[dict[str, Any]]:
    with FakeSecretManager() as sm, FakeCloudScheduler() as scheduler, FakeCloudRun(
            runners={f"{IMAGES}/functions": Runner(_function)}, grace=2.0, startup_timeout=120.0) as run:
        run.secrets = sm.values()  # type: ignore[assignment]
        endpoints = Endpoints.model_validate({"PARADYZE_DEPLOY_RUN_ENDPOINT": run.endpoint,
                                              "PARADYZE_DEPLOY_SCHEDULER_ENDPOINT": scheduler.endpoint,
                                              "PARADYZE_DEPLOY_SECRETS_ENDPOINT": sm.endpoint})
        yield {"run": run, "scheduler": scheduler, "sm": sm, "clients": make_clients(endpoints)}


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> config.Environment:
    folder = tmp_path_factory.mktemp("deploy-config")
    text = (REPO / "deploy" / "environments.toml").read_text() + f"""
[environments.test]
project = "{PROJECT}"
project_number = "123456789"
image_repository = "{IMAGES}"
targets = ["health_check", "list_agents"]
console = false

[environments.test.env]
PARADYZE_HOME = "{folder / 'home'}"
PARADYZE_AGENT = "reference"
PARADYZE_RUNTIME = "process"
PARADYZE_STORE = "local"
PARADYZE_TELEMETRY = "off"
"""
    path = folder / "environments.toml"
    path.write_text(text)
    assert config.environments(path) == ["dev", "prod", "staging", "test"]
    return config.load("test", path)


GOOD = Release(tag="r1", schema_version=newest_migration())


def _mutations(cloud: dict[str, Any]) -> int:
    run = [c for c in cloud["run"].calls if c.method in ("POST", "PATCH", "DELETE")]
    return len(run) + len(cloud["scheduler"].mutations()) + len(cloud["sm"].mutations())


def _serving(cloud: dict[str, Any], service_id: str) -> dict[str, Any]:
    [status] = cloud["run"].service(service_id)["trafficStatuses"]
    return dict(status)


def _health(cloud: dict[str, Any], env: config.Environment, database_url: str, jwt: str) -> requests.Response:
    token = mint_admin_token({"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "SUPABASE_JWT_SECRET": jwt,
                              "PARADYZE_HOME": env.env["PARADYZE_HOME"]})
    uri = cloud["run"].service(env.service_id("health_check"))["uri"]
    return requests.get(uri, params={"repair": "false"}, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _add_secret(cloud: dict[str, Any], secret_id: str, value: str) -> None:
    """What the newcomer does once per environment with gcloud: a secret and its value."""
    client = cloud["clients"].secrets
    client.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": secret_id,
                                  "secret": {"replication": {"automatic": {}}}})
    client.add_secret_version(request={"parent": f"projects/{PROJECT}/secrets/{secret_id}",
                                       "payload": {"data": value.encode(),
                                                   "data_crc32c": google_crc32c.value(value.encode())}})


JWT = secrets.token_urlsafe(32)


def test_a_first_plan_lists_everything_and_blocks_until_the_database_secrets_have_values(
        cloud: dict[str, Any], environment: config.Environment) -> None:
    plan = make_plan(environment, GOOD, cloud["clients"])
    kinds = {(c.kind, c.name, c.action) for c in plan.changes}
    assert ("service", "paradyze-health-check", "create") in kinds
    assert ("service", "paradyze-list-agents", "create") in kinds
    assert ("secret", "paradyze-secrets-key", "add-version") in kinds  # generated: nobody has to pick it
    assert {c.name for c in plan.of("job")} == {"paradyze-test-hibernate-idle", "paradyze-test-backup",
                                                 "paradyze-test-health"}
    assert len(plan.blocked) == 2
    assert any("paradyze-database-url" in b and "gcloud secrets versions add" in b for b in plan.blocked)
    with pytest.raises(RuntimeError, match="blocked"):
        apply(plan, cloud["clients"])
    assert _mutations(cloud) == 0


def test_apply_deploys_binds_and_checks_health_then_a_second_apply_changes_nothing(
        cloud: dict[str, Any], environment: config.Environment, database_url: str) -> None:
    _add_secret(cloud, "paradyze-database-url", database_url)
    _add_secret(cloud, "paradyze-supabase-jwt-secret", JWT)
    plan = make_plan(environment, GOOD, cloud["clients"])
    assert not plan.blocked
    report = apply(plan, cloud["clients"])
    assert report.ok and report.healthy, report.lines()
    assert _health(cloud, environment, database_url, JWT).status_code == 200

    run, sm, scheduler = cloud["run"], cloud["sm"], cloud["scheduler"]
    service = run.service("paradyze-list-agents")
    env = {e["name"]: e for e in service["template"]["containers"][0]["env"]}
    assert env["FUNCTION_TARGET"]["value"] == "list_agents"
    assert env["PARADYZE_SCHEMA_VERSION"]["value"] == newest_migration()
    # One vCPU: one worker of 8 threads, a pool of 10, and Cloud Run sends it 8 requests at once at most.
    assert {name: env[name]["value"] for name in ("WORKERS", "THREADS", "PARADYZE_DB_POOL_MAX")} == {
        "WORKERS": "1", "THREADS": "8", "PARADYZE_DB_POOL_MAX": "10"}
    assert service["template"]["maxInstanceRequestConcurrency"] == 8
    reference = env["DATABASE_URL"]["valueSource"]["secretKeyRef"]
    assert reference["secret"] == f"projects/{PROJECT}/secrets/paradyze-database-url"
    assert database_url not in str(service), "a secret's value is never in the service"
    assert len(sm.payload(f"projects/{PROJECT}/secrets/paradyze-secrets-key") or b"") >= 32
    for secret in ("paradyze-database-url", "paradyze-supabase-jwt-secret", "paradyze-secrets-key"):
        [binding] = sm.policies[f"projects/{PROJECT}/secrets/{secret}"]["bindings"]
        assert binding == {"role": "roles/secretmanager.secretAccessor",
                           "members": [f"serviceAccount:{environment.runtime_service_account}"]}
    policy = run.policies[f"projects/{PROJECT}/locations/us-central1/services/paradyze-health-check"]
    assert {"role": "roles/run.invoker", "members": ["allUsers"]} in policy["bindings"]
    health_job = scheduler.job("paradyze-test-health")
    assert health_job["httpTarget"]["uri"] == "https://paradyze-health-check-123456789.us-central1.run.app"
    assert health_job["httpTarget"]["oidcToken"]["audience"] == "paradyze-test"

    before = _mutations(cloud)
    again = make_plan(environment, GOOD, cloud["clients"])
    assert again.changes == [] and not again.blocked
    assert apply(again, cloud["clients"]).lines() == ["nothing to change"]
    assert _mutations(cloud) == before


def test_a_failed_health_check_rolls_traffic_back_to_the_previous_revision(
        cloud: dict[str, Any], environment: config.Environment, database_url: str) -> None:
    previous = {s: _serving(cloud, s)["revision"] for s in ("paradyze-health-check", "paradyze-list-agents")}
    jobs_before = len(cloud["scheduler"].mutations())
    bad = Release(tag="r2", schema_version=BEHIND)
    plan = make_plan(environment, bad, cloud["clients"])
    assert {c.name for c in plan.of("service")} == set(previous)
    report = apply(plan, cloud["clients"])

    assert report.healthy is False and not report.ok
    assert "503 schema_behind" in report.problem and BEHIND in report.problem
    assert report.rolled_back == previous
    assert any(line.startswith("ROLLED BACK: paradyze-health-check serves") for line in report.lines())
    for service_id, revision in previous.items():
        serving = _serving(cloud, service_id)
        assert serving["revision"] == revision and serving["type"] == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
    # The previous revision answers again, at the same URL users call.
    assert _health(cloud, environment, database_url, JWT).status_code == 200
    assert len(cloud["scheduler"].mutations()) == jobs_before, "a failed release touches no job"

    # Once fixed, the next apply rolls forward: a new revision, traffic back on the latest.
    fixed = make_plan(environment, Release(tag="r3", schema_version=newest_migration()), cloud["clients"])
    assert all("traffic" in c.detail for c in fixed.of("service"))
    assert apply(fixed, cloud["clients"]).healthy is True
    serving = _serving(cloud, "paradyze-health-check")
    assert serving["type"] == "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST" and serving["revision"] not in previous.values()


def test_the_repository_config_has_three_environments_that_load(tmp_path: Path) -> None:
    assert config.environments() == ["dev", "prod", "staging"]
    projects = {name: config.load(name).project for name in config.environments()}
    assert len(set(projects.values())) == 3, "each environment is a project of its own"
    prod = config.load("prod")
    assert prod.env["PARADYZE_INSTANCE"] == "prod" and prod.image("functions", "v1").startswith(
        "us-central1-docker.pkg.dev/paradyze-prod/paradyze/functions:")
    assert set(prod.targets) >= {"health_check", "create_agent", "send_message"}


def test_the_command_line_plans_an_environment_of_the_repository_config(cloud: dict[str, Any]) -> None:
    endpoints = {"PARADYZE_DEPLOY_RUN_ENDPOINT": cloud["run"].endpoint,
                 "PARADYZE_DEPLOY_SCHEDULER_ENDPOINT": cloud["scheduler"].endpoint,
                 "PARADYZE_DEPLOY_SECRETS_ENDPOINT": cloud["sm"].endpoint}
    before = _mutations(cloud)
    done = subprocess.run([sys.executable, "-m", "deploy", "plan", "--env", "staging", "--tag", "staging-v1"],
                          cwd=REPO, env={"PATH": "/usr/bin:/bin", **endpoints}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr  # blocked: the database secrets have no values yet
    assert "staging (paradyze-staging, us-central1), release staging-v1" in done.stdout
    assert "create       service      paradyze-create-agent" in done.stdout
    assert "create       service      paradyze-console" in done.stdout
    assert "BLOCKED: secret paradyze-database-url" in done.stdout
    assert _mutations(cloud) == before, "plan changes nothing"
