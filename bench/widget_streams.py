"""1,000 concurrent widget streams: memory per connection and database connections held.

Method (as ``sse_idle``, through the widget's own path): on a throw-away database, 1,020 widget
visitors each mint a visitor token (``POST /api/widget/session/``, in-process) and send one
message to a published agent that no worker answers (``POST /api/widget/messages/``), so each has
a queued run. A fresh uvicorn process then serves the streams: 20 visitors open
``/api/widget/runs/<run>/stream/?anonymous_token=...`` with their page's ``Origin`` (the widget's
origin check and token lookup run for each), the process RSS is read, 1,000 more open (each
waits for its first frame, so every one is established and subscribed), and RSS is read again.
Per connection = RSS delta / 1,000. Database connections = client connections to the benchmark
database (``pg_stat_activity``) with the 20 warm-up streams open, then with all 1,020.

Peers, each in its own fresh uvicorn in the same run: the runtime's own stream for the same kind
of queued run with a user's API token (what ``sse_idle`` measures), and a plain async Django
``StreamingHttpResponse`` that only sends keep-alives (``bench/_sse_urls.py``).

    python -m bench widget_streams    (BENCH_WIDGET_STREAMS_N visitors, default 1000)
"""

from __future__ import annotations

import os

from bench._sse import env_int, idle_streams, make_user_token
from bench.common import dedicated_database, setup_django

N = env_int("BENCH_WIDGET_STREAMS_N", 1000)
WARM = 20
ORIGIN = "http://127.0.0.1"
AGENT = "bench-noop"


def _visitors(count: int) -> list[tuple[str, str]]:
    """``count`` widget visitors, each with one queued run: (token, run id)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from runtime.channels.models import WidgetChannel

    superuser = get_user_model().objects.create_superuser("bench-widget-owner", "o@example.com", "x")
    from runtime.channels.services import widget_channel_create

    channel = widget_channel_create(agent_key=AGENT, user=superuser, allowed_origins=[ORIGIN])
    assert WidgetChannel.objects.filter(pk=channel.pk, enabled=True).exists()
    client = Client()
    visitors = []
    for n in range(count):
        minted = client.post(
            "/api/widget/session/",
            {"key": channel.publishable_key},
            content_type="application/json",
            HTTP_ORIGIN=ORIGIN,
        )
        assert minted.status_code == 201, minted.content
        token = minted.json()["token"]
        sent = client.post(
            "/api/widget/messages/",
            {"message": f"visitor {n} waits"},
            content_type="application/json",
            HTTP_ORIGIN=ORIGIN,
            HTTP_X_ANONYMOUS_TOKEN=token,
        )
        assert sent.status_code == 201, sent.content
        visitors.append((token, sent.json()["run_id"]))
    return visitors


def main() -> list[dict]:
    with dedicated_database(prefix="benchws") as url:
        setup_django(
            url,
            ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
            WIDGET_SESSION_MINT_RATE="100000/min",
        )
        from django.db import connection

        from runtime.services import run_create

        visitors = _visitors(N + WARM)
        user, token = make_user_token()
        runs = [
            run_create(agent_key=AGENT, messages=[{"role": "user", "content": "idle"}], user=user)[0]
            for _ in range(N + WARM)
        ]
        connection.close()  # so the counts below are the server's connections only
        widget = idle_streams(
            url,
            [f"/api/widget/runs/{run}/stream/?anonymous_token={tok}" for tok, run in visitors],
            {"Origin": ORIGIN},
            n=N,
            warm=WARM,
        )
        runtime = idle_streams(
            url,
            [f"/api/agents/runs/{run.pk}/events/stream/" for run in runs],
            {"Authorization": f"Token {token}"},
            n=N,
            warm=WARM,
        )
        plain = idle_streams(url, ["/bench/plain-stream/"] * (N + WARM), {}, n=N, warm=WARM)
        config = _db_config(url)
    rows = []
    for name, figures in (
        ("widget stream (visitor token + Origin check)", widget),
        ("runtime stream, user token (peer, as sse_idle)", runtime),
        ("plain async StreamingHttpResponse (peer)", plain),
    ):
        rows.append(
            {
                "endpoint": name,
                "connections": N,
                "KB per connection": round(figures["per_conn_kb"], 1),
                f"DB connections ({WARM} / {WARM + N} streams)": figures["db_conns"],
                "open all (s)": round(figures["open_s"], 2),
                "process RSS (MB)": round(figures["rss_mb"], 1),
                "load avg 1m": round(os.getloadavg()[0], 1),
                "database": config,
            }
        )
    return rows


def _db_config(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        fsync = conn.execute("SHOW fsync").fetchone()[0]
        sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    return f"PostgreSQL {version}, fsync={fsync}, synchronous_commit={sync}"


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
