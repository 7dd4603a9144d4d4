"""Emptying the test database after a transactional test, retried when PostgreSQL cancels it to
break a deadlock (used by the root ``conftest.py`` for tests/ and e2e/ alike).

After each transactional test Django empties every table with one ``TRUNCATE``, which locks the
tables one after another. The session's worker and the live server's threads keep querying the
same database meanwhile (``e2e/conftest.py``, ``live``); a query that locks two of those tables in
the other order deadlocks with it, and PostgreSQL cancels one of the two. When it cancelled the
``TRUNCATE`` (once in the day's three clean-clone CI runs, in ``e2e/test_security.py``), the test
errored and the rows it left broke the next test's setup. The flush is one transaction, rolled
back when cancelled, so it is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ATTEMPTS = 3


def deadlocked(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was caused by, PostgreSQL cancelling a statement in a deadlock."""
    from psycopg.errors import DeadlockDetected

    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DeadlockDetected):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def retrying(teardown: Callable[[Any], Any], attempts: int = ATTEMPTS) -> Callable[[Any], Any]:
    """``teardown`` run again (up to ``attempts`` times in all) when a deadlock cancelled it."""

    def run(self: Any) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return teardown(self)
            except Exception as exc:
                if attempt == attempts or not deadlocked(exc):
                    raise
        return None

    return run
