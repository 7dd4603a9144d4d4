"""A host project on SQLite hears at start-up that PostgreSQL is required, not when a run fails."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.processes import ROOT


@pytest.mark.parametrize("command", [["migrate"], ["runagent", "--once", "--noreload"], ["check"]])
def test_commands_on_sqlite_stop_and_say_postgresql_is_required(command):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "tests.durability.sqlite_settings",
        # base settings read it before the SQLite override; nothing connects to it
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/none",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert (
        "runtime.E001" in out
        and "The agent runtime needs PostgreSQL; DATABASES['default'] uses sqlite." in out
    )
    assert "Traceback" not in out
