"""A worker writes the pending events of all its runs in one statement, each run fenced on its own."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from runtime.engine import leases
from runtime.engine.environment import RunEnvironment
from runtime.events import EventBatch, LeaseLost, write_many
from runtime.models import AgentCheckpoint, AgentEvent, AgentRun
from runtime.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)


def claimed_runs(owner, count: int) -> list[leases.Claim]:
    for i in range(count):
        run_create(agent_key="noop", messages=[{"role": "user", "content": str(i)}], user=owner)
    return leases.claim_runs(owner="w1", limit=count, ttl=30)


def seqs(run_id: str) -> list[tuple[int, str]]:
    return list(AgentEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "event_type"))


def test_each_run_gets_gap_free_seqs_and_a_lost_lease_writes_nothing(owner):
    kept, other, lost = claimed_runs(owner, 3)
    AgentRun.objects.filter(pk=lost.run_id).update(lease_token=None, status="queued")  # rescued elsewhere

    written = write_many(
        [
            EventBatch(
                kept.run_id, kept.lease_token, kept.attempt, [("assistant.delta", {"delta": "a"})] * 2
            ),
            EventBatch(
                other.run_id,
                other.lease_token,
                other.attempt,
                [("tool.result", {"result": 1}), ("state.checkpoint", {"keys": ["k"]})],
                checkpoints=[(1, {"k": 1})],
            ),
            EventBatch(lost.run_id, lost.lease_token, lost.attempt, [("assistant.delta", {"delta": "x"})]),
        ]
    )

    assert written == {kept.run_id: 3, other.run_id: 3}
    assert seqs(kept.run_id) == [(1, "run.started"), (2, "assistant.delta"), (3, "assistant.delta")]
    assert seqs(other.run_id) == [(1, "run.started"), (2, "tool.result"), (3, "state.checkpoint")]
    checkpoint = AgentCheckpoint.objects.get(run_id=other.run_id)
    assert (checkpoint.seq, checkpoint.state, checkpoint.attempt) == (3, {"k": 1}, 1)
    assert seqs(lost.run_id) == [(1, "run.started")]


def test_runs_writing_at_once_each_learn_their_own_outcome(owner):
    runs = claimed_runs(owner, 3)
    lost = runs[2]
    AgentRun.objects.filter(pk=lost.run_id).update(lease_token=None, status="queued")

    async def main() -> list[int | BaseException]:
        with ThreadPoolExecutor(1) as executor:
            env = RunEnvironment(executor=executor, owner="w1", ttl=30)
            results = await asyncio.gather(
                *(
                    env.write_events(
                        EventBatch(c.run_id, c.lease_token, c.attempt, [("assistant.delta", {"delta": "t"})])
                    )
                    for c in runs
                ),
                return_exceptions=True,
            )
            # the thread's connection must not outlive the test (its database is dropped)
            await asyncio.get_running_loop().run_in_executor(executor, connections.close_all)
            return results

    first, second, third = asyncio.run(main())
    assert first == 2 and second == 2
    assert isinstance(third, LeaseLost)
    assert seqs(lost.run_id) == [(1, "run.started")]
