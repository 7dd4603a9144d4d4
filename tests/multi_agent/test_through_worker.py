"""The seed's router/billing example and a hand-off, through the real worker and the demo model."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from runtime.engine.worker import Worker
from runtime.interfaces import AgentRuntime, RunContext, RunResult
from runtime.models import AgentConversation, AgentEvent, AgentRun
from runtime.multi_agent import AgentTool, ContextMode, register_agent_tools, resolve_active_agent
from runtime.registry import register_runtime, unregister_runtime
from runtime.services import run_cancel, run_create
from runtime.tools import ToolRegistry

pytestmark = pytest.mark.django_db(transaction=True)


def work() -> None:
    asyncio.run(Worker(once=True, poll_interval=0.05).run())


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def payloads(run: AgentRun, event_type: str) -> list[dict]:
    return list(
        AgentEvent.objects.filter(run=run, event_type=event_type)
        .order_by("seq")
        .values_list("payload", flat=True)
    )


def test_router_delegates_to_billing_as_a_child_run_with_its_own_events(owner):
    run, _ = run_create(
        agent_key="customer-router", messages=say("billing_specialist I was charged twice"), user=owner
    )
    work()
    run.refresh_from_db()
    assert run.status == "succeeded", run.error

    child = AgentRun.objects.get(parent_run=run)
    assert child.agent_key == "billing-specialist" and child.status == "succeeded"
    assert child.user_id == owner.pk
    billing_answer = child.output["final_output"]["response"]
    assert "I was charged twice" in billing_answer

    call = payloads(run, "tool.call")
    assert call[0]["tool"] == "billing_specialist"
    assert call[0]["is_agent_tool"] is True and call[0]["sub_agent_key"] == "billing-specialist"
    start = payloads(run, "sub_agent.start")[0]
    assert start["sub_agent_key"] == "billing-specialist" and start["sub_agent_run_id"] == str(child.id)
    end = payloads(run, "sub_agent.end")[0]
    assert end["status"] == "succeeded" and end["sub_agent_key"] == "billing-specialist"
    assert end["sub_agent_run_id"] == str(child.id)
    # the router's answer is built from the child's answer (the demo model reports the tool result)
    assert billing_answer in run.output["final_output"]["response"]
    result = payloads(run, "tool.result")[0]
    assert result["result"] == billing_answer

    # the child's own events carry the trace ids
    child_events = list(AgentEvent.objects.filter(run=child).order_by("seq"))
    assert child_events and {e.payload.get("parent_run_id") for e in child_events} == {str(run.id)}
    assert {e.payload.get("sub_agent_run_id") for e in child_events} == {str(child.id)}
    assert [e.event_type for e in child_events][-1] == "run.succeeded"


def test_handoff_routes_later_messages_until_the_specialist_hands_back(owner):
    first, _ = run_create(agent_key="support-desk", messages=say("billing_desk I need a refund"), user=owner)
    work()
    first.refresh_from_db()
    assert first.status == "succeeded", first.error
    conversation = AgentConversation.objects.get(pk=first.conversation_id)
    assert conversation.active_agent_key == "billing-desk"
    handed = [p for p in payloads(first, "assistant.message") if p.get("handoff")]
    assert len(handed) == 1 and handed[0]["agent_key"] == "billing-desk"
    assert len(payloads(first, "assistant.message")) == 1  # the router did not answer a second time
    # SUMMARY context: the desk got a model-written summary, not the raw history
    child = AgentRun.objects.get(parent_run=first)
    assert child.input["messages"][0]["content"].startswith("Summary of the conversation so far:")

    # the next message to the system's entry agent goes to the desk, with the conversation's history
    target = resolve_active_agent(conversation, "support-desk")
    assert target == "billing-desk"
    second, _ = run_create(
        agent_key="support-desk", messages=say("is it done?"), user=owner, conversation=conversation
    )
    work()
    second.refresh_from_db()
    assert second.status == "succeeded", second.error
    assert second.agent_key == "billing-desk"

    third, _ = run_create(
        agent_key=target, messages=say("thanks, hand_back please"), user=owner, conversation=conversation
    )
    work()
    third.refresh_from_db()
    assert third.status == "succeeded", third.error
    assert [p["tool"] for p in payloads(third, "tool.call")] == ["hand_back"]
    conversation.refresh_from_db()
    assert conversation.active_agent_key == ""
    assert resolve_active_agent(conversation, "support-desk") == "support-desk"


class DelegateToWait(AgentRuntime):
    """Delegates to the test suite's ``wait`` agent, which runs until cancelled."""

    key = "delegate-to-wait"

    async def run(self, ctx: RunContext) -> RunResult:
        tools = ToolRegistry()
        register_agent_tools(
            tools, [AgentTool(agent_key="wait", context_mode=ContextMode.MESSAGE_ONLY)], lambda: [], ctx
        )
        result = await tools.execute("wait", {"message": "take your time"})
        return RunResult(final_output={"response": str(result)})


