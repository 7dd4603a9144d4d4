"""Caps per run set on the widget's channel page (steps, tokens, seconds) stop a visitor's run.

Each run goes through the real worker loop, with the real OpenAI SDK against a fake server that
keeps asking for tools; the caps come from the channel (runtime/channels/admission.py) and only
ever tighten the agent's own.
"""

from __future__ import annotations

import time

import pytest

from accounts.models import AnonymousSession
from runtime.channels.models import WidgetChannel
from runtime.models import AgentRun
from runtime.services import run_create
from tests.fakes.llm_servers import Text, ToolCalls
from tests.llm.run_caps import work

pytestmark = pytest.mark.django_db(transaction=True)
SITE = "https://shop.example.com"


def visitor_run(agent_key: str, **caps) -> AgentRun:
    WidgetChannel.objects.create(agent_key=agent_key, allowed_origins=[SITE], **caps)
    session = AnonymousSession.objects.create(metadata={"origin": SITE})
    run, _ = run_create(
        agent_key=agent_key,
        messages=[{"role": "user", "content": "find me shoes"}],
        anonymous_session_id=session.pk,
    )
    work()
    run.refresh_from_db()
    return run


def test_most_steps_per_answer_stops_the_tool_loop(capped_agents, openai_server):
    openai_server.push(*[ToolCalls([("lookup", {"sku": f"s{n}"})]) for n in range(5)])
    run = visitor_run("looper", max_steps_per_run=2)
    assert run.status == "succeeded", run.error
    assert len(openai_server.requests) == 2  # the agent's own limit is 10
    assert run.output["final_output"]["stopped"] == "max_iterations"
    assert "after 2 steps" in run.output["final_output"]["response"]


def test_most_tokens_per_answer_stops_before_the_next_step(capped_agents, openai_server):
    openai_server.push(ToolCalls([("lookup", {"sku": "s1"})], prompt_tokens=150), Text(["never asked"]))
    run = visitor_run("looper", max_tokens_per_run=100)
    assert run.status == "succeeded", run.error
    assert len(openai_server.requests) == 1
    assert run.output["final_output"]["stopped"] == "max_tokens"
    assert "100 tokens" in run.output["final_output"]["response"]
    assert run.prompt_tokens >= 150


def test_most_seconds_per_answer_times_the_run_out(capped_agents):
    started = time.monotonic()
    run = visitor_run("sleeper", max_seconds_per_run=1)  # the form's floor is 5 s; the runner takes any
    assert run.status == "timed_out"
    assert "1 seconds" in (run.error or {}).get("message", "")
    assert time.monotonic() - started < 20


def test_without_caps_the_agent_keeps_its_own_limits(capped_agents, openai_server):
    openai_server.push(*[ToolCalls([("lookup", {"sku": f"s{n}"})]) for n in range(3)], Text(["Found them."]))
    run = visitor_run("looper")
    assert run.status == "succeeded" and run.output["final_output"] == {"response": "Found them."}
    assert len(openai_server.requests) == 4
