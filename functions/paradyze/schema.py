"""The deployed functions' side of migrations: check the schema is at least the release's, never migrate.

In production the deploy applies `supabase/migrations/` with the Supabase CLI before it rolls out
new revisions, and tells each revision which migration it needs (PARADYZE_SCHEMA_VERSION). A
revision that meets a database behind that version (the deploy skipped or failed its migration
step, or a rollback of the database) refuses every request with a 503 that says which version is
applied and which is needed, instead of running queries against a schema it was not written for.
"""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from .connection import Conn
from .errors import SchemaBehind


def require(pool: ConnectionPool[Conn], needed: str) -> str:
    """The newest applied migration's version, when it is at least `needed`.

    Raises SchemaBehind when it is not (or when no migration was ever applied).
    """
    with pool.connection() as conn:
        try:
            row = conn.execute("select max(version) as version from supabase_migrations.schema_migrations").fetchone()
        except psycopg.errors.UndefinedTable:
            row = None
    applied = str(row["version"]) if row and row["version"] else None
    if applied is None or applied < needed:
        raise SchemaBehind(
            f"the database schema is at {applied or 'no migration'}, and this release needs {needed}:"
            " apply supabase/migrations (supabase db push) before deploying",
            details=[{"loc": ["database", "schema_version"], "msg": f"applied {applied}, needed {needed}"}],
        )
    return applied
