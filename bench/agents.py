"""Agents the benchmarks run (loaded with ``AGENT_RUNTIME_REGISTRY=bench.agents:register_agents``)."""

from __future__ import annotations

import asyncio
import os

from runtime.agents import ToolCallingAgent
from runtime.interfaces import AgentRuntime, RunContext, RunResult, Tool
from runtime.registry import register_runtime

NOOP = "bench-noop"
HOLD = "bench-hold"
LLM_TTFT = "bench-llm-ttft"
LLM_STREAM = "bench-llm-stream"
TOOL_LOOP = "bench-tool-loop"
# the model the llm_* e2e benchmarks use: the openai provider, pointed by OPENAI_BASE_URL at bench/_fake_openai.py
BENCH_MODEL = "openai:bench-model"


class BenchNoopAgent(AgentRuntime):
    """Does nothing: what is left is the engine's own cost per run."""

    key = NOOP

    async def run(self, ctx: RunContext) -> RunResult:
        return RunResult(final_output={"ok": True})


class BenchHoldAgent(AgentRuntime):
    """Holds its first attempt until the worker dies; any later attempt returns at once.

    The rescue benchmark kills the worker holding attempt 1 and times how long
    the run takes to start again in another worker.
    """

    key = HOLD

    async def run(self, ctx: RunContext) -> RunResult:
        if ctx.attempt == 1:
            while not ctx.cancelled():
                await asyncio.sleep(0.05)
        return RunResult(final_output={"attempt": ctx.attempt})


class BenchTtftAgent(ToolCallingAgent):
    """A ToolCallingAgent on the openai provider that waits ``BENCH_TTFT_GATE`` seconds first.

    The wait lets the benchmark's SSE client finish opening the run's stream before the
    model is called, so the first ``assistant.delta`` reaches a listening client and is
    not read from the backlog. It is before the model's first byte, so outside the figure.
    """

    key = LLM_TTFT
    model = BENCH_MODEL
    system_prompt = "You answer briefly."

    async def run(self, ctx: RunContext) -> RunResult:
        await asyncio.sleep(float(os.environ.get("BENCH_TTFT_GATE", "0.15")))
        return await super().run(ctx)


def lookup_order(order_id: int) -> dict:
    """Look up an order."""
    return {"order": order_id, "status": "shipped"}


def register_agents() -> None:
    agents: list[AgentRuntime] = [
        BenchNoopAgent(),
        BenchHoldAgent(),
        BenchTtftAgent(),
        # an agent as data, the way the builder makes them: streams whatever the model sends
        ToolCallingAgent.from_config(key=LLM_STREAM, system_prompt="You stream.", model=BENCH_MODEL),
        # the demo model calls the tool when the message names it; the tool returns at once
        ToolCallingAgent.from_config(
            key=TOOL_LOOP,
            system_prompt="You look up orders.",
            tools=[Tool.from_function(lookup_order)],
            model="demo",
        ),
    ]
    for agent in agents:
        register_runtime(agent)
