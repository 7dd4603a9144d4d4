"""Code agents the tests run through real workers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from runtime.interfaces import AgentRuntime, EventType, RunContext, RunResult
from runtime.registry import register_runtime
from runtime.tools import Tool, ToolRegistry, idempotency_key

# What ToolUserAgent's tool was called with, in this process: (note, idempotency key).
TOOL_CALLS: list[tuple[str, str | None]] = []


def _record(note: str) -> str:
    """Record a side effect."""
    TOOL_CALLS.append((note, idempotency_key()))
    return "recorded"


class NoopAgent(AgentRuntime):
    key = "noop"

    async def run(self, ctx: RunContext) -> RunResult:
        return RunResult(final_output={"ok": True})


class EchoAgent(AgentRuntime):
    """Streams the last user message back word by word."""

    key = "echo"

    async def run(self, ctx: RunContext) -> RunResult:
        text = ctx.input_messages[-1]["content"]
        for word in text.split():
            await ctx.emit(EventType.ASSISTANT_DELTA, {"delta": word + " "})
        await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": text, "role": "assistant"})
        return RunResult(
            final_output={"response": text}, final_messages=[{"role": "assistant", "content": text}]
        )


class WaitAgent(AgentRuntime):
    """Emits a delta, then waits until a file named in params exists (or forever)."""

    key = "wait"

    async def run(self, ctx: RunContext) -> RunResult:
        await ctx.emit(EventType.ASSISTANT_DELTA, {"delta": "working"})
        marker = ctx.params.get("release_file")
        started = ctx.params.get("started_file")
        if started:
            Path(started).write_text(str(os.getpid()))
        while not (marker and Path(marker).exists()):
            await asyncio.sleep(0.05)
        await ctx.emit(EventType.ASSISTANT_DELTA, {"delta": "after release"})
        return RunResult(final_output={"response": "released"})


class CrashAgent(AgentRuntime):
    key = "crash"

    async def run(self, ctx: RunContext) -> RunResult:
        await ctx.emit(EventType.ASSISTANT_DELTA, {"delta": f"attempt {ctx.attempt}"})
        raise RuntimeError("secret internal detail: database password is hunter2")


class FlakyAgent(AgentRuntime):
    """Fails on the first attempt, succeeds on the next."""

    key = "flaky"

    async def run(self, ctx: RunContext) -> RunResult:
        if ctx.attempt == 1:
            raise ConnectionError("first attempt fails")
        return RunResult(final_output={"response": f"ok on attempt {ctx.attempt}"})


class CheckpointAgent(AgentRuntime):
    key = "checkpoint"

    async def run(self, ctx: RunContext) -> RunResult:
        done = (ctx.state or {}).get("done", 0)
        await ctx.checkpoint({"done": done + 1})
        if ctx.attempt == 1:
            raise ConnectionError("crash after checkpoint")
        return RunResult(final_output={"resumed_from": done})


class ForgetfulAgent(AgentRuntime):
    """Forgets to return its RunResult (params["returns"]: "none" or "dict")."""

    key = "forgetful"

    async def run(self, ctx: RunContext) -> RunResult:
        await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": "done", "role": "assistant"})
        if ctx.params.get("returns") == "dict":
            return {"response": "done"}  # type: ignore[return-value]
        return None  # type: ignore[return-value]


class ToolUserAgent(AgentRuntime):
    """Calls its one tool the way a code agent of the seed README does."""

    key = "tool-user"

    async def run(self, ctx: RunContext) -> RunResult:
        tools = ToolRegistry([Tool.from_function(_record)])
        result = await tools.execute("_record", {"note": ctx.input_messages[-1]["content"]}, call_id="call_1")
        return RunResult(final_output={"response": result})


def register_agents() -> None:
    for agent in (
        NoopAgent(),
        EchoAgent(),
        WaitAgent(),
        CrashAgent(),
        FlakyAgent(),
        CheckpointAgent(),
        ForgetfulAgent(),
        ToolUserAgent(),
    ):
        register_runtime(agent)
