"""A stored HTTP tool whose spec no longer validates fails that tool only, readably; the run goes on."""

from __future__ import annotations

import asyncio

import pytest

from builder.models import ToolDefinition
from runtime.engine.worker import Worker
from runtime.models import AgentEvent
from runtime.services import run_create
from tests.builder.conftest import make_agent
from tests.fakes.llm_servers import Text, ToolCalls

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_calls_the_broken_tool_and_the_others(openai_server, owner):
    for name in ("weather", "stock"):
        ToolDefinition.objects.create(
            owner=owner,
            name=name,
            description=f"{name} lookup",
            spec={
                "method": "GET",
                "url": f"https://api.example.com/{name}",
                "parameters": {"type": "object"},
            },
        )
    make_agent(
        owner,
        slug="shop",
        model="openai:gpt-4o-mini",
        http_tools=["weather", "stock"],
        python_tools=["current_time"],
    )
    # saved before a rule tightened, or edited in the database: no longer a valid spec
    ToolDefinition.objects.filter(name="weather").update(spec={"method": "BREW", "url": "ftp://old.example"})

    openai_server.push(ToolCalls([("weather", {}), ("current_time", {})]), Text(["Done."]))
    run, _ = run_create(agent_key="shop", messages=[{"role": "user", "content": "hi"}], user=owner)
    asyncio.run(Worker(once=True, poll_interval=0.05).run())

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    offered = {t["function"]["name"] for t in openai_server.requests[0].json["tools"]}
    assert {"weather", "stock", "current_time"} <= offered
    results = {
        e.payload["tool"]: e.payload["result"]
        for e in AgentEvent.objects.filter(run=run, event_type="tool.result")
    }
    assert "The tool weather cannot run: its saved settings are invalid" in str(results["weather"])
    assert "Ask an editor to fix it on the Tools page" in str(results["weather"])
    assert "error" not in str(results["current_time"]).lower()
