"""A run's cost: unpriced models are counted in tokens and shown as "price unknown", never $0."""

from __future__ import annotations

import asyncio

import pytest
from django.test import Client
from rest_framework.test import APIClient

from runtime.engine.worker import Worker
from runtime.interfaces import AgentRuntime, RunContext, RunResult
from runtime.models import AgentRun
from runtime.registry import register_runtime, unregister_runtime
from runtime.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)


class MixedModelsAgent(AgentRuntime):
    """One priced call and one to a model without a price, as a tool loop over two models would."""

    key = "mixed-models"

    async def run(self, ctx: RunContext) -> RunResult:
        ctx.add_usage(prompt_tokens=100, completion_tokens=10, cost_usd=0.0015)
        if ctx.params.get("unpriced"):
            ctx.add_usage(prompt_tokens=400, completion_tokens=40, cost_usd=None)
        return RunResult(final_output={"response": "done"})


@pytest.fixture
def mixed_agent():
    register_runtime(MixedModelsAgent())
    yield
    unregister_runtime("mixed-models")


def finished_run(user, **params) -> AgentRun:
    run, _ = run_create(
        agent_key="mixed-models", messages=[{"role": "user", "content": "hi"}], user=user, params=params
    )
    asyncio.run(Worker(once=True, poll_interval=0.05).run())
    run.refresh_from_db()
    assert run.status == "succeeded"
    return run


def test_unpriced_tokens_are_stored_and_the_cost_reads_price_unknown(mixed_agent, owner):
    run = finished_run(owner, unpriced=True)
    assert (run.prompt_tokens, run.completion_tokens, run.unpriced_tokens) == (500, 50, 440)
    assert run.cost_label == "$0.0015 + price unknown for 440 tokens"
    priced = finished_run(owner)
    assert priced.unpriced_tokens == 0 and priced.cost_label == "$0.0015"


def test_the_api_gives_no_cost_when_part_of_it_is_unknown(mixed_agent, owner):
    run = finished_run(owner, unpriced=True)
    client = APIClient()
    client.force_authenticate(owner)
    usage = client.get(f"/api/agents/runs/{run.pk}/").json()["usage"]
    assert usage["cost_usd"] is None and usage["unpriced_tokens"] == 440


def test_the_admin_run_page_and_list_say_price_unknown(mixed_agent, owner):
    run = finished_run(owner, unpriced=True)
    AgentRun.objects.filter(pk=run.pk).update(cost_usd=0)
    owner.is_superuser = owner.is_staff = True
    owner.save()
    client = Client()
    client.force_login(owner)
    page = client.get(f"/admin/runtime/agentrun/{run.pk}/change/").content.decode()
    listing = client.get("/admin/runtime/agentrun/").content.decode()
    for body in (page, listing):
        assert "price unknown" in body and "$0.0000" not in body
