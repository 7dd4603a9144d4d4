"""Event batches under database faults: a lost commit reply, an outage longer than the retries.

The faults are injected where the worker meets the network (``RunEnvironment.write_events``):
the statement really commits (or really is not sent) on PostgreSQL, and the writer sees an error.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from django.db import OperationalError, connections

from runtime.engine import leases
from runtime.engine.environment import RunEnvironment
from runtime.engine.runner import execute
from runtime.models import AgentCheckpoint, AgentEvent, AgentRun
from runtime.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class FaultyEnv(RunEnvironment):
    lose_replies: int = 0  # the next N writes commit, then the writer hears an error
    fail_checkpoints: bool = False  # every batch with a checkpoint fails before it is sent

    async def write_events(self, batch):
        if self.fail_checkpoints and batch.checkpoints:
            raise OperationalError("server closed the connection unexpectedly")
        if self.lose_replies:
            self.lose_replies -= 1
            await super().write_events(batch)  # committed on the server
            raise OperationalError("connection lost while reading the reply")
        return await super().write_events(batch)


def run_claimed(agent_key: str, text: str, owner, **faults) -> AgentRun:
    run, _ = run_create(agent_key=agent_key, messages=[{"role": "user", "content": text}], user=owner)
    (claim,) = leases.claim_runs(owner="w1", limit=1, ttl=30)

    async def main() -> None:
        with ThreadPoolExecutor(2) as executor:
            env = FaultyEnv(executor=executor, owner="w1", ttl=30, retry_base=0.01, **faults)
            await execute(claim, env, cancel_events={})
            await env.close()
            for _ in range(2):  # the threads' connections must not outlive the test database
                await asyncio.get_running_loop().run_in_executor(executor, connections.close_all)

    asyncio.run(main())
    run.refresh_from_db()
    return run


def events(run: AgentRun) -> list[tuple[int, str, dict]]:
    return list(
        AgentEvent.objects.filter(run=run).order_by("seq").values_list("seq", "event_type", "payload")
    )


def test_a_batch_sent_again_after_its_commit_reply_was_lost_is_written_once(owner):
    run = run_claimed("echo", "one two three four", owner, lose_replies=2)

    assert run.status == "succeeded"
    seen = events(run)
    assert [seq for seq, _, _ in seen] == list(range(1, len(seen) + 1))
    deltas = [payload["delta"] for _, kind, payload in seen if kind == "assistant.delta"]
    assert deltas == ["one ", "two ", "three ", "four "]  # no token twice
    assert Counter(kind for _, kind, _ in seen)["assistant.message"] == 1
    assert run.next_seq == len(seen)


def test_a_checkpoint_event_is_never_written_without_its_row_after_a_long_outage(owner):
    # The checkpoint's batch fails more often than the writer retries; the agent then fails
    # and the run is retried. Its unwritten events go out with that outcome: not the checkpoint's.
    run = run_claimed("checkpoint", "go", owner, fail_checkpoints=True)

    assert run.status == "queued"  # retried, as a failed attempt is
    seen = events(run)
    assert [kind for _, kind, _ in seen][-1] == "run.retrying"
    checkpoint_seqs = [seq for seq, kind, _ in seen if kind == "state.checkpoint"]
    rows = list(AgentCheckpoint.objects.filter(run=run).values_list("seq", flat=True))
    assert checkpoint_seqs == rows == []
