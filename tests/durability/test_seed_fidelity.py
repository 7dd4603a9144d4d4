"""The seed README's examples behave as it says (items 13, 14 and 16 of the outside review)."""

from __future__ import annotations

import asyncio

import pytest

from runtime.engine.worker import Worker
from runtime.models import AgentConversation, AgentEvent, AgentRun
from runtime.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)


def work() -> None:
    asyncio.run(Worker(once=True, poll_interval=0.05).run())


@pytest.mark.parametrize(("returns", "named"), [("none", "returned None"), ("dict", "returned a dict")])
def test_a_run_that_returns_no_run_result_fails_at_once_naming_the_problem(owner, returns, named):
    run, _ = run_create(
        agent_key="forgetful",
        messages=[{"role": "user", "content": "hi"}],
        params={"returns": returns},
        user=owner,
    )
    work()  # one pass of the worker: no waiting for a lease to expire
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.attempt == 1  # a bug in the agent is not retried
    assert run.error["code"] == "agent_returned_no_result"
    assert named in run.error["message"] and "must return a RunResult" in run.error["message"]
    failed = AgentEvent.objects.get(run=run, event_type="run.failed")
    assert failed.payload["error"] == run.error


def test_the_readme_s_orm_example_runs_and_keeps_the_user_message_in_the_history(owner):
    # exactly as the original README's "Models" section writes it
    conversation = AgentConversation.objects.create(
        user=owner, agent_key="echo", title="My Chat", metadata={"source": "web"}
    )
    run = AgentRun.objects.create(
        conversation=conversation,
        agent_key="echo",
        input={"messages": [{"role": "user", "content": "What is the weather?"}]},
    )
    work()
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert run.output.get("final_messages", []) == [{"role": "assistant", "content": "What is the weather?"}]
    assert conversation.get_message_history() == [
        {"role": "user", "content": "What is the weather?"},
        {"role": "assistant", "content": "What is the weather?"},
    ]
