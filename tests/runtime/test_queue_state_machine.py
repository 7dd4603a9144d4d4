"""A property-based model of the queue: claim, heartbeat, complete, expire, cancel, retry.

Whatever the interleaving, a run never has two valid leases, a stale fencing
token can write nothing, and terminal states stay terminal.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from runtime.engine import leases, outcomes
from runtime.events import LeaseLost
from runtime.models import TERMINAL_STATUSES, AgentEvent, AgentRun
from runtime.services import RunAlreadyFinished, run_cancel, run_create

WORKERS = ("w1", "w2")


class QueueMachine(RuleBasedStateMachine):
    @initialize()
    def create(self):
        AgentRun.objects.all().delete()
        self.run, _ = run_create(agent_key="noop", messages=[{"role": "user", "content": "x"}])
        self.tokens: dict[str, tuple[str, int]] = {}  # worker -> (token, attempt) it believes it holds
        self.terminal: str | None = None

    def _row(self) -> AgentRun:
        return AgentRun.objects.get(pk=self.run.pk)

    @rule(worker=st.sampled_from(WORKERS))
    def claim(self, worker):
        AgentRun.objects.filter(pk=self.run.pk, status="queued").update(available_at=timezone.now())
        for claim in leases.claim_runs(owner=worker, limit=5, ttl=30):
            self.tokens[worker] = (claim.lease_token, claim.attempt)

    @rule(worker=st.sampled_from(WORKERS))
    def heartbeat(self, worker):
        if worker in self.tokens:
            token, _ = self.tokens[worker]
            beat = leases.heartbeat(str(self.run.pk), token, ttl=30)
            assert beat.alive == (
                self._row().lease_token is not None and str(self._row().lease_token) == token
            )

    @rule(worker=st.sampled_from(WORKERS))
    def complete(self, worker):
        if worker not in self.tokens:
            return
        token, attempt = self.tokens.pop(worker)
        valid = str(self._row().lease_token) == token
        try:
            outcomes.finish(
                str(self.run.pk), token, status="succeeded", attempt=attempt, events=[("run.succeeded", {})]
            )
        except LeaseLost:
            assert not valid
        else:
            assert valid

    @rule(worker=st.sampled_from(WORKERS))
    def fail(self, worker):
        if worker not in self.tokens:
            return
        token, attempt = self.tokens.pop(worker)
        valid = str(self._row().lease_token) == token
        try:
            leases.retry_or_fail(
                str(self.run.pk),
                token,
                attempt=attempt,
                max_attempts=self._row().max_attempts,
                error={"code": "x"},
                events=[],
                retry_base=0.001,
            )
        except LeaseLost:
            assert not valid

    @rule()
    def expire(self):
        AgentRun.objects.filter(pk=self.run.pk, status="running").update(
            lease_expires_at=timezone.now() - timezone.timedelta(seconds=1)
        )
        leases.sweep_expired()

    @rule()
    def cancel(self):
        try:
            run_cancel(run=self._row())
        except RunAlreadyFinished:
            assert self._row().status in TERMINAL_STATUSES

    @invariant()
    def leases_are_exclusive_and_terminal_states_stay(self):
        if not hasattr(self, "run"):
            return
        row = self._row()
        holders = [w for w, (token, _) in self.tokens.items() if str(row.lease_token) == token]
        assert len(holders) <= 1
        if row.status == "running":
            assert row.lease_token is not None
        else:
            assert row.lease_token is None
        if self.terminal is not None:
            assert row.status == self.terminal
        if row.status in TERMINAL_STATUSES:
            self.terminal = row.status
        seqs = list(AgentEvent.objects.filter(run=row).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.django_db
def test_queue_state_machine():
    assert connection.vendor == "postgresql"
    QueueMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
    QueueMachine.TestCase().runTest()
