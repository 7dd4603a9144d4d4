"""Time from kill -9 of a worker to its run starting again in another worker.

Method: two ``runagent`` processes with a short lease (``AGENT_LEASE_TTL_SECONDS``,
default 5 here). A run of ``bench-hold`` (holds its first attempt forever) is
created; when a worker holds it, that worker gets SIGKILL. The figure is from
just before the kill to the ``run.started`` event of attempt 2, written by the
other worker (both instants on this machine's clock). The killed worker is
started again before the next trial. Bound: TTL + 5 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.common import (
    PROJECT_ROOT,
    PYTHON,
    dedicated_database,
    django_env,
    setup_django,
    stop_process,
    wait_until,
)

TTL = int(os.environ.get("BENCH_LEASE_TTL", "5"))
TRIALS = int(os.environ.get("BENCH_RESCUE_TRIALS", "3"))


def _listening(probe: psycopg.Connection, dbname: str) -> int:
    return probe.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query = 'LISTEN agent_cancel'", [dbname]
    ).fetchone()[0]


def main() -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-rescue-") as tmp, dedicated_database() as url:
        ttl_env = {"AGENT_LEASE_TTL_SECONDS": str(TTL)}
        setup_django(url, **ttl_env)
        from django.db import connection, connections

        from bench.agents import HOLD
        from runtime.services import run_create

        dbname = connection.settings_dict["NAME"]
        logs: list = []
        workers: dict[int, subprocess.Popen] = {}

        def start_worker() -> None:
            log = open(Path(tmp) / f"worker-{len(logs)}.log", "wb")  # noqa: SIM115 - closed at the end
            logs.append(log)
            proc = subprocess.Popen(
                [PYTHON, "manage.py", "runagent", "--processes", "1", "--concurrency", "4", "--noreload"],
                cwd=PROJECT_ROOT,
                env=django_env(url, **ttl_env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            workers[proc.pid] = proc

        try:
            with psycopg.connect(url, autocommit=True) as probe:
                for _ in range(2):
                    start_worker()
                wait_until(lambda: _listening(probe, dbname) >= 2, timeout=60, what="two workers to listen")
                for trial in range(1, TRIALS + 1):
                    run, _ = run_create(
                        agent_key=HOLD, messages=[{"role": "user", "content": f"hold {trial}"}]
                    )

                    def holder(run_id=str(run.pk)) -> bool:
                        row = probe.execute(
                            "SELECT lease_owner FROM runtime_agentrun WHERE id = %s AND status = 'running'",
                            [run_id],
                        ).fetchone()
                        return bool(row and row[0])

                    wait_until(holder, timeout=30, what="a worker to claim the run")
                    owner = probe.execute(
                        "SELECT lease_owner FROM runtime_agentrun WHERE id = %s", [run.pk]
                    ).fetchone()[0]
                    victim = int(owner.rsplit(":", 1)[1])
                    if victim not in workers:
                        raise RuntimeError(
                            f"the run is held by {owner!r}, which this benchmark did not start"
                        )
                    killed_at = datetime.now(UTC)
                    os.kill(victim, signal.SIGKILL)
                    workers.pop(victim).wait(timeout=10)

                    def restarted(run_id=str(run.pk)) -> bool:
                        return (
                            probe.execute(
                                "SELECT 1 FROM runtime_agentevent WHERE run_id = %s AND event_type = 'run.started' "
                                "AND attempt = 2",
                                [run_id],
                            ).fetchone()
                            is not None
                        )

                    wait_until(restarted, timeout=TTL + 60, every=0.02, what="the run to start again")
                    resumed_at = probe.execute(
                        "SELECT created_at FROM runtime_agentevent WHERE run_id = %s AND event_type = 'run.started' "
                        "AND attempt = 2",
                        [run.pk],
                    ).fetchone()[0]
                    wait_until(
                        lambda run_id=str(run.pk): (
                            probe.execute(
                                "SELECT status FROM runtime_agentrun WHERE id = %s", [run_id]
                            ).fetchone()[0]
                            == "succeeded"
                        ),
                        timeout=30,
                        what="the resumed run to succeed",
                    )
                    owner_after = probe.execute(
                        "SELECT lease_owner FROM runtime_agentrun WHERE id = %s", [run.pk]
                    ).fetchone()[0]
                    seconds = (resumed_at - killed_at).total_seconds()
                    rows.append(
                        {
                            "trial": trial,
                            "lease TTL (s)": TTL,
                            "killed worker pid": victim,
                            "resumed in pid": owner_after.rsplit(":", 1)[1],
                            "kill -9 to run.started of attempt 2 (s)": round(seconds, 2),
                            "bound TTL+5 (s)": TTL + 5,
                            "within bound": "yes" if seconds <= TTL + 5 else "NO",
                        }
                    )
                    print(f"trial {trial}: resumed {seconds:.2f} s after kill -9", flush=True)
                    start_worker()
                    wait_until(
                        lambda: _listening(probe, dbname) >= 2, timeout=60, what="the restarted worker"
                    )
        finally:
            for proc in workers.values():
                stop_process(proc)
            for log in logs:
                log.close()
            connections.close_all()  # the database is dropped next
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
