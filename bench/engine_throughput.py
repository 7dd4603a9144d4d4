"""No-op runs per second and worker CPU per run, next to procrastinate's no-op task.

Method, identical for both systems and for 1 and 2 worker processes:
1. Start the workers on an empty queue and wait until each one is listening
   (the engine: its LISTEN connection is open; procrastinate: it registered
   itself in ``procrastinate_workers``). Snapshot their CPU times.
2. Enqueue N jobs in ONE transaction, so they all become visible at the same
   commit. The engine's runs go through the real service path
   (``runtime.services.run_create``: validation, conversation, user message,
   run row, queue notification); procrastinate's jobs through
   ``noop.batch_defer``. Creation time is reported apart and is not part of
   the rate.
3. Rate = N / (last terminal timestamp - commit timestamp), both read from
   PostgreSQL's clock (``finished_at`` of the last run; ``at`` of the last
   ``succeeded`` procrastinate event). CPU per run = CPU delta of the worker
   processes / N.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.common import (
    PROJECT_ROOT,
    PYTHON,
    cpu_seconds,
    dedicated_database,
    django_env,
    process_tree,
    setup_django,
    stop_process,
    wait_for,
)

RUNS = int(os.environ.get("BENCH_RUNS", "3000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "10"))
PROCESSES = [int(p) for p in os.environ.get("BENCH_PROCESSES", "1,2").split(",")]


@dataclass
class Measurement:
    system: str
    processes: int
    runs: int
    done: int
    create_s: float
    seconds: float
    cpu_s: float

    def row(self) -> dict:
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        return {
            "system": self.system,
            "processes": self.processes,
            "concurrency": CONCURRENCY,
            "runs": self.runs,
            "completed": self.done,
            "enqueue (jobs/s)": self.runs / self.create_s if self.create_s else 0.0,
            "seconds": round(self.seconds, 2),
            "runs/s": rate,
            "worker CPU ms/run": 1000 * self.cpu_s / self.done if self.done else 0.0,
        }


def _deadline() -> float:
    return max(60.0, RUNS / 25)


# ---------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------


def _engine_ready(conn: psycopg.Connection, dbname: str, processes: int) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query = 'LISTEN agent_cancel'", [dbname]
    ).fetchone()
    return row[0] >= processes


def measure_engine(url: str, processes: int, logdir: Path) -> Measurement:
    from django.db import connection, transaction

    from bench.agents import NOOP
    from runtime.services import run_create

    dbname = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE runtime_agentconversation, runtime_agentrun CASCADE")
    log = open(logdir / f"engine-{processes}.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [
            PYTHON,
            "manage.py",
            "runagent",
            "--processes",
            str(processes),
            "--concurrency",
            str(CONCURRENCY),
            "--noreload",
        ],
        cwd=PROJECT_ROOT,
        env=django_env(url),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with psycopg.connect(url, autocommit=True) as probe:
            wait_for(
                lambda: _engine_ready(probe, dbname, processes), timeout=60, what="engine workers to listen"
            )
            procs = process_tree(worker.pid)
            cpu_before = cpu_seconds(procs)
            started = time.monotonic()
            with transaction.atomic():
                for i in range(RUNS):
                    run_create(agent_key=NOOP, messages=[{"role": "user", "content": f"no-op {i}"}])
            create_s = time.monotonic() - started
            committed_at = probe.execute("SELECT clock_timestamp()").fetchone()[0]

            def finished() -> bool:
                row = probe.execute(
                    "SELECT count(*) FROM runtime_agentrun WHERE status NOT IN ('queued', 'running')"
                ).fetchone()
                return row[0] >= RUNS

            with contextlib.suppress(TimeoutError):  # reported as fewer completed runs
                wait_for(finished, timeout=_deadline(), interval=0.1, what="the engine's runs")
            cpu_after = cpu_seconds(procs)
            done, last = probe.execute(
                "SELECT count(*), max(finished_at) FROM runtime_agentrun WHERE status = 'succeeded'"
            ).fetchone()
            not_ok = probe.execute(
                "SELECT count(*) FROM runtime_agentrun WHERE status NOT IN ('succeeded', 'queued', 'running')"
            ).fetchone()[0]
    finally:
        stop_process(worker)
        log.close()
    if not_ok:
        raise RuntimeError(f"{not_ok} no-op runs did not succeed; see {logdir}")
    seconds = (last - committed_at).total_seconds() if last else 0.0
    return Measurement("engine", processes, RUNS, done, create_s, seconds, cpu_after - cpu_before)


# ---------------------------------------------------------------------------
# procrastinate
# ---------------------------------------------------------------------------


def measure_procrastinate(url: str, processes: int, logdir: Path) -> Measurement:
    from bench.procrastinate_app import app, noop

    env = dict(os.environ, BENCH_PROCRASTINATE_URL=url, PYTHONPATH=str(PROJECT_ROOT))
    with psycopg.connect(url, autocommit=True) as probe:
        probe.execute("TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers CASCADE")
        logs = [open(logdir / f"procrastinate-{processes}-{i}.log", "wb") for i in range(processes)]  # noqa: SIM115
        workers = [
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "procrastinate",
                    "--app=bench.procrastinate_app.app",
                    "worker",
                    f"--concurrency={CONCURRENCY}",
                ],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=logs[i],
                stderr=subprocess.STDOUT,
            )
            for i in range(processes)
        ]
        try:

            def ready() -> bool:
                return probe.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0] >= processes

            wait_for(ready, timeout=60, what="procrastinate workers to register")
            procs = [proc for worker in workers for proc in process_tree(worker.pid)]
            cpu_before = cpu_seconds(procs)
            started = time.monotonic()
            with app.open():
                noop.batch_defer(*({} for _ in range(RUNS)))
            create_s = time.monotonic() - started
            committed_at = probe.execute("SELECT clock_timestamp()").fetchone()[0]

            def finished() -> bool:
                row = probe.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status NOT IN ('todo', 'doing')"
                ).fetchone()
                return row[0] >= RUNS

            with contextlib.suppress(TimeoutError):  # reported as fewer completed jobs
                wait_for(finished, timeout=_deadline(), interval=0.1, what="procrastinate's jobs")
            cpu_after = cpu_seconds(procs)
            done = probe.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            ).fetchone()[0]
            last = probe.execute(
                "SELECT max(at) FROM procrastinate_events WHERE type = 'succeeded'"
            ).fetchone()[0]
        finally:
            for worker in workers:
                stop_process(worker)
            for log in logs:
                log.close()
    seconds = (last - committed_at).total_seconds() if last else 0.0
    return Measurement("procrastinate", processes, RUNS, done, create_s, seconds, cpu_after - cpu_before)


def _apply_procrastinate_schema(url: str) -> None:
    env = dict(os.environ, BENCH_PROCRASTINATE_URL=url, PYTHONPATH=str(PROJECT_ROOT))
    subprocess.run(
        [PYTHON, "-m", "procrastinate", "--app=bench.procrastinate_app.app", "schema", "--apply"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    os.environ["BENCH_PROCRASTINATE_URL"] = url  # read when bench.procrastinate_app is imported


def main() -> list[dict]:
    rows: list[dict] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp,
        dedicated_database() as url,
        dedicated_database(prefix="benchp", migrate=False) as purl,
    ):
        logdir = Path(tmp)
        setup_django(url)
        _apply_procrastinate_schema(purl)
        for processes in PROCESSES:
            engine = measure_engine(url, processes, logdir)
            yardstick = measure_procrastinate(purl, processes, logdir)
            rows.append(engine.row())
            rows.append(yardstick.row())
            e_rate = engine.done / engine.seconds if engine.seconds else 0.0
            p_rate = yardstick.done / yardstick.seconds if yardstick.seconds else 0.0
            rows[-2]["vs procrastinate"] = f"{e_rate / p_rate:.2f}x" if p_rate else "n/a"
            rows[-1]["vs procrastinate"] = "1.00x"
        from django.db import connections

        connections.close_all()  # the database is dropped next
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
