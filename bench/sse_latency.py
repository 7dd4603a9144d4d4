"""Time from ``POST runs/`` to the first event an SSE client receives, at 50 runs/s.

Method: one uvicorn process and one ``runagent`` worker on a throw-away database;
the agent is ``bench-noop`` (its first event is ``run.started``). Every 20 ms a
client task posts a run (token auth, a pooled keep-alive HTTP connection; the
clients speak plain HTTP/1.1 on asyncio streams, see bench/_sse.py), then
opens ``runs/<id>/events/stream/?include_all=true`` on a new connection and waits
for the first ``id:`` frame. Latency = frame arrival - just before the POST. So
the figure holds the whole path a browser sees: the API call (validation,
conversation, message, run row, enqueue), the worker's claim, the first event
write + NOTIFY, the stream's authentication and backlog read, and the listener's
fan-out. ``BENCH_SSE_LATENCY_RUNS`` (default 300) after 20 warm-up runs. The web
process runs with ``DATABASE_CONN_MAX_AGE=60`` unless the environment says otherwise;
"worker part" is run row created -> ``run.started`` row written, from the table.

    python -m bench sse_latency
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time

from bench._sse import ApiClient, env_int, make_user_token, open_stream, pct, run_loop, uvicorn
from bench.common import (
    PROJECT_ROOT,
    PYTHON,
    dedicated_database,
    django_env,
    setup_django,
    stop_process,
    wait_until,
)

RUNS = env_int("BENCH_SSE_LATENCY_RUNS", 300)
WARMUP = 20
# the target rate, then a light load that shows the path's own latency without queueing
RATES = [float(rate) for rate in os.environ.get("BENCH_SSE_LATENCY_RATES", "50,5").split(",")]
TARGET_P50_MS, TARGET_P99_MS = 10.0, 50.0
# the web process as we recommend running it: persistent connections in its API threads
CONN_MAX_AGE = os.environ.get("DATABASE_CONN_MAX_AGE", "60")


def _worker_part_ms(since: float) -> tuple[float, float]:
    """Run row created -> its ``run.started`` row written (the worker's share), for runs since ``since``."""
    from datetime import UTC, datetime

    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
                "(ORDER BY extract(epoch FROM e.created_at - r.created_at) * 1000) "
                "FROM runtime_agentevent e JOIN runtime_agentrun r ON r.id = e.run_id "
                "WHERE e.seq = 1 AND r.created_at >= %s",
                [datetime.fromtimestamp(since, UTC)],
            )
            p50, p99 = cursor.fetchone()[0]
        return p50, p99
    finally:
        connection.close()


def main() -> list[dict]:
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)

    with dedicated_database(prefix="benchlat") as url:
        setup_django(url)
        from django.db import connection

        _, token = make_user_token()
        connection.close()
        worker = subprocess.Popen(
            [PYTHON, "manage.py", "runagent", "--noreload", "--concurrency", "50"],
            cwd=PROJECT_ROOT,
            env=django_env(url, LOG_LEVEL="WARNING"),
        )
        try:
            with uvicorn(
                url, workers=env_int("BENCH_SSE_WORKERS", 1), DATABASE_CONN_MAX_AGE=CONN_MAX_AGE
            ) as server:
                headers = {"Authorization": f"Token {token}"}
                wait_until(
                    lambda: (
                        httpx.get(f"{server.base}/api/agents/models/", headers=headers).status_code == 200
                    ),
                    timeout=30,
                    what="the API",
                )

                async def trial(api: ApiClient) -> tuple[float, float]:
                    started = time.time()
                    status, created = await api.request(
                        "POST",
                        "/api/agents/runs/",
                        {"agent_key": "bench-noop", "messages": [{"role": "user", "content": "hi"}]},
                    )
                    posted = time.time()
                    assert status == 201, created
                    run_id = created["id"]
                    client = await open_stream(
                        server.port, f"/api/agents/runs/{run_id}/events/stream/?include_all=true", headers
                    )
                    try:
                        first = await client.wait_for(b"id: 1\n")
                    finally:
                        client.close()
                    return first - started, posted - started

                async def scenario(rate: float, runs: int) -> list[tuple[float, float]]:
                    api = ApiClient(server.port, headers)
                    try:
                        for _ in range(WARMUP):
                            await trial(api)
                        tasks = []
                        loop = asyncio.get_running_loop()
                        begin = loop.time()
                        for index in range(runs):  # on a fixed schedule, so the rate does not drift
                            tasks.append(asyncio.create_task(trial(api)))
                            await asyncio.sleep(max(0.0, begin + (index + 1) / rate - loop.time()))
                        return list(await asyncio.gather(*tasks))
                    finally:
                        api.close()

                by_rate = {}
                worker_part = {}
                for rate in RATES:
                    since = time.time()
                    by_rate[rate] = run_loop(scenario(rate, RUNS if rate >= 50 else RUNS // 3))
                    worker_part[rate] = _worker_part_ms(since)
        finally:
            stop_process(worker)
    rows = []
    for rate, results in by_rate.items():
        first = [r[0] * 1000 for r in results]
        post = [r[1] * 1000 for r in results]
        p50, p99 = pct(first, 50), pct(first, 99)
        rows.append(
            {
                "measure": "POST runs/ -> first SSE event",
                "runs": len(results),
                "rate /s": rate,
                "p50 ms": round(p50, 2),
                "p99 ms": round(p99, 2),
                "mean ms": round(statistics.fmean(first), 2),
                "POST alone p50/p99 ms": f"{pct(post, 50):.1f}/{pct(post, 99):.1f}",
                "worker part p50/p99 ms": "{:.1f}/{:.1f}".format(*worker_part[rate]),
                "target p50/p99 ms": f"{TARGET_P50_MS:g}/{TARGET_P99_MS:g}" if rate >= 50 else "",
                "web CONN_MAX_AGE": CONN_MAX_AGE,
                "load avg 1m": round(os.getloadavg()[0], 1),
                "ok": ("yes" if p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS else "NO")
                if rate >= 50
                else "",
            }
        )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
