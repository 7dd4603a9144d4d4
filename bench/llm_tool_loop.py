"""Overhead of one ToolCallingAgent iteration, excluding the tool's own time.

The agent runs on the offline demo model with a tool that returns at once, against an
in-memory event sink, so what is timed is the loop itself: building the prompt, the
client's retry/guard layer, the demo model's few-microsecond reply, event payloads, the
tool registry's schema validation and the checkpoint. A run is two model calls (one tool
call, then the answer); per-iteration = run time / 2. This is an upper bound on the loop's
overhead (the demo model's own time is included).

A second row puts the same agent (``bench-tool-loop``, bench/agents.py) behind a real
``manage.py runagent`` worker on a throw-away database, so each iteration also pays for
its real event writes (deltas, ``tool.call``, ``tool.result``, ``assistant.message``,
batched and fenced) and its checkpoint. Runs go one at a time, alternating a message that
names the tool (two model calls: tool call, then answer) with one that does not (one
call); a run lasts from its ``run.started`` event to its terminal event (both stamped by
PostgreSQL), and one iteration = the difference of the two kinds' percentiles, which
takes out the fixed cost of a run (claim, ``run.started``, outcome).

    python -m bench llm_tool_loop   (BENCH_LLM_LOOP_N in-process runs, default 500;
                                     BENCH_LLM_LOOP_WORKER_N worker runs of each kind, default 100)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

from bench._llm import pct, summary

N = int(os.environ.get("BENCH_LLM_LOOP_N", "500"))
WORKER_N = int(os.environ.get("BENCH_LLM_LOOP_WORKER_N", "100"))
TOOL_LOOP = "bench-tool-loop"  # bench/agents.py


def lookup_order(order_id: int) -> dict:
    """Look up an order."""
    return {"order": order_id, "status": "shipped"}


async def _measure() -> list[dict[str, str]]:
    from runtime.agents import ToolCallingAgent
    from runtime.interfaces import Tool
    from tests.fakes.sink import make_context

    agent = ToolCallingAgent.from_config(
        key="bench-loop",
        system_prompt="You look up orders.",
        tools=[Tool.from_function(lookup_order)],
        model="demo",
    )

    async def once() -> float:
        ctx, sink = make_context("lookup_order 1234", agent_key="bench-loop")
        token = ctx.activate()
        started = time.perf_counter()
        try:
            await agent.run(ctx)
        finally:
            ctx.deactivate(token)
        elapsed = time.perf_counter() - started
        assert len(sink.of_type("tool.call")) == 1
        return elapsed / 2

    for _ in range(50):
        await once()
    values = [await once() for _ in range(N)]
    return [summary("ToolCallingAgent iteration (demo model, in-memory sink)", values, target="p50 <= 5 ms")]


def _run_once(user, content: str) -> tuple[float, int]:
    """One run through the worker: (seconds from run.started to its terminal event, tool calls)."""
    from bench.common import wait_until
    from runtime.models import AgentEvent, AgentRun
    from runtime.services import run_create

    run, _ = run_create(agent_key=TOOL_LOOP, messages=[{"role": "user", "content": content}], user=user)
    wait_until(
        lambda: AgentRun.objects.filter(pk=run.pk, finished_at__isnull=False).exists(),
        timeout=30,
        interval=0.002,
        what=f"run {run.pk} to finish",
    )
    run.refresh_from_db()
    if run.status != "succeeded":
        raise RuntimeError(f"bench run {run.pk} ended {run.status}")
    events = list(
        AgentEvent.objects.filter(run_id=run.pk).order_by("seq").values_list("event_type", "created_at")
    )
    started = next(at for kind, at in events if kind == "run.started")
    return (events[-1][1] - started).total_seconds(), sum(kind == "tool.call" for kind, _ in events)


def _measure_worker(url: str) -> list[dict[str, str]]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from bench.common import PROJECT_ROOT, PYTHON, django_env, stop_process

    user, _ = get_user_model().objects.get_or_create(username="bench-loop")
    connection.close()
    worker = subprocess.Popen(
        [PYTHON, "manage.py", "runagent", "--noreload", "--concurrency", "10"],
        cwd=PROJECT_ROOT,
        env=django_env(url, LOG_LEVEL="WARNING"),
    )
    two: list[float] = []
    one: list[float] = []
    try:
        for index in range(10 + WORKER_N):  # the first 10 of each warm the worker up
            with_tool, calls = _run_once(user, "lookup_order 1234")
            without_tool, no_calls = _run_once(user, "hello there")
            if (calls, no_calls) != (1, 0):
                raise RuntimeError(f"expected 1 and 0 tool calls, got {calls} and {no_calls}")
            if index >= 10:
                two.append(with_tool)
                one.append(without_tool)
    finally:
        stop_process(worker)
    ms = {q: (pct(two, q) - pct(one, q)) * 1000 for q in (50, 99)}
    return [
        summary("run through a worker, 2 model calls (tool call + answer)", two),
        summary("run through a worker, 1 model call (answer only)", one),
        {
            "measure": "iteration with real event writes (difference of the two)",
            "n": str(len(two)),
            "p50 ms": f"{ms[50]:.2f}",
            "p99 ms": f"{ms[99]:.2f}",
            "mean ms": "",
            "target": "p50 <= 5 ms",
            "ok": "yes" if ms[50] <= 5 else "NO",
        },
    ]


def main() -> list[dict[str, str]]:
    from bench.common import dedicated_database, setup_django

    with dedicated_database(prefix="benchloop") as url:
        setup_django(url, LOG_LEVEL="WARNING")
        rows = asyncio.run(_measure())
        rows[0]["ok"] = "yes" if float(rows[0]["p50 ms"]) <= 5 else "NO"
        return rows + _measure_worker(url)


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
