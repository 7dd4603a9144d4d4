"""Concurrent streaming runs: tokens per second reaching SSE clients from 2 workers × 100 runs at 30 tokens/s.

Method: a throw-away database; the local OpenAI-compatible server (bench/_fake_openai.py,
its own process) streams each request at ``BENCH_STREAM_RATE`` tokens/s (30) for
``BENCH_STREAM_SECONDS`` (20 s) on an absolute schedule (token ``i`` at ``start + i /
rate``, never early), each token stamped with the time it was written.
``BENCH_STREAM_RUNS`` runs (200) of ``bench-llm-stream`` (a ``ToolCallingAgent.from_config``
on ``openai:bench-model``, bench/agents.py) are created with ``run_create``, one uvicorn
process serves one SSE client per run (``runs/<id>/events/stream/``), all opened before
``manage.py runagent --processes 2 --concurrency 100`` starts, so every run streams at
once through the whole path: the SDK in the worker, one ``assistant.delta`` event row per
token (batched writes + NOTIFY), the SSE listener, the frame.

Figures, over the steady window: on the server's clock, from ``WARM_UP`` (2 s) after the
last run's first token to the first run's last token, so every run is streaming and the
runs' start-up and completion work (claims, first requests; final message, status) fall
outside it.

- offered: the sum of each run's rate of writes in the window (200 × 30 = 6,000/s), each
  the slope of a least-squares line through its write times.
- delivered: the same tokens over the time they took to reach the clients, which is the
  window plus however much the lag (client arrival - server write) grew meanwhile; the
  growth is the slope of a least-squares line of lag against write time. Counting the
  frames that arrive between two instants instead swings by a percent or two with where
  those instants fall: frames arrive in bursts (one per event flush), and a run's last
  frames come late (its completion shares the worker's database threads), so the old
  count, from the last run's first arrival to the first run's last, ran 1% low. It is
  still shown ("arrivals counted / s") for comparison.
- the lag per token, and its median at the start and the end of the window.
- CPU of every process on the path, of the SSE clients (this process) and of the machine.

The delivered rate cannot exceed the offered one, so a second round offers more
(``BENCH_STREAM_HEADROOM_RATE`` tokens/s per run, 60: 12,000/s, 0 = no second round):
whether the runtime delivers at least 6,000 tokens/s does not then hang on a percent of
measurement noise around exactly 6,000.

    python -m bench llm_streaming_throughput
    BENCH_STREAM_DUMP=/tmp/stream.json ...     # every token's write and arrival time, per round
    BENCH_STREAM_PROFILE=/tmp/worker.json ...  # py-spy (speedscope) of the busiest worker process
"""

from __future__ import annotations

import asyncio
import bisect
import os
import subprocess
import time

import psutil

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
HEADROOM_RATE = float(os.environ.get("BENCH_STREAM_HEADROOM_RATE", "60"))
SECONDS = float(os.environ.get("BENCH_STREAM_SECONDS", "20"))
TARGET_TOKENS_PER_S = 6000.0
WARM_UP = 2.0  # seconds after the last run's first token, still digesting 200 runs' start-up
LLM_STREAM = "bench-llm-stream"  # bench/agents.py (not imported here: it needs Django set up)


def _create_runs(count: int, user, rate: float) -> list[str]:
    from runtime.services import run_create

    prompt = f"bench tokens={round(rate * SECONDS)} rate={rate:g}"
    return [
        str(run_create(agent_key=LLM_STREAM, messages=[{"role": "user", "content": prompt}], user=user)[0].pk)
        for _ in range(count)
    ]


def _postgres_cpu(url: str) -> float:
    """CPU of the benchmark database's backends so far (the worker's connections live the whole run)."""
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


def _busy_percent(before, after) -> float:
    """How much of the machine's CPU (all cores) was busy between two ``psutil.cpu_times()``."""
    spent = {name: getattr(after, name) - getattr(before, name) for name in after._fields}
    idle = spent["idle"] + spent.get("iowait", 0.0)
    total = sum(spent.values()) - spent.get("guest", 0.0) - spent.get("guest_nice", 0.0)
    return 100 * (total - idle) / total if total else 0.0


def main() -> list[dict]:
    rows = [_round(RATE)]
    if HEADROOM_RATE > 0:
        rows.append(_round(HEADROOM_RATE))
    return rows


