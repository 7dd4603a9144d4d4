"""The seed README's "Multi-Agent Systems" example, with import paths changed to ``runtime.``.

- ``BillingAgent`` ("billing-specialist") and ``RouterAgent`` ("customer-router") are the
  seed's classes. The seed elides the router's tool loop ("Router logic with tool
  calling... / Handle tool calls and responses..."); the loop below fills that gap and is
  the only code that is not the seed's.
- ``SupportDeskAgent`` ("support-desk") shows hand-off: it hands the conversation to
  ``BillingDeskAgent`` ("billing-desk"), which answers later messages itself until it
  calls ``hand_back``.

On the offline demo model, name the tool to see it called:
"billing_specialist I was charged twice" (customer-router) or
"billing_desk I need a refund" (support-desk), then "hand_back" to return.
"""

from __future__ import annotations

from typing import Any

from runtime.agents import ToolCallingAgent
from runtime.interfaces import AgentRuntime, EventType, RunContext, RunResult, ToolRegistry
from runtime.llm import get_llm_client
from runtime.llm.base import tool_content
from runtime.multi_agent import (
    AgentTool,
    ContextMode,
    InvocationMode,
    hand_back_tool,
    handoff_result,
    register_agent_tools,
)
from runtime.registry import register_runtime


class BillingAgent(AgentRuntime):
    """Specialist agent for billing questions."""

    @property
    def key(self) -> str:
        return "billing-specialist"

    async def run(self, ctx: RunContext) -> RunResult:
        llm = get_llm_client()
        response = await llm.generate(
            [
                {
                    "role": "system",
                    "content": "You are a billing specialist. Help with refunds, payments, and invoices.",
                },
                *ctx.input_messages,
            ]
        )
        await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": response.message["content"]})
        return RunResult(final_output={"response": response.message["content"]})


async def tool_loop(
    ctx: RunContext,
    system_prompt: str,
    tools: ToolRegistry,
    messages: list[dict[str, Any]],
    max_steps: int = 6,
) -> RunResult:
    """The part the seed elides: call the model, run its tool calls, repeat until it answers."""
    llm = get_llm_client()
    added: list[dict[str, Any]] = []
    content = ""
    for _ in range(max_steps):
        ctx.raise_if_cancelled()
        response = await llm.generate(
            [{"role": "system", "content": system_prompt}, *messages], tools=tools.to_openai_format()
        )
        messages.append(response.message)
        added.append(response.message)
        content = response.message.get("content") or ""
        if not response.tool_calls:
            break
        for call in response.tool_calls:
            name = call["function"]["name"]
            tool = tools.get(name)
            # agent tools emit their own tool.call (with is_agent_tool and sub_agent_key)
            if tool is None or not tool.metadata.get("emits_tool_call"):
                await ctx.emit(
                    EventType.TOOL_CALL, {"tool": name, "arguments": call["function"]["arguments"]}
                )
            result = await tools.execute(name, call["function"]["arguments"])
            await ctx.emit(
                EventType.TOOL_RESULT, {"tool_call_id": call["id"], "tool": name, "result": result}
            )
            reply = {"role": "tool", "tool_call_id": call["id"], "content": tool_content(result)}
            messages.append(reply)
            added.append(reply)
        handed = handoff_result(ctx)
        if handed is not None:
            # the specialist already answered the user (shown on this run); end the turn with it
            content = handed["content"]
            added.append({"role": "assistant", "content": content})
            return RunResult(
                final_output={"response": content, "handed_off_to": handed["agent_key"]}, final_messages=added
            )
    else:
        content = "I could not finish within my step limit; please rephrase the request."
        added.append({"role": "assistant", "content": content})
    await ctx.emit(EventType.ASSISTANT_MESSAGE, {"content": content, "role": "assistant"})
    return RunResult(final_output={"response": content}, final_messages=added)


class RouterAgent(AgentRuntime):
    """Routes requests to specialist agents."""

    def __init__(self):
        self.billing_agent = BillingAgent()
        self.agent_tools = [
            AgentTool(
                agent=self.billing_agent,
                name="billing_specialist",
                description="Handles billing questions, refunds, and payment issues",
                invocation_mode=InvocationMode.DELEGATE,
                context_mode=ContextMode.FULL,
            ),
        ]

    @property
    def key(self) -> str:
        return "customer-router"

    async def run(self, ctx: RunContext) -> RunResult:
        tools = ToolRegistry()
        messages = list(ctx.input_messages)

        # Register agent-tools
        register_agent_tools(
            registry=tools,
            agent_tools=self.agent_tools,
            get_conversation_history=lambda: messages,
            parent_ctx=ctx,
        )

        # Router logic with tool calling (the seed leaves this to the reader)
        return await tool_loop(ctx, "Route to specialists or answer directly.", tools, messages)


class BillingDeskAgent(ToolCallingAgent):
    """Takes billing conversations over after a hand-off, and hands them back when done."""

    key = "billing-desk"
    system_prompt = (
        "You are the billing desk. The conversation was handed to you; answer billing questions. "
        "When the user's billing issue is settled or they ask about something else, call hand_back."
    )

    # hand_back acts on the run it is called in, so one registry serves every run
    tools = ToolRegistry([hand_back_tool()])


class SupportDeskAgent(AgentRuntime):
    """Entry agent that hands billing conversations to the billing desk."""

    key = "support-desk"
    agent_tools = [  # noqa: RUF012 - read-only definition
        AgentTool(
            agent_key="billing-desk",
            name="billing_desk",
            description="Hand the conversation to the billing desk for refunds, payments and invoices.",
            invocation_mode=InvocationMode.HANDOFF,
            context_mode=ContextMode.SUMMARY,
        ),
    ]

    async def run(self, ctx: RunContext) -> RunResult:
        tools = ToolRegistry()
        messages = list(ctx.input_messages)
        register_agent_tools(tools, self.agent_tools, lambda: messages, ctx)
        return await tool_loop(
            ctx, "Answer general questions; hand billing to the billing desk.", tools, messages
        )


def register_agents():
    register_runtime(BillingAgent())
    register_runtime(RouterAgent())
    register_runtime(BillingDeskAgent())
    register_runtime(SupportDeskAgent())
