"""Overhead of one ToolCallingAgent iteration, excluding the tool's own time.

The agent runs on the offline demo model with a tool that returns at once, against an
in-memory event sink, so what is timed is the loop itself: building the prompt, the
client's retry/guard layer, the demo model's few-microsecond reply, event payloads, the
tool registry's schema validation and the checkpoint. A run is two model calls (one tool
call, then the answer); per-iteration = run time / 2. This is an upper bound on the loop's
overhead (the demo model's own time is included); the database write of each event is the
engine's and is measured by its benchmarks.

    python -m bench llm_tool_loop   (BENCH_LLM_LOOP_N runs, default 500)
"""

from __future__ import annotations

import asyncio
import os
import time

from bench._llm import setup_django, summary

N = int(os.environ.get("BENCH_LLM_LOOP_N", "500"))


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


def main() -> list[dict[str, str]]:
    setup_django()
    return asyncio.run(_measure())


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
