"""Conversation messages keep one gap-free sequence, also under concurrent writers."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from runtime.engine.outcomes import Outcome, finish, finish_many
from runtime.events import LeaseLost
from runtime.models import AgentConversation, AgentMessage, AgentRun
from runtime.services import run_create

WRITERS = 6
RUNS_EACH = 8


def _in_threads(target, count: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def body(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_to_one_conversation_all_land_in_order(owner):
    first, _ = run_create(agent_key="noop", messages=[{"role": "user", "content": "start"}], user=owner)
    conversation = first.conversation

    def send(index: int) -> None:
        for n in range(RUNS_EACH):
            run_create(
                agent_key="noop",
                messages=[
                    {"role": "user", "content": f"writer {index} message {n} part 1"},
                    {"role": "user", "content": f"writer {index} message {n} part 2"},
                ],
                user=owner,
                conversation=conversation,
            )

    assert _in_threads(send, WRITERS) == []
    seqs = list(
        AgentMessage.objects.filter(conversation=conversation).order_by("seq").values_list("seq", flat=True)
    )
    expected = 1 + WRITERS * RUNS_EACH * 2
    assert seqs == list(range(1, expected + 1))
    # a run's two messages are adjacent: a writer reserves its whole block at once
    for run in AgentRun.objects.filter(conversation=conversation).exclude(pk=first.pk):
        first_seq, second_seq = run.messages.order_by("seq").values_list("seq", flat=True)
        assert second_seq == first_seq + 1
    conversation.refresh_from_db()
    assert conversation.last_message_seq == expected


@pytest.mark.django_db(transaction=True)
def test_worker_answer_and_a_new_user_message_do_not_collide(owner):
    """The worker stores a run's answer while the user sends the next message."""
    run, _ = run_create(agent_key="noop", messages=[{"role": "user", "content": "q0"}], user=owner)
    conversation = run.conversation
    AgentRun.objects.filter(pk=run.pk).update(status="running", lease_token="7" * 32, attempt=1)

    def write(index: int) -> None:
        if index == 0:
            finish(
                str(run.pk),
                "7" * 32,
                status="succeeded",
                attempt=1,
                events=[("run.succeeded", {})],
                messages=[{"role": "assistant", "content": "answer"}],
                conversation_id=str(conversation.pk),
                agent_key="noop",
            )
        else:
            run_create(
                agent_key="noop",
                messages=[{"role": "user", "content": "next"}],
                user=owner,
                conversation=conversation,
            )

    assert _in_threads(write, 2) == []
    contents = list(
        AgentMessage.objects.filter(conversation=conversation).order_by("seq").values_list("seq", "content")
    )
    assert [seq for seq, _ in contents] == [1, 2, 3]
    assert {content for _, content in contents} == {"q0", "answer", "next"}


