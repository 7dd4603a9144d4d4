"""Cost of 1,000 idle SSE connections on one uvicorn process, next to a plain Django stream.

Method: a fresh uvicorn process per endpoint, on a throw-away database. Open 20
streams to warm up, read the process RSS, open 1,000 more (each waits for the
first frame, so every one is established and subscribed), wait a second for the
heap to settle, read RSS again. Per connection = RSS delta / 1,000. Database
connections = client connections to the benchmark database while the 20 warm-up
streams are idle, then while all 1,020 are: a stream holds none, so the two are
equal; what there is belongs to the process (its listener's LISTEN and reader
connections, and the API threads' persistent connections, at most
``AGENT_API_THREADS``). The runtime's streams each watch their own queued run and authenticate
with a token; the plain endpoint is an async ``StreamingHttpResponse`` that only
sends keep-alives (``bench/_sse_urls.py``).

    python -m bench sse_idle    (BENCH_SSE_IDLE_N connections, default 1000)
"""

from __future__ import annotations

import os

from bench._sse import env_int, idle_streams, make_user_token
from bench.common import dedicated_database, setup_django

N = env_int("BENCH_SSE_IDLE_N", 1000)
WARM = 20
TARGET_KB = 64


def main() -> list[dict]:
    with dedicated_database(prefix="benchsse") as url:
        setup_django(url)
        from runtime.services import run_create

        user, token = make_user_token()
        runs = [
            run_create(agent_key="bench-noop", messages=[{"role": "user", "content": "idle"}], user=user)[0]
            for _ in range(N + WARM)
        ]
        headers = {"Authorization": f"Token {token}"}
        from django.db import connection

        connection.close()  # so the count below is the server's connections only
        ours = idle_streams(
            url, [f"/api/agents/runs/{run.pk}/events/stream/" for run in runs], headers, n=N, warm=WARM
        )
        plain = idle_streams(url, ["/bench/plain-stream/"] * (N + WARM), {}, n=N, warm=WARM)
    rows = []
    for name, figures in (("runtime async_event_stream", ours), ("plain async StreamingHttpResponse", plain)):
        rows.append(
            {
                "endpoint": name,
                "connections": N,
                "KB per connection": round(figures["per_conn_kb"], 1),
                "target KB": TARGET_KB if name.startswith("runtime") else "",
                f"DB connections ({WARM} / {WARM + N} streams)": figures["db_conns"],
                "open all (s)": round(figures["open_s"], 2),
                "process RSS (MB)": round(figures["rss_mb"], 1),
                "load avg 1m": round(os.getloadavg()[0], 1),
            }
        )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
