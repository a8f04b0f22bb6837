"""Agent locks shared by every instance: one operation at a time per agent, and messages in flight.

Both are Postgres advisory locks held by a session: they outlive the short transactions inside an
operation, and Postgres drops them if the process dies, so a crash never leaves an agent locked.
Operation locks live on ONE connection per instance kept outside the request pool (AgentLocks); a
message in flight holds its key on the pooled connection it keeps while it is delivered (shared_on).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from psycopg.rows import DictRow, dict_row

from .errors import AgentBusy, DatabaseUnavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2  # libpq's connect_timeout, whole seconds (2 is its minimum)


def operation_key(agent_id: str) -> int:
    return _key(agent_id)


def messages_key(agent_id: str) -> int:
    """A message to the agent holds this key shared while it is delivered; a drain takes it alone."""
    return _key(f"messages:{agent_id}")


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class AgentLocks:
    """Every operation lock this instance holds, as session advisory locks on ONE connection of its own
    (a message's in-flight lock is on the pooled connection the message keeps: shared_on).

    The connection is outside the request pool: a holder never keeps a pool connection while the
    work under the lock needs one, so one user's many operations cannot take the connections another
    user's request needs. One connection serves every lock (a session may hold any number of
    advisory locks); threads of this instance first queue on a per-agent threading lock, because a
    session's advisory locks are re-entrant.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[DictRow] | None = None
        self._io = threading.Lock()  # one statement at a time on the shared connection
        self._guard = threading.Lock()
        self._local: dict[int, tuple[threading.Lock, int]] = {}  # key -> (lock, threads using it)
        self._held = 0

    @contextlib.contextmanager
    def hold(self, agent_id: str, timeout: float) -> Iterator[None]:
        """The agent's operation lock, alone. Raises AgentBusy after timeout, DatabaseUnavailable."""
        key = operation_key(agent_id)
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
        _poll(lambda: self._execute("select pg_try_advisory_lock(%s) as ok", key), agent_id, deadline)
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
                    self._conn = psycopg.Connection.connect(self._url, autocommit=True, row_factory=dict_row,
                                                            connect_timeout=CONNECT_TIMEOUT)
                row = self._conn.execute(query, (key,)).fetchone()
            except psycopg.OperationalError as exc:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise DatabaseUnavailable("the database is not reachable") from exc
        return bool(row and row["ok"])


@contextlib.contextmanager
def shared_on(conn: psycopg.Connection[DictRow], agent_id: str, timeout: float) -> Iterator[None]:
    """The agent's messages key, shared with every other message in flight, on conn's own session: a
    connection the message keeps until this ends (so no other thread's lock waits on its round trips).

    Only a drain takes the key alone, and only for an instant (a transaction's try-lock), so this
    waits only while a drain looks. Raises AgentBusy after timeout; psycopg.OperationalError.
    """
    key = messages_key(agent_id)

    def try_lock() -> bool:
        row = conn.execute("select pg_try_advisory_lock_shared(%s) as ok", (key,)).fetchone()
        return bool(row and row["ok"])

    _poll(try_lock, agent_id, time.monotonic() + timeout)
    try:
        yield
    finally:
        try:
            conn.execute("select pg_advisory_unlock_shared(%s)", (key,))
        except psycopg.Error:
            conn.close()  # its session ends, and the lock with it: the pool replaces the connection


def _poll(try_lock: Callable[[], bool], agent_id: str, deadline: float) -> None:
    """try_lock until it succeeds, backing off from 10 ms to 250 ms; raises AgentBusy past deadline."""
    delay = 0.01
    while not try_lock():
        if time.monotonic() > deadline:
            raise _busy(agent_id)
        time.sleep(delay + random.uniform(0, delay))
        delay = min(delay * 2, 0.25)


def _busy(agent_id: str) -> AgentBusy:
    return AgentBusy(f"agent {agent_id} is busy with another operation; try again shortly")