@pytest.mark.django_db(transaction=True)
def test_migration_sets_the_counter_of_existing_conversations(owner):
    executor = MigrationExecutor(connection)
    executor.migrate([("runtime", "0002_run_created_index")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO runtime_agentconversation (id, agent_key, title, metadata, active_agent_key, "
            "created_at, updated_at) VALUES ('00000000-0000-0000-0000-0000000000c1', 'noop', '', '{}', '', "
            "now(), now())"
        )
        cursor.execute(
            "INSERT INTO runtime_agentmessage (conversation_id, seq, role, content, tool_call_id, name, "
            "agent_key, created_at) SELECT '00000000-0000-0000-0000-0000000000c1', s, 'user', '\"x\"', '', '', "
            "'', now() FROM generate_series(1, 3) AS s"
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    conversation = AgentConversation.objects.get(pk="00000000-0000-0000-0000-0000000000c1")
    assert conversation.last_message_seq == 3
    run, _ = run_create(
        agent_key="noop", messages=[{"role": "user", "content": "4th"}], user=owner, conversation=conversation
    )
    assert list(run.messages.values_list("seq", flat=True)) == [4]


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_lost_its_lease_stores_no_messages(owner):
    run, _ = run_create(agent_key="noop", messages=[{"role": "user", "content": "q"}], user=owner)
    AgentRun.objects.filter(pk=run.pk).update(status="running", lease_token="7" * 32, attempt=1)
    with pytest.raises(LeaseLost):
        finish(
            str(run.pk),
            "8" * 32,  # not the token the run holds: the lease went to another worker
            status="succeeded",
            attempt=1,
            events=[("run.succeeded", {})],
            messages=[{"role": "assistant", "content": "stale answer"}],
            conversation_id=str(run.conversation_id),
            agent_key="noop",
        )
    assert list(
        AgentMessage.objects.filter(conversation_id=run.conversation_id).values_list("content", flat=True)
    ) == ["q"]
    run.conversation.refresh_from_db()
    assert run.conversation.last_message_seq == 1
    run.refresh_from_db()
    assert run.status == "running" and run.next_seq == 0


def _running(owner, conversation=None, text="q") -> AgentRun:
    run, _ = run_create(
        agent_key="noop", messages=[{"role": "user", "content": text}], user=owner, conversation=conversation
    )
    token = uuid.uuid4().hex
    AgentRun.objects.filter(pk=run.pk).update(status="running", lease_token=token, attempt=1)
    run.lease_token = token
    return run


def _outcome(run: AgentRun, answer: str, *, token: str | None = None) -> Outcome:
    return Outcome(
        str(run.pk),
        token or str(run.lease_token),
        "succeeded",
        1,
        [("run.succeeded", {})],
        conversation_id=str(run.conversation_id),
        messages=[{"role": "assistant", "content": answer}, {"role": "assistant", "content": answer + "!"}],
        agent_key="noop",
    )


@pytest.mark.django_db(transaction=True)
def test_runs_ending_together_store_their_answers_in_one_statement(owner):
    first = _running(owner)
    second = _running(owner, first.conversation, "q2")  # the same conversation
    other = _running(owner)  # another one
    stale = _running(owner)
    written = finish_many(
        [
            _outcome(first, "a1"),
            _outcome(second, "a2"),
            _outcome(other, "b"),
            _outcome(stale, "x", token="9" * 32),
        ]
    )
    assert written == {str(first.pk), str(second.pk), str(other.pk)}
    shared = list(
        AgentMessage.objects.filter(conversation=first.conversation)
        .order_by("seq")
        .values_list("seq", "run_id")
    )
    assert [seq for seq, _ in shared] == [1, 2, 3, 4, 5, 6]
    # each run's two answers are adjacent, after the two questions
    answers = [run_id for _, run_id in shared[2:]]
    assert answers[0] == answers[1] and answers[2] == answers[3] and answers[0] != answers[2]
    assert list(other.conversation.messages.order_by("seq").values_list("content", flat=True)) == [
        "q",
        "b",
        "b!",
    ]
    assert list(stale.conversation.messages.values_list("content", flat=True)) == ["q"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_finishing_runs_of_the_same_conversations_do_not_deadlock(owner):
    """Each worker's batch holds runs of both conversations, given in opposite orders."""
    left, right = _running(owner), _running(owner)
    batches = [
        [_running(owner, left.conversation), _running(owner, right.conversation)],
        [_running(owner, right.conversation), _running(owner, left.conversation)],
    ]
    results: list[set[str]] = [set(), set()]

    def finish_batch(index: int) -> None:
        for _ in range(10):  # fresh runs each round, so both workers keep colliding
            runs = [_running(owner, run.conversation) for run in batches[index]]
            results[index] |= finish_many([_outcome(run, f"w{index}") for run in runs])

    assert _in_threads(finish_batch, 2) == []
    assert len(results[0]) == len(results[1]) == 20
    for conversation in (left.conversation, right.conversation):
        seqs = list(conversation.messages.order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))
