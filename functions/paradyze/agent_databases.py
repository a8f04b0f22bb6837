"""Each Cloud Run agent's own Postgres database and role: where its memory lives when it has no disk.

A Cloud Run instance loses its files when it stops, so an agent there keeps its memory in a
database of its own on the Postgres server that PARADYZE_AGENT_DATABASE_URL names (an admin
connection, e.g. to Cloud SQL). Each agent gets a role that owns its database and nothing else:
no superuser, no CREATEDB or CREATEROLE, CONNECT revoked from PUBLIC on its database, so no other
agent's role can open it and it can open no other. Its password is derived from the platform's
secrets key and the agent id, like its API key: never stored, always recomputable.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from .errors import AgentStartFailed, RuntimeUnavailable
from .settings import Settings


def name_for(agent_id: str) -> str:
    """The agent's database and role name (both the same): agent_<32 hex digits>."""
    return "agent_" + agent_id.replace("-", "").lower()


def password_for(settings: Settings, agent_id: str) -> str:
    secret = settings.secrets_key_value().encode()
    return hmac.new(secret, f"agent-database:{agent_id}".encode(), hashlib.sha256).hexdigest()


def ensure(settings: Settings, agent_id: str) -> str:
    """Create the agent's role and database unless they exist; returns the URL the agent uses.

    Raises AgentStartFailed when the server cannot be reached or refuses.
    """
    admin = _admin_url(settings)
    name = name_for(agent_id)
    ident = sql.Identifier(name)
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
            role_sql = sql.SQL("create role {} login nosuperuser nocreatedb nocreaterole noinherit password {}"
                               if not exists else "alter role {} password {}")
            conn.execute(role_sql.format(ident, sql.Literal(password_for(settings, agent_id))))
            if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("create database {} owner {}").format(ident, ident))
            conn.execute(sql.SQL("revoke all on database {} from public").format(ident))
    except psycopg.Error as exc:
        raise AgentStartFailed(f"could not prepare the agent's database {name}: {exc.__class__.__name__}") from exc
    return _agent_url(admin, name, password_for(settings, agent_id))


def drop(settings: Settings, agent_id: str) -> None:
    """Delete the agent's database (its memory) and its role; nothing to do when they are gone.

    Raises RuntimeUnavailable when the server cannot be reached.
    """
    if not settings.agent_database_url:
        return
    ident = sql.Identifier(name_for(agent_id))
    try:
        with psycopg.connect(_admin_url(settings), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(ident))
            conn.execute(sql.SQL("drop role if exists {}").format(ident))
    except psycopg.Error as exc:
        # The delete stays `deleting` and is finished by the next sweep, memory included.
        raise RuntimeUnavailable(f"could not drop the agent's database: {exc.__class__.__name__}") from exc


def _agent_url(admin: str, name: str, password: str) -> str:
    """A postgres:// URL (what ElizaOS's POSTGRES_URL takes) to the admin's server, as the agent."""
    parts = conninfo_to_dict(admin)
    host, port = str(parts.pop("host", "") or ""), parts.pop("port", None)
    query = {k: str(v) for k, v in parts.items() if k not in ("user", "password", "dbname") and v is not None}
    netloc = f"{name}:{quote(password, safe='')}@"
    if host.startswith("/"):
        query["host"] = host  # a Unix socket folder goes in the query
        if port:
            query["port"] = str(port)
    elif host:
        netloc += host + (f":{port}" if port else "")
    return f"postgresql://{netloc}/{name}" + (f"?{urlencode(query)}" if query else "")


def _admin_url(settings: Settings) -> str:
    if not settings.agent_database_url:
        raise AgentStartFailed("PARADYZE_AGENT_DATABASE_URL is not set: Cloud Run agents need a database")
    url = settings.agent_database_url.get_secret_value()
    conninfo_to_dict(url)  # a malformed URL fails here, before anything is created
    return url
