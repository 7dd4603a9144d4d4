"""No-op runs per second and worker CPU per run, next to procrastinate's no-op task.

Method, identical for both systems and for 1 and 2 worker processes:
1. Start the workers on an empty queue and wait until each one is listening
   (the engine: its LISTEN connection is open; procrastinate: it registered
   itself in ``procrastinate_workers``). Snapshot their CPU times.
2. Enqueue N jobs in ONE transaction, so they all become visible at the same
   commit. The engine's runs are created once through the real service path
   (``runtime.services.run_create``: validation, conversation, user message,
   run row, queue notification) and the rows it wrote are copied aside; each
   measurement bulk-inserts that copy (``available_at`` set to now) and sends
   the queue notification. procrastinate's jobs go through
   ``noop.batch_defer``. The enqueue rate (the service path's for the engine)
   is reported apart and is not part of the rate.
3. Rate = N / (last terminal timestamp - commit timestamp), both read from
   PostgreSQL's clock (``finished_at`` of the last run; ``at`` of the last
   ``succeeded`` procrastinate event). CPU per run = CPU delta of the worker
   processes / N.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
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
    wait_until,
)

RUNS = int(os.environ.get("BENCH_RUNS", "2000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "10"))
TARGET_RATE = 300.0
TARGET_RATIO = 1.5
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
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
    pg_cpu_s: float

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def row(self) -> dict:
        per_run = 1000 / self.done if self.done else 0.0
        return {
            "system": self.system,
            "processes": self.processes,
            "concurrency": CONCURRENCY,
            "runs": self.runs,
            "completed": self.done,
            "enqueue (jobs/s)": self.runs / self.create_s if self.create_s else 0.0,
            "seconds": round(self.seconds, 2),
            "runs/s": self.rate,
            "worker CPU ms/run": self.cpu_s * per_run,
            "PostgreSQL CPU ms/run": self.pg_cpu_s * per_run,
        }


def backend_cpu(probe: psycopg.Connection, dbname: str, exclude: set[int]) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving ``dbname`` (the server runs on this machine)."""
    pids = [
        row[0]
        for row in probe.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [dbname])
        if row[0] not in exclude
    ]
    return {pid: cpu_seconds([psutil.Process(pid)]) for pid in pids if psutil.pid_exists(pid)}


