"""Retrieval's added time to first token: the same builder agent with and without automatic knowledge.

Method: a throw-away database, one uvicorn, one ``manage.py runagent`` worker, and the local
fake OpenAI server (bench/_fake_openai.py, its own process) that answers at once and writes the
time of its first byte into the first text piece. Two published builder agents, identical
(same prompt, model ``openai:bench-model``) except that one has a knowledge base attached in
automatic mode: ``KB_CHUNKS`` passages (rag_search's Zipf prose, offline ``local`` model
vectors), so before the model is called the worker embeds the question, runs the hybrid search,
records the ``retrieval`` event and puts the passages in the prompt.

Per request, alternating between the two agents: ``POST /api/agents/runs/`` (user token), open
``runs/<id>/events/stream/``, read to the end. Figures: POST sent -> first ``assistant.delta``
at the client (the whole path a user waits through), and POST sent -> the model's first byte
(the stamp; independent of when the stream was opened). The difference between the agents is
what retrieval adds; the search's own time comes from the ``retrieval`` events.

    python -m bench rag_ttft   (BENCH_RAG_TTFT_N requests each, default 100; BENCH_RAG_TTFT_CHUNKS, 10000)
"""

from __future__ import annotations

import os
import random
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

TIME_LIMIT = 1200  # seconds for `python -m bench` (filling its base takes minutes when busy)

N = env_int("BENCH_RAG_TTFT_N", 100)
KB_CHUNKS = env_int("BENCH_RAG_TTFT_CHUNKS", 10_000)
WARMUP = 10
PLAIN, KNOWING = "bench-plain", "bench-knowing"


def _agents(owner) -> None:
    from bench.rag_search import _fill
    from builder.services import agent_create, agent_publish
    from builder.services.knowledge import knowledge_attach
    from rag.services import knowledge_base_create

    base = knowledge_base_create(owner=owner, name="Handbook", embedding_model="local")
    _fill(base, random.Random(5), KB_CHUNKS)
    config = {"system_prompt": "You answer briefly.", "model": "openai:bench-model"}
    for slug in (PLAIN, KNOWING):
        agent = agent_create(owner=owner, slug=slug, name=slug, config=config)
        if slug == KNOWING:
            knowledge_attach(target=agent, user=owner, knowledge_bases=[base], mode="auto")
        agent_publish(agent=agent, user=owner)


async def _measure(port: int, headers: dict[str, str], questions: list[str]) -> dict[str, dict]:
    import httpx

    results: dict[str, dict[str, list[float]]] = {
        key: {"first_delta": [], "model_byte": []} for key in (PLAIN, KNOWING)
    }

    async def once(api: httpx.AsyncClient, agent: str, question: str) -> tuple[float, float]:
        prompt = f"{question} bench tokens=5 rate=0"
        posted = time.time()
        response = await api.post(
            "/api/agents/runs/",
            json={"agent_key": agent, "messages": [{"role": "user", "content": prompt}]},
        )
        response.raise_for_status()
        client = await open_stream(port, f"/api/agents/runs/{response.json()['id']}/events/stream/", headers)
        try:
            reader = DeltaReader(client)
            await reader.until_first_delta(30)
            await reader.until_end(30)  # one run at a time: the next starts on an idle worker
            if reader.ended != b"run.succeeded":
                raise RuntimeError(f"bench run ended with {reader.ended.decode()}")
            return reader.arrivals[0] - posted, reader.stamps[0] - posted
        finally:
            client.close()

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as api:
        for question in questions[:WARMUP]:
            for agent in (PLAIN, KNOWING):
                await once(api, agent, question)
        for index, question in enumerate(questions[WARMUP:]):
            order = (PLAIN, KNOWING) if index % 2 == 0 else (KNOWING, PLAIN)
            for agent in order:
                first, byte = await once(api, agent, question)
                results[agent]["first_delta"].append(first * 1000)
                results[agent]["model_byte"].append(byte * 1000)
    return results


def _search_ms() -> list[float]:
    from runtime.models import AgentEvent

    payloads = (
        AgentEvent.objects.filter(event_type="retrieval").order_by("id").values_list("payload", flat=True)
    )
    return [float(p["elapsed_ms"]) for p in payloads][WARMUP:]  # the first loads the offline model


def main() -> list[dict]:
    import logging

    import httpx

    from bench.rag_search import _words

    logging.getLogger("httpx").setLevel(logging.WARNING)
    with dedicated_database(prefix="benchragttft") as url, fake_openai() as (base_url, _fake):
        setup_django(url)
        from django.db import connection

        owner, token = make_user_token()
        started = time.perf_counter()
        _agents(owner)
        fill_s = time.perf_counter() - started
        connection.close()
        rng = random.Random(9)
        questions = [" ".join(_words(rng, 6)) + "?" for _ in range(WARMUP + N)]
        llm_env = {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench"}
        worker = subprocess.Popen(
            [PYTHON, "manage.py", "runagent", "--noreload"],
            cwd=PROJECT_ROOT,
            env=django_env(url, LOG_LEVEL="WARNING", **llm_env),
        )
        try:
            with uvicorn(url, settings="bench._llm_settings", **llm_env) as server:
                headers = {"Authorization": f"Token {token}"}

                def api_up() -> bool:
                    try:  # the first request imports the API's views: slow on a busy machine
                        response = httpx.get(f"{server.base}/api/agents/models/", headers=headers, timeout=30)
                    except httpx.HTTPError:
                        return False
                    return response.status_code == 200

                wait_until(api_up, timeout=90, what="the API")
                results = run_loop(_measure(server.port, headers, questions))
        finally:
            stop_process(worker)
        search_ms = _search_ms()
        connection.close()
    load = os.getloadavg()[0]
    rows = []
    for measure, label in (
        ("first_delta", "POST -> first assistant.delta at the SSE client"),
        ("model_byte", "POST -> the model's first byte"),
    ):
        plain, knowing = results[PLAIN][measure], results[KNOWING][measure]
        for name, q in (("p50", 50), ("p99", 99)):
            rows.append(
                {
                    "ms": f"{label}, {name}",
                    "without knowledge": f"{pct(plain, q):.1f}",
                    f"with automatic retrieval ({KB_CHUNKS:,} chunks)": f"{pct(knowing, q):.1f}",
                    "added by retrieval": f"{pct(knowing, q) - pct(plain, q):+.1f}",
                    "samples": len(plain),
                    "load 1 min": f"{load:.1f}",
                }
            )
    rows.append(
        {
            "ms": "the hybrid search itself (retrieval events' elapsed_ms), p50 / p99",
            "without knowledge": "",
            f"with automatic retrieval ({KB_CHUNKS:,} chunks)": (
                f"{statistics.median(search_ms):.1f} / {pct(search_ms, 99):.1f}" if search_ms else "none"
            ),
            "added by retrieval": "",
            "samples": len(search_ms),
            "load 1 min": f"fill {fill_s:.0f} s",
        }
    )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
