"""One event fanned out to 1,000 connected SSE clients: delivery latency per client.

Method: one uvicorn process on a throw-away database; 1,000 streams (one
process of asyncio clients) watch the same run. The benchmark then writes
``BENCH_SSE_FANOUT_EVENTS`` events one at a time through the real write path
(``runtime.events.append_events``: seq reservation, insert, NOTIFY in one
transaction), 300 ms apart; with 1 and with 2 uvicorn worker processes (each has
its own listener; the kernel spreads the connections over them). Delivery
latency of an event to a client = the wall-clock time its frame arrived at that client minus the time just before
the write began (same machine, same clock). Figures are over every
(event, client) pair. The clients share the 2 cores with the server, so the
client's own reading time is included: this is an upper bound.

    python -m bench sse_fanout    (BENCH_SSE_FANOUT_N clients, default 1000)
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx

from bench._sse import env_int, make_user_token, open_many, pct, run_loop, uvicorn
from bench.common import dedicated_database, setup_django

N = env_int("BENCH_SSE_FANOUT_N", 1000)
EVENTS = env_int("BENCH_SSE_FANOUT_EVENTS", 20)
TARGET_P99_MS = 50.0
# the web process as we recommend running it: persistent connections in its API threads
CONN_MAX_AGE = os.environ.get("DATABASE_CONN_MAX_AGE", "60")
# uvicorn worker processes to compare (each has its own listener; clients spread over them)
WORKERS = [int(n) for n in os.environ.get("BENCH_SSE_WORKERS", "1,2").split(",")]


def _measure(url: str, run_id: str, token: str, workers: int) -> tuple[list[float], float, dict]:
    from runtime.events import append_events

    path = f"/api/agents/runs/{run_id}/events/stream/"
    with uvicorn(url, workers=workers, DATABASE_CONN_MAX_AGE=CONN_MAX_AGE) as server:

        async def scenario() -> tuple[list[float], float, dict]:
            started = time.perf_counter()
            clients = await open_many(server.port, [path] * N, {"Authorization": f"Token {token}"})
            opened = time.perf_counter() - started
            latencies: list[float] = []
            for index in range(EVENTS):
                marker = f'"k":"evt-{workers}-{index}"'.encode()
                waiting = [asyncio.create_task(client.wait_for(marker)) for client in clients]
                await asyncio.sleep(0.05)  # every reader is parked on its socket before the write
                before = time.time()
                await asyncio.to_thread(
                    append_events,
                    run_id,
                    [("assistant.delta", {"k": f"evt-{workers}-{index}"})],
                    attempt=1,
                    lease_token=None,
                )
                arrived = await asyncio.gather(*waiting)
                latencies.extend(t - before for t in arrived)
                await asyncio.sleep(0.25)
            # the server's own view (of the process that answers): notification -> frame written
            async with httpx.AsyncClient(base_url=server.base) as api:
                response = await api.get(
                    "/api/agents/streams/stats/", headers={"Authorization": f"Token {token}"}
                )
            for client in clients:
                client.close()
            return latencies, opened, response.json()

        return run_loop(scenario())


def main() -> list[dict]:
    with dedicated_database(prefix="benchfan") as url:
        setup_django(url)
        from django.db import connection

        from runtime.services import run_create

        user, token = make_user_token()
        run = run_create(agent_key="bench-noop", messages=[{"role": "user", "content": "fan"}], user=user)[0]
        connection.close()
        results = {workers: _measure(url, str(run.pk), token, workers) for workers in WORKERS}
    rows = []
    for workers, (latencies, opened, stats) in results.items():
        p50, p99 = pct(latencies, 50) * 1000, pct(latencies, 99) * 1000
        rows.append(
            {
                "uvicorn workers": workers,
                "clients": N,
                "events": EVENTS,
                "write -> frame at client p50 ms": round(p50, 2),
                "p99 ms": round(p99, 2),
                "max ms": round(max(latencies) * 1000, 2),
                "server part p50/p99 ms": f"{stats.get('delivery_p50_ms')}/{stats.get('delivery_p99_ms')}",
                "target p99 ms": TARGET_P99_MS,
                "ok": "yes" if p99 <= TARGET_P99_MS else "NO",
                "load avg 1m": round(os.getloadavg()[0], 1),
                "open all (s)": round(opened, 2),
            }
        )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
