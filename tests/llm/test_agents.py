"""ToolCallingAgent and the seed's example agents, run in-process on an in-memory sink."""

from __future__ import annotations

import asyncio
import json

import pytest

from examples.seed_agents import ChatAgent, ToolAgent, WeatherAgent, register_agents
from runtime import registry
from runtime.agents import ToolCallingAgent
from runtime.interfaces import RunCancelled, Tool, ToolRegistry
from runtime.llm.demo import DEMO_NOTICE
from tests.fakes.llm_servers import Text, ToolCalls
from tests.fakes.sink import make_context, run_in_context


def run_agent(agent, messages, **context):
    ctx, sink = make_context(messages, agent_key=agent.key, **context)
    result = asyncio.run(run_in_context(ctx, lambda: agent.run(ctx)))
    return result, ctx, sink


def lookup_order(order_id: int) -> dict:
    """Look up an order by its number."""
    return {"order": order_id, "status": "shipped"}


def explode(reason: str) -> str:
    """A tool that always fails."""
    raise RuntimeError(f"internal detail {reason}")


def test_tool_loop_emits_call_result_and_final_message_in_order():
    agent = ToolCallingAgent.from_config(
        key="orders",
        system_prompt="You answer questions about orders.",
        tools=[Tool.from_function(lookup_order)],
        model="demo",
    )
    result, ctx, sink = run_agent(agent, "Please lookup_order 1234")
    kinds = [k for k in sink.types() if k not in {"assistant.delta", "usage"}]
    assert kinds == ["tool.call", "tool.result", "assistant.message"]
    (call,) = sink.of_type("tool.call")
    assert call["tool"] == "lookup_order" and json.loads(call["arguments"]) == {"order_id": 1234}
    (tool_result,) = sink.of_type("tool.result")
    assert tool_result == {
        "tool_call_id": call["tool_call_id"],
        "tool": "lookup_order",
        "result": {"order": 1234, "status": "shipped"},
    }
    (message,) = sink.of_type("assistant.message")
    assert message["role"] == "assistant" and "shipped" in message["content"]
    assert result.final_output == {"response": message["content"]}
    # only what the run added: the tool-calling turn, the result, the answer
    assert [m["role"] for m in result.final_messages] == ["assistant", "tool", "assistant"]
    assert ctx.usage["completion_tokens"] > 0
    # a checkpoint after the tool step lets a retried attempt skip finished tools
    assert sink.checkpoints[-1]["tool_calling_agent"]["iteration"] == 1


def test_a_failing_tool_becomes_an_error_result_the_model_reads():
    agent = ToolCallingAgent.from_config(key="fragile", tools=[Tool.from_function(explode)], model="demo")
    result, _, sink = run_agent(agent, "explode now")
    (tool_result,) = sink.of_type("tool.result")
    assert tool_result["result"] == {"error": "The tool explode failed: RuntimeError."}
    assert "internal detail" not in json.dumps(sink.events)
    assert "error" in result.final_output["response"]


def test_max_iterations_ends_with_a_clear_message(openai_server):
    # a model that asks for a tool every time
    openai_server.default = ToolCalls([("lookup_order", {"order_id": 7})])
    try:

        class Looper(ToolCallingAgent):
            key = "looper"
            model = "openai:gpt-4o-mini"
            max_iterations = 3
            tools = ToolRegistry([Tool.from_function(lookup_order)])

        result, _, sink = run_agent(Looper(), "lookup_order 7")
    finally:
        openai_server.default = Text()
    assert len(sink.of_type("tool.call")) == 3 and len(openai_server.requests) == 3
    assert result.final_output["stopped"] == "max_iterations"
    assert "stopped after 3 tool-calling steps" in sink.of_type("assistant.message")[-1]["content"]
    assert result.final_messages[-1]["role"] == "assistant"


