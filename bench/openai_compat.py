"""``/v1/chat/completions``: time to first token through the OpenAI-compatible endpoint, next to
calling the same model directly.

Method: a throw-away database, one uvicorn process, one ``manage.py runagent`` worker and the
paced fake OpenAI server (bench/_fake_openai.py, its own process; rate 0: it answers at once).
Both clients are the ``openai`` SDK (AsyncOpenAI, streaming):

- direct: ``chat.completions.create(model="bench-model", stream=True)`` against the fake server;
- ours: the same call against ``/v1`` with an API key, ``model="bench-llm-stream"`` (a
  ToolCallingAgent on that model, bench/agents.py): key check, rate limit, budget reservation,
  run insert + enqueue, a worker's claim, the provider stream, the event write + NOTIFY, the
  listener, and the chunk the endpoint writes.

Figure per request = first content chunk at the client - request sent. Requests alternate so
machine load hits both alike. The agent has a daily budget, so the reservation is measured too.

    python -m bench openai_compat     (BENCH_OPENAI_COMPAT_N requests each, default 200)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time

from bench._fake_openai import fake_openai
from bench._sse import env_int, pct, run_loop, uvicorn
from bench.common import (
    PROJECT_ROOT,
    PYTHON,
    dedicated_database,
    django_env,
    setup_django,
    stop_process,
    wait_until,
)

N = env_int("BENCH_OPENAI_COMPAT_N", 200)
WARMUP = 10
PROMPT = "bench tokens=5 rate=0"
TARGET_P50_MS = 25.0
AGENT = "bench-llm-stream"  # bench/agents.py


async def _first_token(client, model: str) -> float:
    started = time.perf_counter()
    first = None
    stream = await client.chat.completions.create(
        model=model, stream=True, messages=[{"role": "user", "content": PROMPT}]
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"{model}: no text came back")
    return first


async def _measure(ours_url: str, direct_url: str, token: str) -> tuple[list[float], list[float]]:
    import openai

    ours_client = openai.AsyncOpenAI(base_url=ours_url, api_key=token, max_retries=0)
    direct_client = openai.AsyncOpenAI(base_url=direct_url, api_key="sk-bench", max_retries=0)
    ours: list[float] = []
    direct: list[float] = []
    for _ in range(WARMUP):
        await _first_token(direct_client, "bench-model")
        await _first_token(ours_client, AGENT)
    for _ in range(N):
        direct.append(await _first_token(direct_client, "bench-model"))
        ours.append(await _first_token(ours_client, AGENT))
    await ours_client.close()
    await direct_client.close()
    return ours, direct


def main() -> list[dict]:
    import logging

    import httpx

    for name in ("httpx", "httpx2", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with dedicated_database(prefix="benchoai") as url, fake_openai() as (base_url, _fake):
        setup_django(url)
        from django.contrib.auth import get_user_model
        from django.db import connection

        from runtime.channels.api_keys import agent_budget_set, api_key_create

        admin = get_user_model().objects.create_superuser("bench-admin", "b@example.com", "pw-bench-12345")
        _, token = api_key_create(name="bench", agent_keys=[AGENT], user=admin, requests_per_minute=10_000)
        agent_budget_set(agent_key=AGENT, user=admin, daily_budget_usd="1000")
        connection.close()
        llm_env = {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench"}
        worker = subprocess.Popen(
            [PYTHON, "manage.py", "runagent", "--noreload", "--concurrency", "10"],
            cwd=PROJECT_ROOT,
            env=django_env(url, LOG_LEVEL="WARNING", **llm_env),
        )
        try:
            with uvicorn(url, settings="bench._llm_settings", **llm_env) as server:
                headers = {"Authorization": f"Bearer {token}"}
                wait_until(
                    lambda: httpx.get(f"{server.base}/v1/models", headers=headers).status_code == 200,
                    timeout=30,
                    what="the /v1 endpoint",
                )
                ours, direct = run_loop(_measure(f"{server.base}/v1", base_url, token))
        finally:
            stop_process(worker)
    ours_ms = [v * 1000 for v in ours]
    direct_ms = [v * 1000 for v in direct]
    rows = []
    for name, fn, target in (
        ("p50", lambda v: pct(v, 50), TARGET_P50_MS),
        ("p90", lambda v: pct(v, 90), None),
        ("p99", lambda v: pct(v, 99), None),
        ("mean", statistics.fmean, None),
    ):
        mine, plain = fn(ours_ms), fn(direct_ms)
        rows.append(
            {
                "time to first token, ms (openai SDK, streaming)": name,
                "/v1/chat/completions (agent, run, worker)": round(mine, 2),
                "the model directly": round(plain, 2),
                "overhead": round(mine - plain, 2),
                "target overhead": f"<= {target:g}" if target else "",
                "ok": ("yes" if mine - plain <= target else "NO") if target else "",
            }
        )
    rows.append(
        {
            "time to first token, ms (openai SDK, streaming)": "samples",
            "/v1/chat/completions (agent, run, worker)": len(ours),
            "the model directly": len(direct),
            "overhead": "",
            "target overhead": "",
            "ok": f"load avg 1m {os.getloadavg()[0]:.1f}",
        }
    )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
