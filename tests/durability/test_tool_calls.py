"""Tool calls are at-least-once: each has a stable idempotency key, and a worker that lost its
lease does not start one (item 12 of the outside review)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from runtime.engine import leases
from runtime.engine.environment import RunEnvironment
from runtime.engine.runner import execute
from runtime.models import AgentEvent, AgentRun
from runtime.services import run_create
from tests.agents import TOOL_CALLS

pytestmark = pytest.mark.django_db(transaction=True)


def claim_and_execute(owner, text: str, before=None) -> tuple[AgentRun, str]:
    run, _ = run_create(agent_key="tool-user", messages=[{"role": "user", "content": text}], user=owner)
    (claim,) = leases.claim_runs(owner="w1", limit=1, ttl=30)
    if before:
        before(run)

    async def main() -> str:
        with ThreadPoolExecutor(2) as executor:
            env = RunEnvironment(executor=executor, owner="w1", ttl=30)
            outcome = await execute(claim, env, cancel_events={})
            await env.close()
            for _ in range(2):
                await asyncio.get_running_loop().run_in_executor(executor, connections.close_all)
            return outcome

    outcome = asyncio.run(main())
    run.refresh_from_db()
    return run, outcome


def test_a_tool_call_has_a_stable_idempotency_key(owner):
    TOOL_CALLS.clear()
    run, outcome = claim_and_execute(owner, "ship order 7")
    assert outcome == "succeeded" and run.status == "succeeded"
    assert [("ship order 7", f"{run.pk}:call_1")] == TOOL_CALLS


def test_a_worker_whose_lease_expired_does_not_start_the_tool(owner):
    """A frozen worker wakes up after its lease ran out: it must stop before the side effect."""
    TOOL_CALLS.clear()

    def expire(run):
        AgentRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    run, outcome = claim_and_execute(owner, "charge the card", before=expire)
    assert TOOL_CALLS == []  # the tool was never called
    assert outcome == "lost"
    assert run.status == "running"  # the sweep rescues it; this worker wrote nothing
    assert list(AgentEvent.objects.filter(run=run).values_list("event_type", flat=True)) == ["run.started"]


def test_a_rescued_run_s_old_worker_does_not_start_the_tool(owner):
    TOOL_CALLS.clear()

    def rescue(run):
        AgentRun.objects.filter(pk=run.pk).update(status="queued", lease_token=None, lease_expires_at=None)

    _, outcome = claim_and_execute(owner, "send the email", before=rescue)
    assert TOOL_CALLS == []
    assert outcome == "lost"