def backend_cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """Backends that appeared meanwhile (workers connect lazily) count from zero."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


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


_TABLES = ("runtime_agentconversation", "runtime_agentrun", "runtime_agentmessage")


def prepare_engine_runs() -> float:
    """Create RUNS runs through the real service path once; keep a copy of the rows it wrote.

    Every measurement then restores that copy in one transaction (a bulk insert of
    exactly what ``run_create`` wrote: conversation, user message, queued run), so
    repeats do not pay for creation again. Returns the service path's rate (runs/s).
    """
    from django.db import connection, transaction

    from bench.agents import NOOP
    from runtime.services import run_create

    started = time.monotonic()
    with transaction.atomic():
        for i in range(RUNS):
            run_create(agent_key=NOOP, messages=[{"role": "user", "content": f"no-op {i}"}])
    rate = RUNS / (time.monotonic() - started)
    with connection.cursor() as cursor:
        for table in _TABLES:
            cursor.execute(f"CREATE TABLE bench_copy_{table} AS SELECT * FROM {table}")  # noqa: S608
        cursor.execute(f"TRUNCATE {', '.join(_TABLES)} CASCADE")
    return rate


def _restore_runs(cursor) -> None:
    for table in _TABLES:  # foreign keys are deferred to the commit
        cursor.execute(f"INSERT INTO {table} SELECT * FROM bench_copy_{table}")  # noqa: S608
    cursor.execute("UPDATE runtime_agentrun SET available_at = now()")
    cursor.execute("SELECT pg_notify('agent_runs', '')")  # what run_create sends, once per commit


def measure_engine(url: str, processes: int, logdir: Path, create_rate: float) -> Measurement:
    from django.db import connection, transaction

    dbname = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(_TABLES)}, runtime_agentevent CASCADE")
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
            wait_until(
                lambda: _engine_ready(probe, dbname, processes), timeout=60, what="engine workers to listen"
            )
            procs = process_tree(worker.pid)
            cpu_before = cpu_seconds(procs)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                exclude = {cursor.fetchone()[0], probe.info.backend_pid}
            pg_before = backend_cpu(probe, dbname, exclude)
            with transaction.atomic(), connection.cursor() as cursor:
                _restore_runs(cursor)
            create_s = RUNS / create_rate
            committed_at = probe.execute("SELECT clock_timestamp()").fetchone()[0]

            def finished() -> bool:
                row = probe.execute(
                    "SELECT count(*) FROM runtime_agentrun WHERE status NOT IN ('queued', 'running')"
                ).fetchone()
                return row[0] >= RUNS

            with contextlib.suppress(TimeoutError):  # reported as fewer completed runs
                wait_until(finished, timeout=_deadline(), every=0.1, what="the engine's runs")
            cpu_after = cpu_seconds(procs)
            pg_after = backend_cpu(probe, dbname, exclude)
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
    pg_cpu = backend_cpu_delta(pg_before, pg_after)
    return Measurement("engine", processes, RUNS, done, create_s, seconds, cpu_after - cpu_before, pg_cpu)


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

            wait_until(ready, timeout=60, what="procrastinate workers to register")
            procs = [proc for worker in workers for proc in process_tree(worker.pid)]
            cpu_before = cpu_seconds(procs)
            dbname = probe.info.dbname
            pg_before = backend_cpu(probe, dbname, {probe.info.backend_pid})
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
                wait_until(finished, timeout=_deadline(), every=0.1, what="procrastinate's jobs")
            cpu_after = cpu_seconds(procs)
            pg_after = backend_cpu(probe, dbname, {probe.info.backend_pid})
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
    pg_cpu = backend_cpu_delta(pg_before, pg_after)
    return Measurement(
        "procrastinate", processes, RUNS, done, create_s, seconds, cpu_after - cpu_before, pg_cpu
    )


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
    logging.getLogger("procrastinate").setLevel(logging.WARNING)  # one INFO line per defer is noise here


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
        create_rate = prepare_engine_runs()
        for processes in PROCESSES:
            engine: list[Measurement] = []
            yardstick: list[Measurement] = []
            for rep in range(REPEATS):
                # Alternate who goes first, so a burst of load from elsewhere hits both alike.
                pair = [
                    (engine, lambda p=processes: measure_engine(url, p, logdir, create_rate)),
                    (yardstick, lambda p=processes: measure_procrastinate(purl, p, logdir)),
                ]
                for results, measure in pair if rep % 2 == 0 else pair[::-1]:
                    result = measure()
                    results.append(result)
                    print(f"{result.system} x{processes} #{rep + 1}: {result.rate:.0f} runs/s", flush=True)
            rows.extend(_compare(engine, yardstick))
        from django.db import connections

        connections.close_all()  # the database is dropped next
    return rows


def _compare(engine: list[Measurement], yardstick: list[Measurement]) -> list[dict]:
    """Best of the repeats for each (the least disturbed by other load on a shared machine)."""
    best_e = max(engine, key=lambda m: m.rate)
    best_p = max(yardstick, key=lambda m: m.rate)
    ratio = best_e.rate / best_p.rate if best_p.rate else 0.0
    met = best_e.rate >= TARGET_RATE and ratio >= TARGET_RATIO
    e_row, p_row = best_e.row(), best_p.row()
    e_row["all repeats (runs/s)"] = ", ".join(f"{m.rate:.0f}" for m in engine)
    p_row["all repeats (runs/s)"] = ", ".join(f"{m.rate:.0f}" for m in yardstick)
    e_row["vs procrastinate"] = f"{ratio:.2f}x"
    p_row["vs procrastinate"] = "1.00x"
    e_row["target (>=300/s, >=1.5x)"] = "met" if met else "MISSED"
    p_row["target (>=300/s, >=1.5x)"] = ""
    return [e_row, p_row]


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
