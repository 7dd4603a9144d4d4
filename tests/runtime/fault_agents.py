"""Agents only the worker fault tests need (registered in the test process and in the workers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runtime.interfaces import AgentRuntime, EventType, RunContext, RunResult, ToolRegistry
from runtime.registry import register_runtime


async def slow_lookup(started_file: str) -> dict:
    """A tool that takes a minute, like a slow HTTP API.

    Args:
        started_file: written when the call begins, so a test knows the run is inside it.
    """
    Path(started_file).write_text("in tool")
    await asyncio.sleep(60)
    return {"answer": "too late"}


class SlowToolAgent(AgentRuntime):
    """Calls ``slow_lookup`` once and answers with its result."""

    key = "slow-tool"

    def __init__(self) -> None:
        self.tools = ToolRegistry([slow_lookup])

    async def run(self, ctx: RunContext) -> RunResult:
        arguments = {"started_file": ctx.params["started_file"]}
        await ctx.emit(EventType.TOOL_CALL, {"name": "slow_lookup", "arguments": arguments})
        result = await self.tools.execute("slow_lookup", arguments)
        await ctx.emit(EventType.TOOL_RESULT, {"name": "slow_lookup", "result": result})
        return RunResult(final_output={"response": str(result)})


def register_agents() -> None:
    register_runtime(SlowToolAgent())
