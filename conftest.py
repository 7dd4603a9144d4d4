"""The test suite's databases commit without waiting for the disk (and only they do).

The embedded server is durable (``config/embedded_pg.py``): dev runs on it for real. Nothing
crashes the shared server during tests, so each test database gets ``synchronous_commit = off``
as a per-database setting, which every process connecting to it (workers, uvicorn) inherits.
Tests that crash PostgreSQL start a private server whose databases keep the durable defaults.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        name = connection.ops.quote_name(connection.settings_dict["NAME"])
        cursor.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
        cursor.execute("SET synchronous_commit = off")  # this session started before the ALTER
    yield
