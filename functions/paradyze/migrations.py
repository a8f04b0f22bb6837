"""The migrations runner: supabase/migrations/ applied in order, recorded where the Supabase CLI records them."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg_pool import ConnectionPool

from .connection import Conn

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
BOOTSTRAP_SQL = Path(__file__).with_name("sql") / "supabase_bootstrap.sql"
_MIGRATION_NAME = re.compile(r"^(\d{14})_([a-z0-9_]+)\.sql$")
_MIGRATIONS_LOCK = 0x5041_5241_4459  # pg_advisory_xact_lock key shared by every runner


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


def _has_supabase_auth(conn: Conn) -> bool:
    row = conn.execute(
        "select to_regprocedure('auth.uid()') is not null as uid,"
        " exists (select 1 from pg_roles where rolname = 'service_role') as roles"
    ).fetchone()
    return bool(row and row["uid"] and row["roles"])
