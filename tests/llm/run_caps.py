"""What the per-run caps tests share (tests/llm/test_widget_run_caps.py, test_api_key_run_caps.py):
an agent that keeps calling a tool while the fake model asks for one, an agent that sleeps past any
time cap, and one pass of the real worker loop."""

from __future__ import annotations

import asyncio

import pytest

from runtime import registry
from runtime.agents import ToolCallingAgent
from runtime.engine.worker import Worker
from runtime.interfaces import AgentRuntime, RunContext, RunResult, Tool, ToolRegistry


def work() -> None:
    asyncio.run(Worker(once=True, poll_interval=0.05).run())


def lookup(sku: str) -> str:
    """Look a product up."""
    return f"{sku}: in stock"


class Sleeper(AgentRuntime):
    key = "sleeper"

    async def run(self, ctx: RunContext) -> RunResult:
        await asyncio.sleep(30)
        return RunResult(final_output={"response": "too late"})


@pytest.fixture
def capped_agents():
    looper = ToolCallingAgent.from_config(
        key="looper",
        system_prompt="Look things up.",
        model="openai:gpt-4o-mini",
        tools=ToolRegistry([Tool.from_function(lookup)]),
    )
    for agent in (looper, Sleeper()):
        registry.register_runtime(agent)
    yield
    for key in ("looper", "sleeper"):
        registry.unregister_runtime(key)
