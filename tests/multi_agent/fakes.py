"""In-memory doubles for the runner: a recording sink and an ``invoke_child`` that runs
the child agent in-process with the context the real runner builds (depth, call chain)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from runtime.interfaces import AgentRuntime, RunContext, RunResult
from runtime.multi_agent import AgentTool, register_agent_tools
from runtime.tools import ToolRegistry


@dataclass
class Recorder:
    """Every event of every run in one list: (run_id, type, payload)."""

    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def sink(self, run_id: str) -> _Sink:
        return _Sink(self, run_id)

    def of(self, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [(t, p) for r, t, p in self.events if r == run_id]

    def types(self, run_id: str) -> list[str]:
        return [t for t, _ in self.of(run_id)]


@dataclass
class _Sink:
    recorder: Recorder
    run_id: str

    async def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        self.recorder.events.append((self.run_id, event_type, payload))

    async def checkpoint(self, state: dict[str, Any]) -> None:
        return None


class FakeRunner:
    """Runs child agents in-process from a dict of runtimes; records each child call."""

    def __init__(self, recorder: Recorder, agents: dict[str, AgentRuntime]) -> None:
        self.recorder = recorder
        self.agents = agents
        self.calls: list[dict[str, Any]] = []

    def context(self, agent_key: str, messages: list[dict[str, Any]], **kwargs: Any) -> RunContext:
        run_id = str(uuid.uuid4())
        return RunContext(
            run_id=run_id,
            agent_key=agent_key,
            input_messages=messages,
            sink=self.recorder.sink(run_id),
            **kwargs,
        )

    async def invoke_child(
        self, parent_ctx: RunContext, *, agent_key, input_messages, metadata=None
    ) -> RunResult:
        ctx = self.context(
            agent_key,
            input_messages,
            conversation_id=parent_ctx.conversation_id,
            user_id=parent_ctx.user_id,
            metadata=metadata,
            parent_run_id=parent_ctx.run_id,
            depth=parent_ctx.depth + 1,
            call_chain=(*parent_ctx.call_chain, agent_key),
        )
        self.calls.append({"agent_key": agent_key, "input": input_messages, "metadata": metadata, "ctx": ctx})
        result = await self.agents[agent_key].run(ctx)
        result.run_id = ctx.run_id  # what the real runner is asked to attach
        return result


class AnswerAgent(AgentRuntime):
    """Answers with a fixed text that names what it was asked."""

    def __init__(self, key: str, answer: str) -> None:
        self._key = key
        self.answer = answer

    @property
    def key(self) -> str:
        return self._key

    async def run(self, ctx: RunContext) -> RunResult:
        asked = ctx.input_messages[-1]["content"] if ctx.input_messages else ""
        text = f"{self.answer} (asked: {asked})"
        return RunResult(
            final_output={"response": text}, final_messages=[{"role": "assistant", "content": text}]
        )


class CallingAgent(AgentRuntime):
    """Calls its one agent tool with the last user message and answers with the tool result."""

    def __init__(self, key: str, target: str, runner: FakeRunner, **tool_kwargs: Any) -> None:
        self._key = key
        self.runner = runner
        self.agent_tool = AgentTool(agent_key=target, name=f"ask_{target}", **tool_kwargs)

    @property
    def key(self) -> str:
        return self._key

    async def run(self, ctx: RunContext) -> RunResult:
        tools = ToolRegistry()
        register_agent_tools(
            tools,
            [self.agent_tool],
            lambda: list(ctx.input_messages),
            ctx,
            invoke_child=self.runner.invoke_child,
        )
        result = await tools.execute(self.agent_tool.name, {"message": ctx.input_messages[-1]["content"]})
        text = result if isinstance(result, str) else str(result)
        return RunResult(final_output={"response": text, "raw": result})
