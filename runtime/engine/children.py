"""Sub-agents: each call is a child run executed inside the parent's worker.

The child gets its own run row (leased to the parent's worker), its own events
(tagged with ``parent_run_id`` and ``sub_agent_run_id``) and its own outcome;
``runtime.multi_agent`` calls ``invoke_child`` for agent tools.

A child that fails is a failed step: the caller's model reads the error and may recover.
A child whose agent does not exist raises ``SubAgentMissing``, which fails the whole run.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from django.utils import timezone

from runtime import registry
from runtime.engine import outcomes
from runtime.engine.environment import RunEnvironment
from runtime.engine.event_writer import EventWriter
from runtime.engine.runner import usage_of, user_error
from runtime.events import LeaseLost
from runtime.interfaces import EventType, RunCancelled, RunContext, RunFailed, RunResult
from runtime.models import AgentRun

logger = logging.getLogger("runtime.runner")


class ChildRunFailed(Exception):
    """A sub-agent's run did not succeed; the message is safe to show to the model and the user."""


class SubAgentMissing(ChildRunFailed, RunFailed):
    """The sub-agent a run calls no longer exists (deleted, unregistered, its pinned version gone).

    Not a failed step the model works around: the agent is broken until someone changes it,
    so the whole run fails (up to the root run) with a message naming the agent and the fix.
    (Still a ``ChildRunFailed``, for code that calls ``invoke_child`` itself and catches that.)
    """

    def __init__(self, agent_key: str, caller_key: str) -> None:
        super().__init__(
            f"The agent {caller_key!r} calls the sub-agent {agent_key!r}, which no longer exists, "
            f"so the run stopped. Remove {agent_key!r} from the sub-agents of {caller_key!r} "
            "(or create an agent with that key again) and try again.",
            code="sub_agent_missing",
        )
        self.agent_key = agent_key


def _create_child(
    parent_run_id: str,
    agent_key: str,
    messages: list[dict],
    owner: str,
    metadata: dict,
    child_run_id: str | None,
) -> AgentRun:
    parent = AgentRun.objects.get(pk=parent_run_id)
    now = timezone.now()
    return AgentRun.objects.create(
        id=child_run_id or uuid.uuid4(),
        agent_key=agent_key,
        parent_run=parent,
        conversation=None,
        user_id=parent.user_id,
        anonymous_session_id=parent.anonymous_session_id,
        input={"messages": messages, "params": {}},
        metadata=metadata,
        model="",
        agent_version=metadata.get("agent_version", ""),
        caller=parent.caller,
        status="running",
        attempt=1,
        max_attempts=1,
        available_at=now,
        started_at=now,
        lease_owner=owner,
        lease_token=uuid.uuid4(),
    )


async def invoke_child(
    parent_ctx: RunContext,
    *,
    agent_key: str,
    input_messages: list[dict[str, Any]],
    metadata: dict[str, Any] | None = None,
    child_run_id: str | None = None,
) -> RunResult:
    """Run a sub-agent as a child run inside the parent's worker and return its result.

    ``child_run_id`` lets the caller announce the child (``sub_agent.start``) before it exists.
    """
    env: RunEnvironment | None = getattr(parent_ctx, "_env", None)
    if env is None:
        raise ChildRunFailed("Sub-agents can only be called from a run executed by a worker.")
    child_run: AgentRun = await env.db(
        _create_child,
        parent_ctx.run_id,
        agent_key,
        input_messages,
        env.owner,
        dict(metadata or {}),
        child_run_id,
    )
    try:
        runtime = await env.db(registry.get_runtime, agent_key, child_run)
    except registry.UnknownAgent as exc:
        await env.db(
            _end_child, child_run, "failed", None, {"code": "unknown_agent", "message": str(exc)}, [], {}
        )
        raise SubAgentMissing(agent_key, parent_ctx.agent_key) from None
    writer = EventWriter(
        env,
        str(child_run.id),
        str(child_run.lease_token),
        1,
        extra={"parent_run_id": parent_ctx.run_id, "sub_agent_run_id": str(child_run.id)},
        last_seq=child_run.next_seq,
    )
    ctx = RunContext(
        run_id=str(child_run.id),
        agent_key=agent_key,
        input_messages=input_messages,
        sink=writer,
        conversation_id=parent_ctx.conversation_id,
        metadata=child_run.metadata,
        model="",
        user_id=parent_ctx.user_id,
        anonymous_session_id=parent_ctx.anonymous_session_id,
        parent_run_id=parent_ctx.run_id,
        depth=parent_ctx.depth + 1,
        call_chain=(*parent_ctx.call_chain, agent_key),
    )
    ctx._env = env  # type: ignore[attr-defined]
    if parent_ctx.cancelled():
        ctx.request_cancel()
    await writer.emit(EventType.RUN_STARTED, {"run_id": str(child_run.id), "agent_key": agent_key})
    token = ctx.activate()
    try:
        result = await runtime.run(ctx)
    except (asyncio.CancelledError, RunCancelled):
        await writer.drain()
        await asyncio.shield(
            env.db(_end_child, child_run, "cancelled", None, None, writer.take_pending(), usage_of(ctx))
        )
        raise
    except Exception as exc:
        await writer.drain()
        error = user_error(exc)
        logger.error("child run %s (%s) raised", child_run.id, agent_key, exc_info=exc)
        await env.db(_end_child, child_run, "failed", None, error, writer.take_pending(), usage_of(ctx))
        if isinstance(exc, SubAgentMissing):
            raise  # a sub-agent further down is gone: the root run fails with its message
        raise ChildRunFailed(f"The agent {agent_key!r} failed: {error['message']}") from exc
    finally:
        ctx.deactivate(token)
    await writer.drain()
    parent_ctx.add_usage(
        prompt_tokens=ctx.usage["prompt_tokens"],
        completion_tokens=ctx.usage["completion_tokens"],
        cost_usd=ctx.cost_usd,
        unpriced_tokens=ctx.unpriced_tokens,
    )
    output = {"final_output": result.final_output or {}, "final_messages": result.final_messages or []}
    await env.db(_end_child, child_run, "succeeded", output, None, writer.take_pending(), usage_of(ctx))
    result.run_id = str(child_run.id)
    return result


def _end_child(child: AgentRun, status: str, output, error, pending, usage) -> None:
    terminal = {"succeeded": "run.succeeded", "failed": "run.failed", "cancelled": "run.cancelled"}[status]
    payload: dict[str, Any] = {
        "run_id": str(child.id),
        "parent_run_id": str(child.parent_run_id),
        "sub_agent_run_id": str(child.id),
    }
    if error:
        payload["error"] = error
    try:
        outcomes.finish(
            str(child.id),
            str(child.lease_token),
            status=status,
            attempt=1,
            output=output,
            error=error,
            usage=usage,
            events=[*pending, (terminal, payload)],
        )
    except LeaseLost:
        logger.warning("child run %s was ended elsewhere", child.id)
