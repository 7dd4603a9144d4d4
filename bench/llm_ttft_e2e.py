"""Time to first token, end to end: the runtime (worker + event log + SSE) next to a plain Django proxy view.

Method: a throw-away database, one uvicorn process (bench/_llm_settings.py: the project
plus ``/bench/llm-proxy/``), one ``manage.py runagent`` worker, and a local
OpenAI-compatible server in its own process (bench/_fake_openai.py) that answers at once
and writes into the first text piece the time it wrote its first byte. Both the worker
and the proxy reach it through ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``.

- runtime: ``POST /api/agents/runs/`` for ``bench-llm-ttft`` (a ToolCallingAgent on
  ``openai:bench-model``, bench/agents.py), open ``runs/<id>/events/stream/``, wait for
  the first ``assistant.delta``. The agent waits 0.1 s before calling the model so the
  stream is open first (a sample whose stream opened after the model's first byte is
  dropped and counted). Path measured: SDK stream parsing in the worker, the event write
  + NOTIFY, the SSE process's listener, backlog read and frame.
- plain proxy: ``GET /bench/llm-proxy/``, an async view streaming the same model with the
  ``openai`` SDK and forwarding each piece as an SSE frame.

Figure per request = client arrival of the first delta - the server's first byte.
Requests alternate between the two so drift in machine load hits both alike.

    python -m bench llm_ttft_e2e     (BENCH_LLM_TTFT_E2E_N requests each, default 200)
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

N = env_int("BENCH_LLM_TTFT_E2E_N", 200)
WARMUP = 10
PROMPT = "bench tokens=5 rate=0"
TARGET_P50_MS, TARGET_P99_MS = 25.0, 100.0
LLM_TTFT = "bench-llm-ttft"  # bench/agents.py (not imported here: it needs Django set up)


async def _measure(port: int, headers: dict[str, str]) -> tuple[list[float], list[float], int]:
    import httpx

    async def proxy_once() -> float:
        client = await open_stream(port, "/bench/llm-proxy/?prompt=" + PROMPT.replace(" ", "%20"))
        try:
            reader = DeltaReader(client)
            await reader.until_first_delta(30)
            await reader.until_end(30)  # read the whole answer, as the runtime's client does
            if reader.ended != b"done":
                raise RuntimeError(f"the proxy's stream ended with {reader.ended.decode()}")
            return reader.arrivals[0] - reader.stamps[0]
        finally:
            client.close()

    async def runtime_once(api: httpx.AsyncClient) -> float | None:
        response = await api.post(
            "/api/agents/runs/",
            json={"agent_key": LLM_TTFT, "messages": [{"role": "user", "content": PROMPT}]},
        )
        response.raise_for_status()
        path = f"/api/agents/runs/{response.json()['id']}/events/stream/"
        client = await open_stream(port, path, headers)
        opened = time.time()
        try:
            reader = DeltaReader(client)
            await reader.until_first_delta(30)
            first = reader.arrivals[0] - reader.stamps[0]
            await reader.until_end(30)  # one run at a time: the next starts on an idle worker
            if reader.ended != b"run.succeeded":
                raise RuntimeError(f"bench run ended with {reader.ended.decode()}")
            return first if opened < reader.stamps[0] else None
        finally:
            client.close()

    proxy: list[float] = []
    runtime: list[float] = []
    late = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as api:
        for _ in range(WARMUP):
            await proxy_once()
            await runtime_once(api)
        for _ in range(N):
            proxy.append(await proxy_once())
            sample = await runtime_once(api)
            if sample is None:
                late += 1
            else:
                runtime.append(sample)
    return runtime, proxy, late


def main() -> list[dict]:
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    with dedicated_database(prefix="benchttft") as url, fake_openai() as (base_url, _fake):
        setup_django(url)
        from django.db import connection

        _, token = make_user_token()
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
                runtime, proxy, late = run_loop(_measure(server.port, headers))
        finally:
            stop_process(worker)
    runtime_ms = [v * 1000 for v in runtime]
    proxy_ms = [v * 1000 for v in proxy]
    rows = []
    for name, fn, target in (
        ("p50", lambda v: pct(v, 50), TARGET_P50_MS),
        ("p99", lambda v: pct(v, 99), TARGET_P99_MS),
        ("mean", statistics.fmean, None),
    ):
        ours, plain = fn(runtime_ms), fn(proxy_ms)
        rows.append(
            {
                "first token at the SSE client, ms after the model's first byte": name,
                "runtime (runagent + SSE)": round(ours, 2),
                "plain Django proxy (openai SDK)": round(plain, 2),
                "runtime overhead": round(ours - plain, 2),
                "target overhead": f"<= {target:g}" if target else "",
                "ok": ("yes" if ours - plain <= target else "NO") if target else "",
            }
        )
    rows.append(
        {
            "first token at the SSE client, ms after the model's first byte": "samples",
            "runtime (runagent + SSE)": f"{len(runtime)} ({late} dropped: stream opened late)",
            "plain Django proxy (openai SDK)": len(proxy),
            "runtime overhead": "",
            "target overhead": "",
            "ok": f"load avg 1m {os.getloadavg()[0]:.1f}",
        }
    )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
