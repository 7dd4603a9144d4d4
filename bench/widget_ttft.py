"""First token through the widget vs the runtime API stream the playground reads, same agent.

Method as ``llm_ttft_e2e`` (a throw-away database, one uvicorn, one ``runagent`` worker, the
local fake OpenAI server that stamps its first byte; the code agent ``bench-llm-ttft`` waits
0.1 s so the stream is open first). Requests alternate between:

- widget: ``POST /api/widget/messages/`` with a visitor token and the page's ``Origin``, then
  ``GET /api/widget/runs/<id>/stream/?anonymous_token=`` (origin check, then the runtime's stream);
- runtime API: ``POST /api/agents/runs/`` with a user token, then
  ``GET /api/agents/runs/<id>/events/stream/`` (the stream the builder's playground pane reads).

Figure = client arrival of the first delta - the model's first byte. Target: the widget within
10 ms p50 of the playground's stream.

    python -m bench widget_ttft     (BENCH_WIDGET_TTFT_N requests each, default 100)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time

from bench._deltas import DeltaReader
from bench._fake_openai import fake_openai
from bench._sse import env_int, make_user_token, open_stream, pct, run_loop, uvicorn
from bench.common import (
    PROJECT_ROOT,
    PYTHON,
    dedicated_database,
    django_env,
    setup_django,
    stop_process,
    wait_until,
)

N = env_int("BENCH_WIDGET_TTFT_N", 100)
WARMUP = 10
PROMPT = "bench tokens=5 rate=0"
TARGET_P50_MS = 10.0
AGENT = "bench-llm-ttft"  # bench/agents.py
ORIGIN = "https://shop.example.com"


async def _measure(port: int, user_headers: dict[str, str], widget_token: str) -> tuple[list, list, int]:
    import httpx

    late = 0

    async def once(api: httpx.AsyncClient, post: str, body: dict, stream: str, headers: dict) -> float | None:
        nonlocal late
        response = await api.post(post, json=body, headers=headers)
        response.raise_for_status()
        data = response.json()
        run_id = data.get("run_id") or data["id"]
        client = await open_stream(port, stream.format(run_id=run_id), headers)
        opened = time.time()
        try:
            reader = DeltaReader(client)
            await reader.until_first_delta(30)
            first = reader.arrivals[0] - reader.stamps[0]
            await reader.until_end(30)
            if reader.ended != b"run.succeeded":
                raise RuntimeError(f"bench run ended with {reader.ended.decode()}")
            if opened >= reader.stamps[0]:
                late += 1
                return None
            return first
        finally:
            client.close()

    widget_headers = {"X-Anonymous-Token": widget_token, "Origin": ORIGIN}
    widget_args = (
        "/api/widget/messages/",
        {"message": PROMPT},
        "/api/widget/runs/{run_id}/stream/?anonymous_token=" + widget_token,
        widget_headers,
    )
    api_args = (
        "/api/agents/runs/",
        {"agent_key": AGENT, "messages": [{"role": "user", "content": PROMPT}]},
        "/api/agents/runs/{run_id}/events/stream/",
        user_headers,
    )
    widget: list[float] = []
    api_stream: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
        for _ in range(WARMUP):
            await once(api, *widget_args)
            await once(api, *api_args)
        late = 0
        for _ in range(N):
            for args, into in ((widget_args, widget), (api_args, api_stream)):
                sample = await once(api, *args)
                if sample is not None:
                    into.append(sample * 1000)
    return widget, api_stream, late


def main() -> list[dict]:
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    with dedicated_database(prefix="benchwttft") as url, fake_openai() as (base_url, _fake):
        setup_django(url, WIDGET_SESSION_MINT_RATE="100000/min")
        from django.contrib.auth import get_user_model
        from django.db import connection

        from runtime.channels.services import widget_channel_create
        from runtime.channels.visitors import visitor_session_mint

        user, token = make_user_token()
        admin = get_user_model().objects.create_superuser("bench-admin", "b@example.com", "x" * 16)
        channel = widget_channel_create(
            agent_key=AGENT, user=admin, allowed_origins=[ORIGIN], messages_per_visitor_per_day=10_000
        )
        session, _ = visitor_session_mint(publishable_key=channel.publishable_key, origin=ORIGIN)
        connection.close()
        llm_env = {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench", "BENCH_TTFT_GATE": "0.1"}
        worker = subprocess.Popen(
            [PYTHON, "manage.py", "runagent", "--noreload", "--concurrency", "10"],
            cwd=PROJECT_ROOT,
            env=django_env(url, LOG_LEVEL="WARNING", **llm_env),
        )
        try:
            with uvicorn(url, settings="bench._llm_settings", **llm_env) as server:
                headers = {"Authorization": f"Token {token}"}
                wait_until(
                    lambda: (
                        httpx.get(f"{server.base}/api/agents/models/", headers=headers).status_code == 200
                    ),
                    timeout=30,
                    what="the API",
                )
                widget, api_stream, late = run_loop(_measure(server.port, headers, session.token))
        finally:
            stop_process(worker)
    rows = []
    for name, fn in (
        ("p50", lambda v: pct(v, 50)),
        ("p99", lambda v: pct(v, 99)),
        ("mean", statistics.fmean),
    ):
        ours, peer = fn(widget), fn(api_stream)
        rows.append(
            {
                "first token, ms after the model's first byte": name,
                "widget": round(ours, 2),
                "runtime API stream (playground's)": round(peer, 2),
                "difference": round(ours - peer, 2),
                "target": f"<= {TARGET_P50_MS:g} (p50)" if name == "p50" else "",
                "ok": ("yes" if ours - peer <= TARGET_P50_MS else "NO") if name == "p50" else "",
            }
        )
    rows.append(
        {
            "first token, ms after the model's first byte": "samples",
            "widget": len(widget),
            "runtime API stream (playground's)": len(api_stream),
            "difference": f"{late} dropped (stream opened late)",
            "target": "",
            "ok": f"load avg 1m {os.getloadavg()[0]:.1f}",
        }
    )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
