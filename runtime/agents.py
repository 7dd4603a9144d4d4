"""``ToolCallingAgent``: a system prompt, tools and a bounded tool-calling loop.

Write one in code (the seed's "Option 2")::

    class WeatherAgent(ToolCallingAgent):
        key = "weather-agent"                     # or @property, as the seed writes it
        system_prompt = "You are a helpful weather assistant."
        tools = ToolRegistry([Tool.from_function(get_weather)])

or build one from data (the builder does this for agents stored in the database)::

    ToolCallingAgent.from_config(key="support", system_prompt="...", tools=registry, model="gpt-4o")

The loop, at most ``max_iterations`` model calls:

1. stop if the run was cancelled;
2. ask the model with the system prompt, the run's input and what this run added so far;
3. no tool calls: emit ``assistant.message`` and return;
4. otherwise, per call: emit ``tool.call``, execute (bad arguments or a raising tool come
   back as an error result the model reads), emit ``tool.result``, append the result;
5. checkpoint the messages so a retried attempt does not run finished tools again.

Hitting the limit ends the run with an assistant message that says so, not a crash.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.interfaces import AgentRuntime, EventType, RunContext, RunResult, Tool, ToolRegistry, run_caps
from runtime.llm import get_llm_client
from runtime.llm.base import tool_content
from runtime.memory import memory_prompt_block
from runtime.multi_agent.handoff import handoff_result

__all__ = ["ToolCallingAgent"]

_CHECKPOINT_KEY = "tool_calling_agent"


class ToolCallingAgent(AgentRuntime):
    """An agent that answers with a model and calls its tools until the model is done."""

    # Plain class attributes (not properties) so a subclass may use either, and
    # ``from_config`` instances may set them per instance.
    system_prompt: str = ""
    tools: ToolRegistry | None = None
    model: str | None = None
    model_settings: dict[str, Any] = {}  # noqa: RUF012 - read-only default
    max_iterations: int = 10
    # Shared-memory scopes whose entries are put into the system prompt ("conversation", "user", "system").
    memory_scopes: tuple[str, ...] = ()

    @classmethod
    def from_config(
        cls,
        *,
        key: str,
        system_prompt: str = "",
        tools: ToolRegistry | list[Tool] | None = None,
        model: str | None = None,
        model_settings: dict[str, Any] | None = None,
        max_iterations: int = 10,
        name: str | None = None,
        description: str = "",
        memory_scopes: tuple[str, ...] = (),
    ) -> ToolCallingAgent:
        """An agent built from data; nothing here imports or executes code named by the data."""
        if not isinstance(key, str) or not key.strip():
            raise ValueError("key: an agent needs a non-empty key.")
        if not isinstance(max_iterations, int) or max_iterations < 1:
            raise ValueError("max_iterations: must be a whole number of at least 1.")
        settings = dict(model_settings or {})
        unknown = set(settings) - {"temperature", "max_tokens"}
        if unknown:
            raise ValueError(
                f"model_settings: unknown setting(s) {', '.join(sorted(unknown))}; use temperature, max_tokens."
            )
        registry = tools if isinstance(tools, ToolRegistry) or tools is None else ToolRegistry(list(tools))
        return _ConfiguredAgent(
            key=key,
            system_prompt=system_prompt,
            tools=registry,
            model=model or None,
            model_settings=settings,
            max_iterations=max_iterations,
            name=name or key,
            description=description,
            memory_scopes=tuple(memory_scopes),
        )

    # hooks ------------------------------------------------------------------------------
    def tool_call_payload(self, tool: Tool | None, call: dict[str, Any]) -> dict[str, Any]:
        """The ``tool.call`` event; tools may add fields through ``metadata["event_fields"]``."""
        payload = {
            "tool": call["function"]["name"],
            "arguments": call["function"]["arguments"],
            "tool_call_id": call["id"],
        }
        if tool is not None:
            payload.update(tool.metadata.get("event_fields") or {})
        return payload

    async def execute_tool(self, ctx: RunContext, registry: ToolRegistry, call: dict[str, Any]) -> Any:
        return await registry.execute(
            call["function"]["name"], call["function"]["arguments"], call_id=call["id"]
        )

    def limit_message(self) -> str:
        return (
            f"I stopped after {self.max_iterations} tool-calling steps without reaching an answer. "
            "Try a more specific request, or raise this agent's step limit."
        )

    # the loop -----------------------------------------------------------------------------
    async def run(self, ctx: RunContext) -> RunResult:
        registry = self.tools or ToolRegistry()
        llm = get_llm_client(ctx.model or self.model or None)
        settings = self.model_settings or {}
        prefix: list[dict[str, Any]] = []
        system_prompt = self.system_prompt
        if self.memory_scopes:
            remembered = await memory_prompt_block(ctx, scopes=self.memory_scopes)
            system_prompt = "\n\n".join(part for part in (system_prompt, remembered) if part)
        if system_prompt:
            prefix.append({"role": "system", "content": system_prompt})
        tool_specs = registry.to_openai_format() or None

        # resume: messages a previous attempt already produced (finished tool calls included)
        saved = (ctx.state or {}).get(_CHECKPOINT_KEY) or {}
        added: list[dict[str, Any]] = list(saved.get("messages") or [])
        start = int(saved.get("iteration") or 0)

        # A channel's caps on this run (runtime/channels/admission.py) can only tighten the agent's.
        caps = run_caps(ctx)
        steps = min(self.max_iterations, caps.get("steps") or self.max_iterations)
        token_cap = caps.get("tokens") or 0
        for iteration in range(start, steps):
            ctx.raise_if_cancelled()
            if token_cap and _tokens_used(ctx) >= token_cap:
                return await self._stop(ctx, added, _CAP_MESSAGE_TOKENS.format(cap=token_cap), "max_tokens")
            response = await llm.generate(
                [*prefix, *ctx.input_messages, *added],
                tools=tool_specs,
                temperature=settings.get("temperature"),
                max_tokens=settings.get("max_tokens"),
            )
            added.append(response.message)
            if not response.tool_calls:
                content = response.content
                await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": content, "role": "assistant"})
                return RunResult(final_output={"response": content}, final_messages=added)
            for call in response.tool_calls:
                ctx.raise_if_cancelled()
                name = call["function"]["name"]
                tool = registry.get(name)
                # Agent tools bound to a parent context announce their own call (with sub-agent fields).
                if tool is None or not tool.metadata.get("emits_tool_call"):
                    await ctx.emit(EventType.TOOL_CALL, self.tool_call_payload(tool, call))
                result = await self.execute_tool(ctx, registry, call)
                await ctx.emit(
                    EventType.TOOL_RESULT,
                    {"tool_call_id": call["id"], "tool": name, "result": _json_safe(result)},
                )
                added.append({"role": "tool", "tool_call_id": call["id"], "content": tool_content(result)})
            handed = handoff_result(ctx)
            if handed:
                # A specialist took the conversation over and already answered this turn.
                added.append({"role": "assistant", "content": handed["content"]})
                return RunResult(
                    final_output={"response": handed["content"], "handed_off_to": handed["agent_key"]},
                    final_messages=added,
                )
            await ctx.checkpoint(
                {**(ctx.state or {}), _CHECKPOINT_KEY: {"messages": list(added), "iteration": iteration + 1}}
            )

        if steps < self.max_iterations:
            return await self._stop(ctx, added, _STEP_CAP_MESSAGE.format(cap=steps), "max_iterations")
        return await self._stop(ctx, added, self.limit_message(), "max_iterations")

    async def _stop(self, ctx: RunContext, added: list[dict[str, Any]], content: str, why: str) -> RunResult:
        """End the turn at a limit with an answer that says so (not a crash)."""
        added.append({"role": "assistant", "content": content})
        await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": content, "role": "assistant"})
        return RunResult(final_output={"response": content, "stopped": why}, final_messages=added)


_STEP_CAP_MESSAGE = (
    "I stopped after {cap} steps, the most this chat allows for one question, without reaching an "
    "answer. Try a more specific question."
)
_CAP_MESSAGE_TOKENS = (
    "I stopped before answering: this question used {cap} tokens, the most this chat allows for "
    "one question. Try a shorter or more specific question."
)


def _tokens_used(ctx: RunContext) -> int:
    return int(ctx.usage.get("prompt_tokens", 0)) + int(ctx.usage.get("completion_tokens", 0))


def _json_safe(value: Any) -> Any:
    """Events are stored as JSON; a tool may return anything."""
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


class _ConfiguredAgent(ToolCallingAgent):
    """A ``ToolCallingAgent`` whose definition came from data (see ``from_config``)."""

    def __init__(
        self,
        *,
        key: str,
        system_prompt: str,
        tools: ToolRegistry | None,
        model: str | None,
        model_settings: dict[str, Any],
        max_iterations: int,
        name: str,
        description: str,
        memory_scopes: tuple[str, ...] = (),
    ) -> None:
        self._key = key
        self.memory_scopes = memory_scopes
        self.system_prompt = system_prompt
        self.tools = tools
        self.model = model
        self.model_settings = model_settings
        self.max_iterations = max_iterations
        self.name = name
        self.description = description

    @property
    def key(self) -> str:
        return self._key

    def describe(self) -> dict[str, Any]:
        return {"key": self._key, "name": self.name, "description": self.description}
