"""Hand-off: the sub-agent answers the user and holds the conversation until it hands back."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from runtime.interfaces import AgentRuntime, RunContext, RunResult
from runtime.models import AgentConversation
from runtime.multi_agent import (
    InvocationMode,
    handoff_result,
    register_hand_back_tool,
    resolve_active_agent,
)
from runtime.registry import register_runtime, unregister_runtime
from runtime.tools import ToolRegistry
from tests.multi_agent.fakes import AnswerAgent, CallingAgent, FakeRunner, Recorder

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(owner):
    return AgentConversation.objects.create(agent_key="router", user=owner)


@pytest.fixture
def registered():
    keys = []

    def add(agent):
        register_runtime(agent)
        keys.append(agent.key)
        return agent

    yield add
    for key in keys:
        unregister_runtime(key)


def handoff_setup(conversation, child):
    recorder = Recorder()
    runner = FakeRunner(recorder, {})
    router = CallingAgent("router", child.key, runner, invocation_mode=InvocationMode.HANDOFF)
    runner.agents.update({"router": router, child.key: child})
    ctx = runner.context(
        "router", [{"role": "user", "content": "I need a refund"}], conversation_id=str(conversation.pk)
    )
    return recorder, runner, router, ctx


def test_handoff_shows_the_specialists_answer_and_routes_later_messages_to_it(conversation, registered):
    registered(AnswerAgent("router", "router"))
    billing = registered(AnswerAgent("billing", "Billing here"))
    recorder, runner, router, ctx = handoff_setup(conversation, billing)

    result = async_to_sync(router.run)(ctx)

    assert result.final_output["raw"]["handed_off_to"] == "billing"
    answer = "Billing here (asked: I need a refund)"
    assert handoff_result(ctx) == {"agent_key": "billing", "content": answer}
    message = [p for t, p in recorder.of(ctx.run_id) if t == "assistant.message"]
    assert message == [{"content": answer, "role": "assistant", "agent_key": "billing", "handoff": True}]
    conversation.refresh_from_db()
    assert conversation.active_agent_key == "billing"
    # the next user message addressed to the system's entry agent goes to billing
    assert resolve_active_agent(conversation, "router") == "billing"
    assert resolve_active_agent(conversation, "billing") == "billing"
    # a message sent explicitly to another agent is not hijacked
    assert resolve_active_agent(conversation, "weather") == "weather"


def test_hand_back_returns_the_conversation_and_only_the_holder_can(conversation, registered, owner):
    registered(AnswerAgent("router", "router"))
    registered(AnswerAgent("billing", "b"))
    AgentConversation.objects.filter(pk=conversation.pk).update(active_agent_key="billing")

    def hand_back_as(agent_key):
        ctx = RunContext(
            run_id="r",
            agent_key=agent_key,
            input_messages=[],
            sink=Recorder().sink("r"),
            conversation_id=str(conversation.pk),
        )
        tools = ToolRegistry()
        register_hand_back_tool(tools, ctx)
        return async_to_sync(tools.execute)("hand_back", {"reason": "done"})

    assert "does not hold this conversation" in hand_back_as("intruder")["error"]
    conversation.refresh_from_db()
    assert conversation.active_agent_key == "billing"

    assert hand_back_as("billing")["handed_back"] is True
    conversation.refresh_from_db()
    assert conversation.active_agent_key == ""
    assert resolve_active_agent(conversation, "router") == "router"


def test_a_failed_handoff_leaves_the_conversation_with_the_caller(conversation):
    class Broken(AgentRuntime):
        key = "broken"

        async def run(self, ctx: RunContext) -> RunResult:
            raise RuntimeError("boom")

    recorder, runner, router, ctx = handoff_setup(conversation, Broken())
    result = async_to_sync(router.run)(ctx)
    assert "failed" in result.final_output["raw"]["error"]
    conversation.refresh_from_db()
    assert conversation.active_agent_key == "" and handoff_result(ctx) is None


def test_handoff_needs_a_conversation():
    recorder = Recorder()
    runner = FakeRunner(recorder, {"billing": AnswerAgent("billing", "b")})
    router = CallingAgent("router", "billing", runner, invocation_mode="handoff")
    result = async_to_sync(router.run)(runner.context("router", [{"role": "user", "content": "x"}]))
    assert "no conversation" in result.final_output["raw"]["error"] and runner.calls == []


def test_a_holder_that_no_longer_exists_gives_the_conversation_back(conversation):
    AgentConversation.objects.filter(pk=conversation.pk).update(active_agent_key="deleted-agent")
    conversation.refresh_from_db()
    assert resolve_active_agent(conversation, "router") == "router"
    conversation.refresh_from_db()
    assert conversation.active_agent_key == ""
    assert resolve_active_agent(None, "router") == "router"