def test_cancelling_the_parent_cancels_the_running_child(owner):
    register_runtime(DelegateToWait())
    try:
        parent, _ = run_create(agent_key="delegate-to-wait", messages=say("go"), user=owner)
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        deadline = time.monotonic() + 20
        child = None
        while time.monotonic() < deadline:
            child = AgentRun.objects.filter(parent_run=parent, status="running").first()
            if (
                child is not None
                and AgentEvent.objects.filter(run=child, event_type="assistant.delta").exists()
            ):
                break
            time.sleep(0.02)  # polling the database with a deadline, not waiting for time to pass
        assert child is not None, "the child run never started"
        run_cancel(run=parent)
        worker.join(timeout=30)
        assert not worker.is_alive()
        parent.refresh_from_db()
        child.refresh_from_db()
        assert parent.status == "cancelled" and child.status == "cancelled"
        assert AgentEvent.objects.filter(run=child, event_type="run.cancelled").exists()
    finally:
        unregister_runtime("delegate-to-wait")


# -- a sub-agent that is gone fails the run; one that fails is a step the model reads --------


def _caller(key: str, sub_agent_key: str, mode: str = "delegate"):
    """A data-defined agent on the demo model that calls ``sub_agent_key`` when asked by name."""
    from runtime.agents import ToolCallingAgent

    tools = register_agent_tools(
        ToolRegistry(),
        [AgentTool(agent_key=sub_agent_key, invocation_mode=mode, context_mode=ContextMode.MESSAGE_ONLY)],
    )
    return ToolCallingAgent.from_config(key=key, system_prompt="Route.", tools=tools, model="demo")


@pytest.fixture
def agents():
    keys = []

    def add(runtime):
        keys.append(runtime.key)
        return register_runtime(runtime)

    yield add
    for key in keys:
        unregister_runtime(key)


@pytest.mark.parametrize("mode", ["delegate", "handoff"])
def test_a_missing_sub_agent_fails_the_run_with_a_message_naming_it(owner, agents, mode):
    agents(_caller("front-desk", "ghost", mode))
    run, _ = run_create(agent_key="front-desk", messages=say("ghost please help"), user=owner)
    work()
    run.refresh_from_db()
    # not a "succeeded" run with an apology from the model: the run failed, once, and says why
    assert run.status == "failed"
    assert run.attempt == 1
    assert run.error["code"] == "sub_agent_missing"
    assert "'ghost'" in run.error["message"] and "no longer exists" in run.error["message"]
    assert "Remove 'ghost' from the sub-agents of 'front-desk'" in run.error["message"]
    assert payloads(run, "run.failed")[0]["error"] == run.error
    # the step is there too, failed, and the model was never asked to answer around it
    end = payloads(run, "sub_agent.end")
    assert [e["status"] for e in end] == ["failed"] and end[0]["sub_agent_key"] == "ghost"
    assert payloads(run, "tool.result") == [] and payloads(run, "assistant.message") == []
    child = AgentRun.objects.get(parent_run=run)
    assert child.agent_key == "ghost" and child.status == "failed"
    assert child.error["code"] == "unknown_agent"
    if mode == "handoff":
        # the conversation is not left with an agent that does not exist
        assert AgentConversation.objects.get(pk=run.conversation_id).active_agent_key == ""


def test_a_sub_agent_missing_further_down_fails_the_root_run(owner, agents):
    agents(_caller("front-desk", "middle"))
    agents(_caller("middle", "ghost"))
    # the demo model passes the message on: "middle ghost x" -> middle gets "ghost x"
    run, _ = run_create(agent_key="front-desk", messages=say("middle ghost x"), user=owner)
    work()
    run.refresh_from_db()
    assert run.status == "failed" and run.error["code"] == "sub_agent_missing"
    assert "'ghost'" in run.error["message"] and "'middle'" in run.error["message"]
    middle = AgentRun.objects.get(parent_run=run)
    assert middle.status == "failed" and middle.error["code"] == "sub_agent_missing"
    assert AgentRun.objects.get(parent_run=middle).status == "failed"


def test_a_sub_agent_that_fails_is_a_failed_step_the_model_is_told_about(owner, agents):
    agents(_caller("front-desk", "crash"))
    run, _ = run_create(agent_key="front-desk", messages=say("crash now"), user=owner)
    work()
    run.refresh_from_db()
    # the agent exists and failed at run time: the model reads the error and answers
    assert run.status == "succeeded", run.error
    end = payloads(run, "sub_agent.end")
    assert [e["status"] for e in end] == ["failed"]
    result = payloads(run, "tool.result")[0]["result"]
    assert "The agent 'crash' failed" in result["error"] and "hunter2" not in result["error"]
    assert payloads(run, "assistant.message")
    assert AgentRun.objects.get(parent_run=run).status == "failed"


class CallsGhostDirectly(AgentRuntime):
    """A code agent that runs a sub-agent with ``invoke_child`` itself, without an agent tool."""

    key = "calls-ghost"

    async def run(self, ctx: RunContext) -> RunResult:
        from runtime.engine.children import invoke_child

        await invoke_child(ctx, agent_key="ghost", input_messages=say("hi"))
        return RunResult(final_output={"response": "unreachable"})


def test_invoke_child_of_a_missing_agent_fails_the_run_once(owner, agents):
    agents(CallsGhostDirectly())
    run, _ = run_create(agent_key="calls-ghost", messages=say("go"), user=owner)
    work()
    run.refresh_from_db()
    # not retried: retrying cannot bring the agent back
    assert run.status == "failed" and run.attempt == 1
    assert run.error["code"] == "sub_agent_missing" and "'ghost'" in run.error["message"]
