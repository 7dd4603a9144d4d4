"""Concurrent streaming runs: tokens per second reaching SSE clients from 2 workers × 100 runs at 30 tokens/s.

Method: a throw-away database; the local OpenAI-compatible server (bench/_fake_openai.py,
its own process) streams each request at ``BENCH_STREAM_RATE`` tokens/s (30) for
``BENCH_STREAM_SECONDS`` (20 s), each token stamped with the time it was written.
``BENCH_STREAM_RUNS`` runs (200) of ``bench-llm-stream`` (a ``ToolCallingAgent.from_config``
on ``openai:bench-model``, bench/agents.py) are created with ``run_create``, one uvicorn
process serves one SSE client per run (``runs/<id>/events/stream/``), all opened before
``manage.py runagent --processes 2 --concurrency 100`` starts, so every run streams at
once through the whole path: the SDK in the worker, one ``assistant.delta`` event row per
token (batched writes + NOTIFY), the SSE listener, the frame.

Figures: delivered tokens/s over the window in which every run was streaming (from the
last run's first token to the first run's last token) next to what the server wrote in
that window (the offered load, 200 × 30 = 6,000/s); the delivery lag per token (client
arrival - server write); CPU of the worker processes and of uvicorn.

    python -m bench llm_streaming_throughput
"""

from __future__ import annotations

import asyncio
import bisect
import os
import subprocess
import time

from bench._deltas import DeltaReader
from bench._fake_openai import fake_openai
from bench._sse import env_int, make_user_token, open_many, pct, run_loop, uvicorn
from bench.common import (
    PROJECT_ROOT,
    PYTHON,
    cpu_seconds,
    dedicated_database,
    django_env,
    process_tree,
    setup_django,
    stop_process,
)

RUNS = env_int("BENCH_STREAM_RUNS", 200)
PROCESSES = env_int("BENCH_STREAM_PROCESSES", 2)
RATE = float(os.environ.get("BENCH_STREAM_RATE", "30"))
SECONDS = float(os.environ.get("BENCH_STREAM_SECONDS", "20"))
TARGET_TOKENS_PER_S = 6000.0
LLM_STREAM = "bench-llm-stream"  # bench/agents.py (not imported here: it needs Django set up)


def _create_runs(count: int, user) -> list[str]:
    from runtime.services import run_create

    prompt = f"bench tokens={round(RATE * SECONDS)} rate={RATE:g}"
    return [
        str(run_create(agent_key=LLM_STREAM, messages=[{"role": "user", "content": prompt}], user=user)[0].pk)
        for _ in range(count)
    ]


def _postgres_cpu(url: str) -> float:
    """CPU of the benchmark database's backends so far (the worker's connections live the whole run)."""
    import psutil
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        pids = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return cpu_seconds(procs)


