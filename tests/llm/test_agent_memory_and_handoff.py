"""ToolCallingAgent with shared memory in its prompt, and a hand-off inside its tool loop."""

from __future__ import annotations

import asyncio

import pytest

from runtime import registry
from runtime.agents import ToolCallingAgent
from runtime.engine.worker import Worker
from runtime.interfaces import ToolRegistry
from runtime.memory import MemoryOwner, memory_remember
from runtime.models import AgentEvent, AgentRun
from runtime.multi_agent import AgentTool, ContextMode, InvocationMode, register_agent_tools
from runtime.services import run_create
from tests.fakes.llm_servers import Text, ToolCalls

pytestmark = pytest.mark.django_db(transaction=True)


def work() -> None:
    asyncio.run(Worker(once=True, poll_interval=0.05).run())


@pytest.fixture
def agents():
    added: list[str] = []

    def add(agent):
        registry.register_runtime(agent)
        added.append(agent.key)
        return agent

    yield add
    for key in added:
        registry.unregister_runtime(key)


def test_remembered_entries_of_the_callers_scope_reach_the_system_prompt(
    openai_server, agents, owner, stranger
):
    memory_remember(owner=MemoryOwner(scope="user", user_id=owner.pk), key="favourite colour", value="teal")
    memory_remember(
        owner=MemoryOwner(scope="user", user_id=stranger.pk), key="favourite colour", value="crimson"
    )
    agents(
        ToolCallingAgent.from_config(
            key="mem-agent", system_prompt="Be kind.", model="openai:gpt-4o-mini", memory_scopes=("user",)
        )
    )
    openai_server.push(Text(["Teal it is."]))
    run, _ = run_create(
        agent_key="mem-agent", messages=[{"role": "user", "content": "my favourite colour?"}], user=owner
    )
    work()
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    system = openai_server.requests[0].json["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("Be kind.")
    assert "teal" in system["content"] and "crimson" not in system["content"]


def test_a_handoff_inside_the_tool_loop_ends_the_turn_with_the_specialists_answer(
    openai_server, agents, owner
):
    agents(
        ToolCallingAgent.from_config(
            key="desk", system_prompt="You handle refunds.", model="openai:gpt-4o-mini"
        )
    )
    desk_tools = ToolRegistry()
    register_agent_tools(
        desk_tools,
        [AgentTool(agent_key="desk", invocation_mode=InvocationMode.HANDOFF, context_mode=ContextMode.FULL)],
    )
    agents(ToolCallingAgent.from_config(key="front", tools=desk_tools, model="openai:gpt-4o-mini"))
    # front calls the desk tool; the desk answers; front must not answer again
    openai_server.push(ToolCalls([("desk", {"message": "refund please"})]), Text(["Refund issued."]))
    run, _ = run_create(
        agent_key="front", messages=[{"role": "user", "content": "refund please"}], user=owner
    )
    work()
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.output["final_output"] == {"response": "Refund issued.", "handed_off_to": "desk"}
    messages = list(
        AgentEvent.objects.filter(run=run, event_type="assistant.message").values_list("payload", flat=True)
    )
    assert [m["content"] for m in messages] == ["Refund issued."]
    calls = AgentEvent.objects.filter(run=run, event_type="tool.call")
    assert calls.count() == 1 and calls.get().payload["is_agent_tool"] is True
    assert len(openai_server.requests) == 2  # front once, desk once; no third model call
    assert AgentRun.objects.get(parent_run=run).status == "succeeded"
    run.conversation.refresh_from_db()
    assert run.conversation.active_agent_key == "desk"
