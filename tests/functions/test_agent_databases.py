"""Cloud Run agents' memory: a database and a role of their own, nothing else open to them."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from paradyze import agent_databases, db
from paradyze.settings import Settings, get_settings


@pytest.fixture
def settings(database: None) -> Settings:
    """The test Postgres server, reached as its admin, holds the agents' databases."""
    admin = db.database_url(get_settings())
    return get_settings().model_copy(update={"agent_database_url": SecretStr(admin)})


def admin_url(settings: Settings) -> str:
    assert settings.agent_database_url is not None
    return settings.agent_database_url.get_secret_value()


def with_database(url: str, dbname: str) -> str:
    """The same URL (same user and password) naming another database."""
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{dbname}" + (f"?{query}" if query else "")


def test_each_agent_gets_its_own_database_that_no_other_agent_can_open(settings: Settings) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        url_a = agent_databases.ensure(settings, first)
        url_b = agent_databases.ensure(settings, second)
        assert url_a.startswith("postgresql://") and "agent_" in url_a and url_a != url_b

        with psycopg.connect(url_a, autocommit=True) as conn:
            conn.execute("create table memories (fact text)")
            conn.execute("insert into memories values ('the sky is green')")
        # Its memory stays across restarts (ensure again: same URL, same data).
        assert agent_databases.ensure(settings, first) == url_a
        with psycopg.connect(url_a) as conn:
            assert conn.execute("select fact from memories").fetchall() == [("the sky is green",)]

        # Agent A with its own password cannot open agent B's database.
        into_b = with_database(url_a, agent_databases.name_for(second))
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(into_b).close()
        # Nor read the platform's tables, nor make roles or databases.
        platform_db = conninfo_to_dict(admin_url(settings))["dbname"]
        into_platform = with_database(url_a, platform_db)
        try:
            with psycopg.connect(into_platform) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select * from public.agents")
        except psycopg.OperationalError:
            pass  # not even allowed to connect: better still
        with psycopg.connect(url_a, autocommit=True) as conn:
            for statement in ("create role sneaky", "create database sneaky"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    finally:
        agent_databases.drop(settings, first)
        agent_databases.drop(settings, second)

    with psycopg.connect(admin_url(settings)) as conn:
        names = [agent_databases.name_for(first), agent_databases.name_for(second)]
        assert conn.execute("select count(*) from pg_database where datname = any(%s)", (names,)).fetchone() == (0,)
        assert conn.execute("select count(*) from pg_roles where rolname = any(%s)", (names,)).fetchone() == (0,)