def _round(rate: float) -> dict:
    with dedicated_database(prefix="benchstream") as url, fake_openai() as (base_url, fake):
        setup_django(url)
        from django.db import connection

        user, token = make_user_token()
        run_ids = _create_runs(RUNS, user, rate)
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
                profile = _per_round(os.environ.get("BENCH_STREAM_PROFILE"), rate)
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
                machine, own = psutil.cpu_times(), time.process_time()
                try:
                    await asyncio.gather(*(r.until_end(SECONDS * 3 + 60) for r in readers))
                finally:
                    state["uvicorn_cpu"] = cpu_seconds(uvicorn_procs) - state["uvicorn_cpu"]
                    state["worker_cpu"] = cpu_seconds(process_tree(state["worker"].pid))
                    state["fake_cpu"] = cpu_seconds([*process_tree(fake.pid)])
                    state["pg_cpu"] = _postgres_cpu(url)
                    state["client_cpu"] = time.process_time() - own
                    state["busy"] = _busy_percent(machine, psutil.cpu_times())
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
    dump = _per_round(os.environ.get("BENCH_STREAM_DUMP"), rate)
    if dump:
        import json

        with open(dump, "w") as out:
            json.dump({"rate": rate, "streams": [[r.stamps, r.arrivals] for r in readers]}, out)
    return _row(readers, state, rate)


def _per_round(path: str | None, rate: float) -> str | None:
    """``/tmp/x.json`` -> ``/tmp/x-30.json``: each round's own file."""
    if not path:
        return None
    root, ext = os.path.splitext(path)
    return f"{root}-{rate:g}{ext or '.json'}"


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y against x."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx


def _row(readers: list[DeltaReader], state: dict, rate: float) -> dict:
    # The steady window, on the server's clock (see the module docstring).
    wrote_from = max(r.stamps[0] for r in readers) + WARM_UP
    wrote_to = min(r.stamps[-1] for r in readers)
    window = wrote_to - wrote_from
    if window <= 1:
        raise RuntimeError(
            f"the runs barely overlapped ({window:.2f} s): too few workers or too slow a start"
        )
    steady: list[tuple[float, float]] = []  # (write time, lag) of every token written in the window
    offered = 0.0
    for r in readers:
        mine = [(s, a - s) for s, a in zip(r.stamps, r.arrivals, strict=True) if wrote_from <= s < wrote_to]
        steady += mine
        # each stream's own rate, from a line through its write times: counting tokens over the
        # window's length instead is off by up to a token per stream, and 200 streams that started
        # together are in phase, so those errors add up rather than cancel.
        if len(mine) > 1:
            offered += 1 / _slope([(index, stamp) for index, (stamp, _) in enumerate(mine)])
    # Those tokens reached the clients over ``window`` plus however much the lag grew meanwhile.
    drift = _slope(steady)
    delivered = offered / (1 + drift)
    # the older figure, for comparison: arrivals from the last run's first to the first run's last
    start = max(r.arrivals[0] for r in readers)
    end = min(r.arrivals[-1] for r in readers)
    arrivals = sorted(a for r in readers for a in r.arrivals)
    counted = (bisect.bisect_left(arrivals, end) - bisect.bisect_left(arrivals, start)) / (end - start)
    edge = min(2.0, window / 4)
    lag_start = [lag * 1000 for stamp, lag in steady if stamp < wrote_from + edge]
    lag_end = [lag * 1000 for stamp, lag in steady if stamp >= wrote_to - edge]
    lags = [(a - s) * 1000 for r in readers for a, s in zip(r.arrivals, r.stamps, strict=True)]
    total = len(arrivals)
    first, last = arrivals[0], arrivals[-1]
    elapsed = last - state["started"]
    worker_cpu = state["worker_cpu"]
    if delivered >= TARGET_TOKENS_PER_S:
        ok = "yes"
    elif delivered >= 0.99 * offered:
        ok = "keeps up (within 1% of offered)"
    else:
        ok = "NO"
    return {
        "measure": f"{PROCESSES} workers × {RUNS // PROCESSES} runs at {rate:g} tokens/s",
        "delivered tokens/s (steady)": round(delivered),
        "offered by the model server": round(offered),
        "target": f">= {TARGET_TOKENS_PER_S:,.0f}",
        "ok": ok,
        "lag growth ms/s": round(1000 * drift, 1),
        "arrivals counted / s": round(counted),
        "steady window s": round(window, 1),
        "tokens (whole run) / s": f"{total:,} / {last - first:.1f}",
        "lag p50/p99/max ms": f"{pct(lags, 50):.0f}/{pct(lags, 99):.0f}/{max(lags):.0f}",
        "lag p50 window start/end ms": f"{pct(lag_start, 50):.0f}/{pct(lag_end, 50):.0f}",
        "worker CPU s (% of a core)": f"{worker_cpu:.1f} ({100 * worker_cpu / elapsed:.0f}%)",
        "worker CPU ms / 1k tokens": round(1e6 * worker_cpu / total, 1),
        "uvicorn CPU s": round(state["uvicorn_cpu"], 1),
        "PostgreSQL CPU s": round(state["pg_cpu"], 1),
        "model server CPU s": round(state["fake_cpu"], 1),
        "SSE clients CPU s": round(state["client_cpu"], 1),
        "machine CPU busy %": round(state["busy"]),
        "load avg 1m": round(os.getloadavg()[0], 1),
    }


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
