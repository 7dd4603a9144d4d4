"""Agents the benchmarks run (loaded with ``AGENT_RUNTIME_REGISTRY=bench.agents:register_agents``)."""

from __future__ import annotations

import asyncio

from runtime.interfaces import AgentRuntime, RunContext, RunResult
from runtime.registry import register_runtime

NOOP = "bench-noop"
HOLD = "bench-hold"


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


def register_agents() -> None:
    for agent in (BenchNoopAgent(), BenchHoldAgent()):
        register_runtime(agent)
