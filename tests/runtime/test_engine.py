"""The run lifecycle through a real in-process worker against PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from runtime import conf
from runtime.engine.worker import Worker
from runtime.models import AgentEvent, AgentRun
from runtime.services import RunAlreadyFinished, RunInputError, run_cancel, run_create

pytestmark = pytest.mark.django_db(transaction=True)


def work(**options) -> int:
    options.setdefault("poll_interval", 0.05)
    return asyncio.run(Worker(once=True, **options).run())


def events(run: AgentRun) -> list[tuple[int, str]]:
    return list(AgentEvent.objects.filter(run=run).order_by("seq").values_list("seq", "event_type"))


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_run_succeeds_with_ordered_gap_free_events_and_messages(owner):
    run, created = run_create(agent_key="echo", messages=say("hello there world"), user=owner)
    assert created and run.status == "queued"
    work()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.attempt == 1
    assert run.output["final_output"] == {"response": "hello there world"}
    seen = events(run)
    assert [seq for seq, _ in seen] == list(range(1, len(seen) + 1))
    assert [t for _, t in seen] == [
        "run.started",
        "assistant.delta",
        "assistant.delta",
        "assistant.delta",
        "assistant.message",
        "run.succeeded",
    ]
    assert run.conversation.get_message_history() == [
        {"role": "user", "content": "hello there world"},
        {"role": "assistant", "content": "hello there world"},
    ]
    assert run.conversation.get_last_assistant_message() == {
        "role": "assistant",
        "content": "hello there world",
    }


def test_second_run_sees_history_and_repeated_messages_are_kept(owner):
    first, _ = run_create(agent_key="echo", messages=say("same"), user=owner)
    work()
    run_create(agent_key="echo", messages=say("same"), user=owner, conversation=first.conversation)
    work()
    history = first.conversation.get_message_history()
    assert [m["content"] for m in history] == ["same", "same", "same", "same"]


def test_unknown_agent_and_bad_messages_write_nothing(owner):
    with pytest.raises(RunInputError) as err:
        run_create(agent_key="nope", messages=say("x"), user=owner)
    assert err.value.field == "agent_key"
    with pytest.raises(RunInputError) as err:
        run_create(agent_key="echo", messages=[{"role": "robot", "content": "x"}], user=owner)
    assert err.value.field == "messages[0].role"
    with pytest.raises(RunInputError) as err:
        run_create(agent_key="echo", messages="hello", user=owner)
    assert err.value.field == "messages"
    assert AgentRun.objects.count() == 0


def test_idempotency_key_returns_the_first_run_per_caller(owner, other_staff):
    first, created = run_create(agent_key="noop", messages=say("a"), user=owner, idempotency_key="k1")
    again, created_again = run_create(agent_key="noop", messages=say("a"), user=owner, idempotency_key="k1")
    other, other_created = run_create(
        agent_key="noop", messages=say("a"), user=other_staff, idempotency_key="k1"
    )
    assert created and not created_again and other_created
    assert again.pk == first.pk and other.pk != first.pk


def test_cancelled_queued_run_never_starts(owner):
    run, _ = run_create(agent_key="echo", messages=say("never"), user=owner)
    run_cancel(run=run)
    work()
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert [t for _, t in events(run)] == ["run.cancelled"]
    with pytest.raises(RunAlreadyFinished):
        run_cancel(run=run)


def test_crashing_run_retries_with_backoff_then_fails_without_leaking_details(owner):
    run, _ = run_create(agent_key="crash", messages=say("boom"), user=owner)
    for _ in range(10):
        work()
        run.refresh_from_db()
        if run.status == "failed":
            break
        # backoff: the run is not due again immediately
        assert run.status == "queued" and run.available_at is not None
        AgentRun.objects.filter(pk=run.pk).update(available_at=run.created_at)
    assert run.status == "failed"
    assert run.attempt == run.max_attempts == conf.get("MAX_RETRIES") + 1
    assert "hunter2" not in str(run.error)
    assert run.error["code"] == "agent_error"
    types = [t for _, t in events(run)]
    assert types.count("run.retrying") == run.max_attempts - 1
    assert types[-1] == "run.failed"
    assert not any(
        "hunter2" in str(p) for p in AgentEvent.objects.filter(run=run).values_list("payload", flat=True)
    )


def test_flaky_run_succeeds_on_second_attempt(owner):
    run, _ = run_create(agent_key="flaky", messages=say("x"), user=owner)
    work()
    AgentRun.objects.filter(pk=run.pk).update(available_at=run.created_at)
    work()
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempt == 2
    assert run.output["final_output"]["response"] == "ok on attempt 2"


def test_checkpoint_is_offered_to_the_next_attempt(owner):
    run, _ = run_create(agent_key="checkpoint", messages=say("x"), user=owner)
    work()
    AgentRun.objects.filter(pk=run.pk).update(available_at=run.created_at)
    work()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.output["final_output"] == {"resumed_from": 1}
    # Each checkpoint row is written with the seq and attempt of its state.checkpoint event.
    marks = AgentEvent.objects.filter(run=run, event_type="state.checkpoint").order_by("seq")
    saved = run.checkpoints.order_by("seq")
    assert (
        [(e.seq, e.attempt) for e in marks]
        == [(c.seq, c.attempt) for c in saved]
        == [(c.seq, a) for c, a in zip(saved, (1, 2), strict=True)]
    )
    assert [c.state for c in saved] == [{"done": 1}, {"done": 2}]
    seqs = [seq for seq, _ in events(run)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_debug_mode_fails_at_once_and_keeps_the_traceback_in_a_debug_event(owner):
    conf.configure(debug=True)
    run, _ = run_create(agent_key="crash", messages=say("x"), user=owner)
    work()
    run.refresh_from_db()
    assert run.status == "failed" and run.attempt == 1
    debug = AgentEvent.objects.get(run=run, event_type="debug.exception")
    assert debug.visibility == "debug" and "RuntimeError" in debug.payload["traceback"]


def test_runs_are_claimed_in_fifo_order(owner):
    runs = [run_create(agent_key="noop", messages=say(str(i)), user=owner)[0] for i in range(5)]
    work(concurrency=1)
    started = list(
        AgentRun.objects.filter(pk__in=[r.pk for r in runs])
        .order_by("started_at")
        .values_list("pk", flat=True)
    )
    assert started == [r.pk for r in runs]


def test_history_leaves_out_runs_that_did_not_succeed_unless_asked(owner):
    first, _ = run_create(agent_key="echo", messages=say("first"), user=owner)
    work()
    dropped, _ = run_create(
        agent_key="echo", messages=say("never answered"), user=owner, conversation=first.conversation
    )
    run_cancel(run=dropped)
    conversation = first.conversation
    assert [m["content"] for m in conversation.get_message_history()] == ["first", "first"]
    assert [m["content"] for m in conversation.get_message_history(include_failed_runs=True)] == [
        "first", "first", "never answered",
    ]  # fmt: skip


def test_runs_ending_together_each_get_their_own_gap_free_outcome(owner):
    runs = [run_create(agent_key="noop", messages=say(str(i)), user=owner)[0] for i in range(12)]
    work(concurrency=10)  # the no-op runs end in the same loop ticks: their outcomes share statements
    for run in runs:
        run.refresh_from_db()
        assert run.status == "succeeded" and run.lease_token is None
        assert events(run) == [(1, "run.started"), (2, "run.succeeded")]


def test_outcomes_written_together_skip_a_run_whose_lease_was_lost(owner):
    from django.utils import timezone

    from runtime.engine import leases, outcomes

    runs = [run_create(agent_key="noop", messages=say(str(i)), user=owner)[0] for i in range(3)]
    claims = leases.claim_runs(owner="w1", limit=3, ttl=30)
    lost = claims[1]
    AgentRun.objects.filter(pk=lost.run_id).update(lease_expires_at=timezone.now())
    leases.sweep_expired()  # rescued: its old token is stale now

    ending = [
        outcomes.Outcome(c.run_id, c.lease_token, "succeeded", c.attempt, [("run.succeeded", {"n": i})])
        for i, c in enumerate(claims)
    ]
    held = outcomes.finish_many(ending)

    assert held == {claims[0].run_id, claims[2].run_id}
    statuses = {str(r.pk): r.status for r in AgentRun.objects.filter(pk__in=[r.pk for r in runs])}
    assert statuses[lost.run_id] == "queued"
    assert [t for _, t in events(AgentRun.objects.get(pk=lost.run_id))] == ["run.started", "run.retrying"]
    for claim in (claims[0], claims[2]):
        assert statuses[claim.run_id] == "succeeded"
        assert events(AgentRun.objects.get(pk=claim.run_id)) == [(1, "run.started"), (2, "run.succeeded")]


def test_one_heartbeat_extends_every_held_lease_and_reports_cancels_and_losses(owner):
    from django.utils import timezone

    from runtime.engine import leases

    for i in range(3):
        run_create(agent_key="noop", messages=say(str(i)), user=owner)
    held, cancelled, lost = leases.claim_runs(owner="w1", limit=3, ttl=5)
    run_cancel(run=AgentRun.objects.get(pk=cancelled.run_id))
    AgentRun.objects.filter(pk=lost.run_id).update(lease_expires_at=timezone.now())
    leases.sweep_expired()

    beats = leases.heartbeat_many([(c.run_id, c.lease_token) for c in (held, cancelled, lost)], ttl=600)

    assert beats == {held.run_id: False, cancelled.run_id: True}
    extended = AgentRun.objects.get(pk=held.run_id).lease_expires_at
    assert extended > timezone.now() + timezone.timedelta(seconds=500)
