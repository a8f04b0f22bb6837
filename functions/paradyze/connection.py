"""The platform's Postgres connection type: dict rows, and when the pool last took it back."""

from __future__ import annotations

import psycopg
from psycopg.rows import DictRow


class Conn(psycopg.Connection[DictRow]):
    """A connection with dict rows. `returned_at` (time.monotonic) is stamped by the pool each time it
    is given back, so that a connection in steady use is not checked on every checkout (db.pool)."""

    returned_at = 0.0