def test_cancellation_is_checked_between_iterations():
    agent = ToolCallingAgent.from_config(key="c", tools=[Tool.from_function(lookup_order)], model="demo")
    ctx, sink = make_context("lookup_order 5", agent_key="c")
    ctx.request_cancel()
    with pytest.raises(RunCancelled):
        asyncio.run(run_in_context(ctx, lambda: agent.run(ctx)))
    assert sink.events == []


def test_resume_from_checkpoint_does_not_rerun_finished_tools():
    calls: list[int] = []

    def charge(amount: int) -> str:
        """Charge a card."""
        calls.append(amount)
        return "charged"

    agent = ToolCallingAgent.from_config(key="pay", tools=[Tool.from_function(charge)], model="demo")
    _, _, first_sink = run_agent(agent, "charge 30")
    assert calls == [30]
    # a second attempt of the same run starts from the saved state
    result, _, sink = run_agent(agent, "charge 30", state=first_sink.checkpoints[-1])
    assert calls == [30]
    assert sink.of_type("tool.call") == [] and "charged" in result.final_output["response"]


def test_from_config_validates_its_input():
    with pytest.raises(ValueError, match="key"):
        ToolCallingAgent.from_config(key="")
    with pytest.raises(ValueError, match="model_settings: unknown setting.*top_k"):
        ToolCallingAgent.from_config(key="x", model_settings={"top_k": 3})
    with pytest.raises(ValueError, match="max_iterations"):
        ToolCallingAgent.from_config(key="x", max_iterations=0)
    agent = ToolCallingAgent.from_config(key="x", name="Helper", description="Helps.")
    assert agent.describe() == {"key": "x", "name": "Helper", "description": "Helps."}


def test_tool_loop_against_the_openai_wire_protocol(openai_server):
    openai_server.push(ToolCalls([("lookup_order", {"order_id": 42})]), Text(["Order 42 has shipped."]))
    agent = ToolCallingAgent.from_config(
        key="orders",
        system_prompt="Be brief.",
        tools=[Tool.from_function(lookup_order)],
        model="openai:gpt-4o-mini",
        model_settings={"temperature": 0.1},
    )
    result, ctx, sink = run_agent(agent, "Where is order 42?")
    assert result.final_output == {"response": "Order 42 has shipped."}
    second = openai_server.requests[1].json
    assert second["temperature"] == 0.1
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert json.loads(second["messages"][3]["content"]) == {"order": 42, "status": "shipped"}
    assert sink.streamed_text() == "Order 42 has shipped."
    assert ctx.usage["prompt_tokens"] == 20 + 11


def test_the_run_model_overrides_the_agent_model(openai_server):
    agent = ToolCallingAgent.from_config(key="o", model="demo")
    result, _, _ = run_agent(agent, "hi", model="openai:gpt-4o")
    assert result.final_output == {"response": "Hello from the fake model."}


# the seed README's examples, unchanged except for import paths ---------------------------
def test_seed_chat_agent():
    result, _, sink = run_agent(ChatAgent(), "Hello!")
    assert result.final_output["response"].startswith(DEMO_NOTICE)
    assert sink.streamed_text() == result.final_output["response"]
    assert sink.of_type("assistant.message")[0]["content"] == result.final_output["response"]


def test_seed_tool_agent_calls_its_tool():
    result, _, sink = run_agent(ToolAgent(), "What does get_weather say for Paris?")
    assert sink.of_type("tool.call")[0] == {"tool": "get_weather", "arguments": '{"location": "Paris"}'}
    assert sink.of_type("tool.result")[0]["result"] == "Sunny, 72°F in Paris"
    assert "Sunny, 72°F in Paris" in result.final_output["response"]


def test_seed_weather_agent_is_a_tool_calling_agent():
    result, _, sink = run_agent(WeatherAgent(), "get_weather in Berlin")
    assert sink.of_type("tool.result")[0]["result"] == "The weather in Berlin is sunny, 72°F"
    assert result.final_output["response"].endswith("The weather in Berlin is sunny, 72°F")


def test_register_agents_registers_the_three_seed_agents():
    register_agents()
    for key in ("chat-agent", "tool-agent", "weather-agent"):
        assert registry.get_runtime(key).key == key
