"""Caps per run set on the agent's API keys page (steps, tokens, seconds) stop a run an API key
starts through the run API.

Like the widget's (tests/llm/test_widget_run_caps.py): each run goes through the real worker
loop, with the real OpenAI SDK against a fake server that keeps asking for tools; the caps come
from the agent's ``AgentBudget`` row (runtime/channels/api_keys.py) and only ever tighten the
agent's own. The OpenAI-compatible endpoint's runs: tests/channels/test_openai_live.py.
"""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from runtime.channels.api_keys import agent_run_caps_set, api_key_create
from runtime.models import AgentRun
from runtime.services import run_retry
from tests.fakes.llm_servers import Text, ToolCalls
from tests.llm.run_caps import work

pytestmark = pytest.mark.django_db(transaction=True)


def key_run(agent_key: str, owner, **caps) -> AgentRun:
    """A run the agent's API key starts through the run API, after the owner set ``caps``."""
    owner.is_superuser = True  # code agents' channels are managed by superusers
    owner.save(update_fields=["is_superuser"])
    if caps:
        agent_run_caps_set(agent_key=agent_key, user=owner, **caps)
    _, token = api_key_create(name="app", agent_keys=[agent_key], user=owner)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        "/api/agents/runs/",
        {
            "agent_key": agent_key,
            "messages": [{"role": "user", "content": "find me shoes"}],
            # a client cannot loosen or drop the owner's caps by sending its own
            "metadata": {"run_caps": {"steps": 50, "tokens": 10**9}},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    work()
    return AgentRun.objects.get(pk=response.json()["id"])


def test_most_steps_per_run_stops_the_tool_loop(capped_agents, openai_server, owner):
    openai_server.push(*[ToolCalls([("lookup", {"sku": f"s{n}"})]) for n in range(5)])
    run = key_run("looper", owner, max_steps_per_run=2)
    assert run.status == "succeeded", run.error
    assert run.metadata["channel"] == "api" and run.metadata["run_caps"] == {"steps": 2}
    assert len(openai_server.requests) == 2  # the agent's own limit is 10
    assert run.output["final_output"]["stopped"] == "max_iterations"
    assert "after 2 steps" in run.output["final_output"]["response"]


def test_most_tokens_per_run_stops_before_the_next_step(capped_agents, openai_server, owner):
    openai_server.push(ToolCalls([("lookup", {"sku": "s1"})], prompt_tokens=150), Text(["never asked"]))
    run = key_run("looper", owner, max_tokens_per_run=100)
    assert run.status == "succeeded", run.error
    assert len(openai_server.requests) == 1
    assert run.output["final_output"]["stopped"] == "max_tokens"
    assert "100 tokens" in run.output["final_output"]["response"]


def test_most_seconds_per_run_times_the_run_out(capped_agents, owner):
    started = time.monotonic()
    run = key_run("sleeper", owner, max_seconds_per_run=5)
    assert run.status == "timed_out"
    assert "5 seconds" in (run.error or {}).get("message", "")
    assert time.monotonic() - started < 25


def test_a_retry_of_a_key_run_meets_the_caps_set_since(capped_agents, openai_server, owner):
    openai_server.push(*[ToolCalls([("lookup", {"sku": f"s{n}"})]) for n in range(3)], Text(["Found them."]))
    first = key_run("looper", owner)
    assert first.status == "succeeded" and "run_caps" not in first.metadata  # the client's were dropped
    agent_run_caps_set(agent_key="looper", user=owner, max_steps_per_run=1)
    openai_server.push(ToolCalls([("lookup", {"sku": "s9"})]), Text(["never asked"]))
    retried = run_retry(run=first)
    work()
    retried.refresh_from_db()
    assert retried.metadata["run_caps"] == {"steps": 1}
    assert retried.output["final_output"]["stopped"] == "max_iterations"


def test_without_caps_the_agent_keeps_its_own_limits(capped_agents, openai_server, owner):
    openai_server.push(*[ToolCalls([("lookup", {"sku": f"s{n}"})]) for n in range(3)], Text(["Found them."]))
    run = key_run("looper", owner)
    assert run.status == "succeeded" and run.output["final_output"] == {"response": "Found them."}
    assert len(openai_server.requests) == 4