def main() -> list[dict]:
    with dedicated_database(prefix="benchstream") as url, fake_openai() as (base_url, fake):
        setup_django(url)
        from django.db import connection

        user, token = make_user_token()
        run_ids = _create_runs(RUNS, user)
        connection.close()
        llm_env = {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench"}
        headers = {"Authorization": f"Token {token}"}
        with uvicorn(url, settings="bench._llm_settings", **llm_env) as server:
            paths = [f"/api/agents/runs/{run_id}/events/stream/" for run_id in run_ids]
            concurrency = -(-RUNS // PROCESSES)
            state: dict = {}

            async def watch() -> list[DeltaReader]:
                clients = await open_many(server.port, paths, headers)
                readers = [DeltaReader(client) for client in clients]
                state["worker"] = subprocess.Popen(
                    [PYTHON, "manage.py", "runagent", "--noreload"]
                    + ["--processes", str(PROCESSES), "--concurrency", str(concurrency)],
                    cwd=PROJECT_ROOT,
                    env=django_env(url, LOG_LEVEL="WARNING", **llm_env),
                )
                state["started"] = time.time()
                profile = os.environ.get("BENCH_STREAM_PROFILE")  # a path: py-spy one worker process
                if profile:
                    await asyncio.sleep(5)  # until the runs are streaming
                    busiest = max(process_tree(state["worker"].pid), key=lambda proc: cpu_seconds([proc]))
                    state["py-spy"] = subprocess.Popen(
                        [os.path.join(os.path.dirname(PYTHON), "py-spy"), "record", "--nonblocking"]
                        + [
                            "-d",
                            "10",
                            "-r",
                            "200",
                            "-f",
                            "speedscope",
                            "-o",
                            profile,
                            "-p",
                            str(busiest.pid),
                        ],
                        stdout=subprocess.DEVNULL,
                    )
                uvicorn_procs = process_tree(server.process.pid)
                state["uvicorn_cpu"] = cpu_seconds(uvicorn_procs)
                try:
                    await asyncio.gather(*(r.until_end(SECONDS * 3 + 60) for r in readers))
                finally:
                    state["uvicorn_cpu"] = cpu_seconds(uvicorn_procs) - state["uvicorn_cpu"]
                    state["worker_cpu"] = cpu_seconds(process_tree(state["worker"].pid))
                    state["fake_cpu"] = cpu_seconds([*process_tree(fake.pid)])
                    state["pg_cpu"] = _postgres_cpu(url)
                    for client in clients:
                        client.close()
                return readers

            try:
                readers = run_loop(watch())
            finally:
                for name in ("py-spy", "worker"):
                    if name in state:
                        stop_process(state[name])
    failed = [r.ended.decode() for r in readers if r.ended != b"run.succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} runs did not succeed: {sorted(set(failed))}")
    return _rows(readers, state)


def _rows(readers: list[DeltaReader], state: dict) -> list[dict]:
    start = max(r.arrivals[0] for r in readers)
    end = min(r.arrivals[-1] for r in readers)
    arrivals = sorted(a for r in readers for a in r.arrivals)
    stamps = sorted(s for r in readers for s in r.stamps)
    total = len(arrivals)
    first, last = arrivals[0], arrivals[-1]
    window = end - start
    if window <= 1:
        raise RuntimeError(
            f"the runs barely overlapped ({window:.2f} s): too few workers or too slow a start"
        )
    delivered = (bisect.bisect_right(arrivals, end) - bisect.bisect_left(arrivals, start)) / window
    # the server's own window (when it was writing every stream), not shifted by the delivery lag
    wrote_from, wrote_to = max(r.stamps[0] for r in readers), min(r.stamps[-1] for r in readers)
    offered = (bisect.bisect_right(stamps, wrote_to) - bisect.bisect_left(stamps, wrote_from)) / max(
        wrote_to - wrote_from, 1e-9
    )
    lags = [(a - s) * 1000 for r in readers for a, s in zip(r.arrivals, r.stamps, strict=True)]
    worker_cpu = state["worker_cpu"]
    return [
        {
            "measure": f"{PROCESSES} workers × {RUNS // PROCESSES} runs at {RATE:g} tokens/s",
            "delivered tokens/s (all streaming)": round(delivered),
            "offered by the model server": round(offered),
            "target": f">= {TARGET_TOKENS_PER_S:,.0f}",
            "ok": "yes" if delivered >= TARGET_TOKENS_PER_S else "NO",
            "tokens (whole run) / s": f"{total:,} / {last - first:.1f}",
            "lag p50/p99/max ms": f"{pct(lags, 50):.1f}/{pct(lags, 99):.1f}/{max(lags):.0f}",
            "worker CPU s (% of a core)": f"{worker_cpu:.1f} ({100 * worker_cpu / (last - state['started']):.0f}%)",
            "worker CPU ms / 1k tokens": round(1e6 * worker_cpu / total, 1),
            "uvicorn CPU s": round(state["uvicorn_cpu"], 1),
            "PostgreSQL CPU s": round(state["pg_cpu"], 1),
            "model server CPU s": round(state["fake_cpu"], 1),
            "load avg 1m": round(os.getloadavg()[0], 1),
        }
    ]


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
