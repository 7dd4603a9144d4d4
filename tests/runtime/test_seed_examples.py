"""The seed README's own agents, with only import paths changed, through a real runagent process."""

from __future__ import annotations

import pytest

from runtime.models import AgentEvent, AgentRun
from runtime.services import run_create
from tests.processes import WorkerProcess, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def finished(*runs: AgentRun) -> bool:
    return AgentRun.objects.filter(pk__in=[r.pk for r in runs], status="succeeded").count() == len(runs)


def test_seed_chat_and_tool_agents_run_on_the_demo_model_through_runagent(owner):
    chat, _ = run_create(
        agent_key="chat-agent", messages=[{"role": "user", "content": "Hello! How are you?"}], user=owner
    )
    tool, _ = run_create(
        agent_key="tool-agent",
        messages=[{"role": "user", "content": "Use get_weather for Paris"}],
        user=owner,
    )
    weather, _ = run_create(
        agent_key="weather-agent",
        messages=[{"role": "user", "content": "get_weather Lisbon please"}],
        user=owner,
    )
    with WorkerProcess("--concurrency", "3") as worker:
        wait_until(lambda: finished(chat, tool, weather), timeout=30, what="the seed agents to finish")
        log = worker.stop()
    for run in (chat, tool, weather):
        run.refresh_from_db()
    assert "demo" in chat.output["final_output"]["response"].lower()
    # the tool loop ran: the demo model called get_weather and answered with its result
    tool_events = list(AgentEvent.objects.filter(run=tool).values_list("event_type", flat=True))
    assert "tool.call" in tool_events and "tool.result" in tool_events
    assert "Paris" in str(AgentEvent.objects.get(run=tool, event_type="tool.result").payload)
    assert "Lisbon" in str(AgentEvent.objects.filter(run=weather, event_type="tool.result").first().payload)
    # deltas streamed before the final message
    assert "assistant.delta" in list(AgentEvent.objects.filter(run=chat).values_list("event_type", flat=True))
    assert f"run {chat.pk} (chat-agent, attempt 1/" in log and "succeeded" in log
