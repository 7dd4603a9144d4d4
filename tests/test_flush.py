"""A test database flush that PostgreSQL cancelled in a deadlock is run again (tests/flush.py)."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from psycopg.errors import DeadlockDetected

from tests.flush import retrying


def _flush_failing(times: int, error: type[Exception] = DeadlockDetected):
    calls = []

    def teardown(self):
        calls.append(self)
        if len(calls) <= times:
            try:
                raise error("deadlock detected")
            except Exception as exc:  # as Django's flush reports it: a CommandError from the cause
                raise CommandError("Database test_agents couldn't be flushed.") from exc
        return "flushed"

    return teardown, calls


def test_a_flush_cancelled_by_a_deadlock_runs_again():
    teardown, calls = _flush_failing(times=1)
    assert retrying(teardown)("case") == "flushed"
    assert calls == ["case", "case"]


def test_any_other_failure_is_raised_at_once():
    teardown, calls = _flush_failing(times=1, error=RuntimeError)
    with pytest.raises(CommandError):
        retrying(teardown)("case")
    assert len(calls) == 1


def test_a_deadlock_every_time_is_raised_after_the_last_attempt():
    teardown, calls = _flush_failing(times=5)
    with pytest.raises(CommandError):
        retrying(teardown, attempts=3)("case")
    assert len(calls) == 3
