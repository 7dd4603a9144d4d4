"""Settings of the test suite's databases, for tests/ and e2e/ alike.

- They commit without waiting for the disk (and only they do). The embedded server is durable
  (``config/embedded_pg.py``): dev runs on it for real. Nothing crashes the shared server during
  tests, so each test database gets ``synchronous_commit = off`` as a per-database setting, which
  every process connecting to it (workers, uvicorn) inherits. Tests that crash PostgreSQL start a
  private server whose databases keep the durable defaults.
- Emptying the database after a transactional test is retried when PostgreSQL cancelled it to
  break a deadlock with the live server or the worker (``tests/flush.py``).
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


@pytest.fixture(scope="session", autouse=True)
def _flush_survives_a_deadlock():
    from django.test.testcases import TransactionTestCase

    from tests.flush import retrying

    original = TransactionTestCase._fixture_teardown
    TransactionTestCase._fixture_teardown = retrying(original)
    yield
    TransactionTestCase._fixture_teardown = original
