"""Two tenants' rows, written by the platform, in the test's rolled-back transaction."""

from __future__ import annotations

from typing import Any

import pytest
from as_postgrest import Tenant, seed_tenant


@pytest.fixture
def alice_rows(conn: Any) -> Tenant:
    return seed_tenant(conn)


@pytest.fixture
def bob_rows(conn: Any) -> Tenant:
    return seed_tenant(conn, with_secret=False)
