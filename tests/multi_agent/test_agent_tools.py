"""Agents as tools, with the runner replaced by an in-process double (see fakes.py)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

import runtime.llm
from runtime.interfaces import AgentRuntime, RunContext, RunResult
from runtime.llm import LLMResponse
from runtime.multi_agent import AgentTool, ContextMode, InvocationMode, register_agent_tools
from runtime.tools import ToolRegistry
from tests.multi_agent.fakes import AnswerAgent, CallingAgent, FakeRunner, Recorder


def run(coro_fn, *args, **kwargs):
    return async_to_sync(coro_fn)(*args, **kwargs)


def make(agents_spec):
    recorder = Recorder()
    runner = FakeRunner(recorder, {})
    for agent in agents_spec(runner):
        runner.agents[agent.key] = agent
    return recorder, runner


def test_delegate_returns_the_child_answer_and_the_parent_stream_says_which_agent_ran():
    recorder, runner = make(
        lambda r: [CallingAgent("router", "billing", r), AnswerAgent("billing", "Refund issued")]
    )
    ctx = runner.context("router", [{"role": "user", "content": "refund invoice 42"}])
    result = run(runner.agents["router"].run, ctx)

    assert result.final_output["response"] == "Refund issued (asked: refund invoice 42)"
    types = recorder.types(ctx.run_id)
    assert types == ["tool.call", "sub_agent.start", "sub_agent.end"]
    call, start, end = (p for _, p in recorder.of(ctx.run_id))
    assert (
        call["tool"] == "ask_billing" and call["is_agent_tool"] is True and call["sub_agent_key"] == "billing"
    )
    assert call["arguments"] == {"message": "refund invoice 42"}
    assert start["sub_agent_key"] == "billing" and start["depth"] == 1
    child_ctx = runner.calls[0]["ctx"]
    assert end == {
        **end,
        "sub_agent_key": "billing",
        "status": "succeeded",
        "sub_agent_run_id": child_ctx.run_id,
    }
    # the child ran as a child: one level deeper, the chain extended
    assert child_ctx.depth == 1 and child_ctx.call_chain == ("router", "billing")
    assert child_ctx.parent_run_id == ctx.run_id


def test_cycle_a_b_a_ends_with_an_error_naming_the_chain():
    recorder, runner = make(lambda r: [CallingAgent("a", "b", r), CallingAgent("b", "a", r)])
    ctx = runner.context("a", [{"role": "user", "content": "go"}])
    result = run(runner.agents["a"].run, ctx)

    assert [c["agent_key"] for c in runner.calls] == ["b"]  # a was never started a second time
    b_output = runner.calls[0]["ctx"]
    refused = [p for t, p in recorder.of(b_output.run_id) if t == "tool.call"]
    assert refused and refused[0]["sub_agent_key"] == "a"
    assert "a → b → a" in result.final_output["response"]
    assert "already running in this chain" in result.final_output["response"]


def test_self_call_is_a_cycle():
    recorder, runner = make(lambda r: [CallingAgent("a", "a", r)])
    result = run(runner.agents["a"].run, runner.context("a", [{"role": "user", "content": "go"}]))
    assert "a → a" in result.final_output["response"] and runner.calls == []


def test_depth_limit_stops_a_long_chain_with_a_clear_error(settings):
    settings.AGENT_MAX_DEPTH = 2
    recorder, runner = make(
        lambda r: [
            CallingAgent("a0", "a1", r),
            CallingAgent("a1", "a2", r),
            CallingAgent("a2", "a3", r),
            AnswerAgent("a3", "deep"),
        ]
    )
    result = run(runner.agents["a0"].run, runner.context("a0", [{"role": "user", "content": "go"}]))
    assert [c["agent_key"] for c in runner.calls] == ["a1", "a2"]
    text = result.final_output["response"]
    assert "at most 2 deep" in text and "a0 → a1 → a2" in text


def test_default_depth_allows_five_levels():
    def agents(r):
        return [
            *(CallingAgent(f"a{i}", f"a{i + 1}", r) for i in range(5)),
            AnswerAgent("a5", "bottom"),
        ]

    recorder, runner = make(agents)
    result = run(runner.agents["a0"].run, runner.context("a0", [{"role": "user", "content": "go"}]))
    assert result.final_output["response"].startswith("bottom")


def test_a_failing_child_becomes_an_error_result_not_a_crash():
    class Broken(AgentRuntime):
        key = "broken"

        async def run(self, ctx: RunContext) -> RunResult:
            raise RuntimeError("internal detail: password=hunter2")

    recorder, runner = make(lambda r: [CallingAgent("router", "broken", r), Broken()])
    ctx = runner.context("router", [{"role": "user", "content": "hi"}])
    result = run(runner.agents["router"].run, ctx)
    assert result.final_output["raw"] == {"error": "The agent 'broken' failed: RuntimeError."}
    end = [p for t, p in recorder.of(ctx.run_id) if t == "sub_agent.end"][0]
    assert end["status"] == "failed" and "hunter2" not in str(recorder.events)


HISTORY = [
    {"role": "system", "content": "SECRET ROUTER PROMPT"},
    {"role": "user", "content": "I was charged twice for invoice 42"},
    {"role": "assistant", "content": "Let me check that."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "internal lookup output"},
    {"role": "user", "content": "Can I get a refund?"},
]


def child_input_for(context_mode, message="Refund the duplicate charge on invoice 42"):
    recorder, runner = make(lambda r: [AnswerAgent("billing", "ok")])
    ctx = runner.context("router", HISTORY[1:2])
    tools = ToolRegistry()
    register_agent_tools(
        tools,
        [AgentTool(agent_key="billing", name="billing", context_mode=context_mode)],
        lambda: HISTORY,
        ctx,
        invoke_child=runner.invoke_child,
    )
    run(tools.execute, "billing", {"message": message})
    return runner.calls[0]["input"], recorder, ctx


def test_full_context_passes_the_dialogue_but_not_the_callers_prompt_or_tool_traffic():
    child_input, _, _ = child_input_for(ContextMode.FULL)
    assert child_input == [
        {"role": "user", "content": "I was charged twice for invoice 42"},
        {"role": "assistant", "content": "Let me check that."},
        {"role": "user", "content": "Can I get a refund?"},
        {"role": "user", "content": "Refund the duplicate charge on invoice 42"},
    ]


def test_message_only_passes_just_the_message():
    child_input, _, _ = child_input_for(ContextMode.MESSAGE_ONLY)
    assert child_input == [{"role": "user", "content": "Refund the duplicate charge on invoice 42"}]


def test_summary_context_is_written_by_the_model_without_streaming_it_to_the_user(monkeypatch):
    seen = {}

    class SummaryModel:
        async def generate(self, messages, **kwargs):
            seen["messages"], seen["kwargs"] = messages, kwargs
            return LLMResponse(
                message={
                    "role": "assistant",
                    "content": "User was double-charged on invoice 42 and wants a refund.",
                },
                tool_calls=[],
                usage={"prompt_tokens": 1, "completion_tokens": 1},
                model="fake",
            )

    monkeypatch.setattr(runtime.llm, "get_llm_client", lambda *a, **k: SummaryModel())
    child_input, recorder, ctx = child_input_for(ContextMode.SUMMARY)
    assert child_input == [
        {
            "role": "user",
            "content": (
                "Summary of the conversation so far:\nUser was double-charged on invoice 42 and wants a refund.\n\n"
                "Request: Refund the duplicate charge on invoice 42"
            ),
        }
    ]
    prompt = seen["messages"]
    assert prompt[0]["role"] == "system" and "Summarise" in prompt[0]["content"]
    assert "USER: I was charged twice for invoice 42" in prompt[1]["content"]
    assert "SECRET ROUTER PROMPT" not in prompt[1]["content"]
    assert "internal lookup output" not in prompt[1]["content"]
    assert seen["kwargs"]["stream"] is False


def test_summary_with_the_demo_model_emits_no_delta_on_the_parent():
    child_input, recorder, ctx = child_input_for(ContextMode.SUMMARY)
    assert "assistant.delta" not in recorder.types(ctx.run_id)
    assert child_input[0]["content"].startswith("Summary of the conversation so far:\n")
    assert "invoice 42" in child_input[0]["content"]


def test_agent_tool_needs_an_agent_and_names_are_made_provider_safe():
    with pytest.raises(ValueError, match="agent or an agent_key"):
        AgentTool(name="x")
    tool = AgentTool(agent_key="billing specialist.v2")
    assert tool.name == "billing_specialist_v2" and tool.key == "billing specialist.v2"
    assert tool.invocation_mode is InvocationMode.DELEGATE and tool.context_mode is ContextMode.FULL
    assert AgentTool(agent_key="x", invocation_mode="handoff").invocation_mode is InvocationMode.HANDOFF


def test_the_model_cannot_pass_extra_arguments_to_an_agent_tool():
    recorder, runner = make(lambda r: [AnswerAgent("billing", "ok")])
    ctx = runner.context("router", [])
    tools = ToolRegistry()
    register_agent_tools(
        tools, [AgentTool(agent_key="billing")], lambda: [], ctx, invoke_child=runner.invoke_child
    )
    result = run(tools.execute, "billing", {"message": "hi", "agent_key": "admin"})
    assert "error" in result and runner.calls == []
    assert tools.get("billing").metadata["is_agent_tool"] is True


def test_unbound_agent_tools_in_a_tool_calling_agent_emit_one_tool_call_with_the_agent_fields():
    """The builder's path: tools made as data before the run, the agent's loop emits tool.call."""
    from runtime.agents import ToolCallingAgent

    recorder, runner = make(lambda r: [AnswerAgent("billing", "Refund issued")])
    tools = ToolRegistry()
    register_agent_tools(tools, [AgentTool(agent_key="billing")], invoke_child=runner.invoke_child)
    agent = ToolCallingAgent.from_config(key="router", tools=tools)
    ctx = runner.context("router", [{"role": "user", "content": "billing: refund invoice 42"}])

    async def go():
        token = ctx.activate()
        try:
            return await agent.run(ctx)
        finally:
            ctx.deactivate(token)

    result = run(go)
    calls = [p for t, p in recorder.of(ctx.run_id) if t == "tool.call"]
    assert len(calls) == 1
    assert (
        calls[0]["tool"] == "billing"
        and calls[0]["is_agent_tool"] is True
        and calls[0]["sub_agent_key"] == "billing"
    )
    assert "sub_agent.start" in recorder.types(ctx.run_id) and "sub_agent.end" in recorder.types(ctx.run_id)
    assert "Refund issued" in result.final_output["response"]
    assert runner.calls[0]["ctx"].call_chain == ("router", "billing")


def test_unbound_agent_tool_outside_a_run_says_so():
    tools = ToolRegistry()
    register_agent_tools(tools, [AgentTool(agent_key="billing")])
    assert "inside a run" in run(tools.execute, "billing", {"message": "hi"})["error"]
