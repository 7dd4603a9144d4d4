"""Executes one claimed run: resolve the agent, stream its events, write the outcome.

Algorithm for a claim:
1. Take the run (input, conversation history) as the claim returned it, read its
   last checkpoint if an earlier attempt may have saved one, and resolve the agent
   from the registry, pinned to ``run.agent_version``. The claim wrote ``run.started``.
2. Hand the lease to the worker's shared heartbeat, which
   extends all its leases every ``LEASE_TTL_SECONDS / 3`` in one statement and
   notices lost leases and cancel requests.
3. Await ``runtime.run(ctx)`` under the run timeout.
4. Write the outcome fenced by the lease token, together with the last events
   (``_ENDINGS``: succeeded with messages, failed, cancelled, timed out), or
   retry with backoff, or give the lease back on shutdown.
   Outcomes without messages of runs that end together share one statement.
   A worker that lost its lease writes nothing at all.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime import conf, registry
from runtime.engine import leases
from runtime.engine.environment import RunEnvironment
from runtime.engine.event_writer import EventWriter
from runtime.events import LeaseLost
from runtime.interfaces import AgentRuntime, RunCancelled, RunContext, RunResult, run_caps
from runtime.models import AgentCheckpoint, AgentRun

logger = logging.getLogger("runtime.runner")


@dataclass
class LoadedRun:
    run: AgentRun
    runtime: AgentRuntime | None
    history: list[dict[str, Any]]
    state: dict[str, Any] | None
    problem: str | None = None


def _new_messages(
    input_messages: list[dict[str, Any]], final_messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The messages a run added; agents often return the whole list including their input."""
    n = len(input_messages)
    if n and final_messages[:n] == input_messages:
        return final_messages[n:]
    return final_messages


def _result_messages(ctx: RunContext, result: RunResult) -> list[dict[str, Any]]:
    messages = _new_messages(ctx.input_messages, list(result.final_messages or []))
    if not messages:
        response = (result.final_output or {}).get("response")
        if isinstance(response, str) and response:
            messages = [{"role": "assistant", "content": response}]
    return [m for m in messages if isinstance(m, dict)]


class WrongResult(TypeError):
    """``AgentRuntime.run()`` returned something other than a ``RunResult``: a bug, never retried."""

    code = "agent_returned_no_result"
    retryable = False

    def __init__(self, agent_key: str, value: Any) -> None:
        got = "None" if value is None else f"a {type(value).__name__}"
        self.user_message = (
            f"The agent {agent_key!r} returned {got} from run(); AgentRuntime.run() must return a "
            "RunResult, e.g. RunResult(final_output={'response': text})."
        )
        super().__init__(self.user_message)


def user_error(exc: BaseException) -> dict[str, Any]:
    """What users may see about a failure: a code and a sentence, never a traceback."""
    message = getattr(exc, "user_message", None)
    if not isinstance(message, str) or not message:
        message = f"The agent failed ({type(exc).__name__}). The details are in the server log."
    return {"code": getattr(exc, "code", None) or "agent_error", "message": message}


def usage_of(ctx: RunContext, result: RunResult | None = None) -> dict[str, Any]:
    usage = dict(ctx.usage)
    if result and result.usage and not any(ctx.usage.values()):
        usage.update({k: v for k, v in result.usage.items() if k in {"prompt_tokens", "completion_tokens"}})
    usage["cost_usd"] = ctx.cost_usd
    usage["unpriced_tokens"] = ctx.unpriced_tokens
    return usage


@dataclass
class _Control:
    """How the heartbeat, cancel notifications and lease loss reach a running claim."""

    reason: dict[str, str] = field(default_factory=dict)
    ctx: RunContext | None = None
    main_task: asyncio.Task | None = None

    def stop(self, why: str) -> None:
        self.reason.setdefault("why", why)
        if why == "cancel" and self.ctx is not None:
            self.ctx.request_cancel()
        if self.main_task is not None and not self.main_task.done():
            self.main_task.cancel()


async def execute(
    claim: leases.Claim, env: RunEnvironment, *, cancel_events: dict[str, Callable[[], None]]
) -> str:
    """Run one claim to an outcome; returns the status written (or "lost"/"released").

    The heartbeat starts at once: the lease clock started at the claim, and
    loading the run may be slow on a busy database.
    """
    control = _Control()
    env.watch(claim, control.stop)
    cancel_events[claim.run_id] = lambda: control.stop("cancel")
    try:
        return await _execute(claim, env, control)
    finally:
        env.unwatch(claim.run_id)
        cancel_events.pop(claim.run_id, None)


def _load_claimed(claim: leases.Claim) -> LoadedRun:
    """The run as the claim returned it; only a database agent or a resumed attempt needs a query."""
    run = AgentRun(**claim.run)
    try:
        runtime = registry.get_runtime(run.agent_key, run)
    except registry.UnknownAgent as exc:
        return LoadedRun(run, None, [], None, problem=str(exc))
    checkpoint = None
    # A run given back on shutdown keeps its attempt number but may have saved a checkpoint.
    if claim.started_seq != 1:
        checkpoint = AgentCheckpoint.objects.filter(run_id=claim.run_id).order_by("-seq").first()
    return LoadedRun(run, runtime, claim.history, checkpoint.state if checkpoint else None)


async def _load_for(claim: leases.Claim, env: RunEnvironment) -> LoadedRun:
    if claim.started_seq == 1 and registry.is_code_agent(claim.agent_key):
        return _load_claimed(claim)  # a code agent on its first attempt: no database work at all
    return await env.db(_load_claimed, claim)


async def _execute(claim: leases.Claim, env: RunEnvironment, control: _Control) -> str:
    loaded = await _load_for(claim, env)
    reason = control.reason
    stop = control.stop
    run = loaded.run
    log_prefix = f"run {run.id} ({run.agent_key}, attempt {claim.attempt}/{claim.max_attempts})"
    if loaded.runtime is None:
        error = {"code": "unknown_agent", "message": loaded.problem or "Unknown agent."}
        return await _end(claim, env, "failed", log_prefix, error=error)

    if reason.get("why") == "lost":
        logger.warning("%s lost its lease while loading; stopped without writing", log_prefix)
        return "lost"
    writer = EventWriter(
        env,
        claim.run_id,
        claim.lease_token,
        claim.attempt,
        on_lost=lambda: stop("lost"),
        last_seq=claim.started_seq,
    )
    input_messages = [*loaded.history, *run.input.get("messages", [])]
    ctx = RunContext(
        run_id=str(run.id),
        agent_key=run.agent_key,
        input_messages=input_messages,
        sink=writer,
        conversation_id=str(run.conversation_id) if run.conversation_id else None,
        params=run.input.get("params") or {},
        metadata=run.metadata,
        attempt=claim.attempt,
        model=run.model,
        user_id=run.user_id,
        anonymous_session_id=str(run.anonymous_session_id) if run.anonymous_session_id else None,
        state=loaded.state,
    )
    ctx._env = env  # type: ignore[attr-defined]  # invoke_child runs sub-agents with it
    control.ctx = ctx
    logger.info("%s started by %s", log_prefix, env.owner)

    async def call() -> RunResult:
        token = ctx.activate()
        try:
            return await loaded.runtime.run(ctx)
        finally:
            ctx.deactivate(token)

    timeout = conf.get("RUN_TIMEOUT_SECONDS")
    # a channel's cap on this run's time can only shorten the server's (runtime/channels/admission.py)
    timeout = min(timeout, run_caps(ctx).get("seconds") or timeout)
    control.main_task = main_task = asyncio.create_task(call())
    if run.cancel_requested_at or reason.get("why") == "cancel":
        reason.pop("why", None)
        stop("cancel")
    result: RunResult | None = None
    failure: BaseException | None = None
    try:
        async with asyncio.timeout(timeout):
            result = await main_task
    except TimeoutError:
        reason.setdefault("why", "timeout")
    except (asyncio.CancelledError, RunCancelled):
        if "why" not in reason:  # the worker task itself was cancelled (shutdown)
            reason["why"] = "shutdown"
    except Exception as exc:
        failure = exc
    if failure is None and "why" not in reason and not isinstance(result, RunResult):
        failure = WrongResult(run.agent_key, result)
        result = None
    if ctx.cancelled():
        reason.setdefault("why", "cancel")
        if result is not None:
            reason["why"] = "cancel"

    try:
        await writer.drain()
    except Exception:
        logger.exception("%s: events could not be written", log_prefix)
    if writer.lost or reason.get("why") == "lost":
        logger.warning("%s lost its lease; stopped without writing", log_prefix)
        return "lost"
    pending = writer.take_pending()
    usage = usage_of(ctx, result)
    why = reason.get("why")
    try:
        if why == "shutdown":
            ok = await env.db(leases.release, claim.run_id, claim.lease_token, attempt=claim.attempt)
            logger.info("%s released on shutdown%s", log_prefix, "" if ok else " (lease already gone)")
            return "released"
        if why == "cancel":
            return await _end(claim, env, "cancelled", log_prefix, events=pending, usage=usage)
        if why == "timeout":
            error = {
                "code": "timed_out",
                "message": f"The run took longer than {timeout} seconds and was stopped.",
            }
            return await _end(claim, env, "timed_out", log_prefix, events=pending, usage=usage, error=error)
        if failure is not None:
            return await _fail(claim, env, failure, pending, usage, log_prefix)
        assert result is not None
        return await _end(
            claim,
            env,
            "succeeded",
            log_prefix,
            events=pending,
            usage=usage,
            output={"final_output": result.final_output or {}, "final_messages": result.final_messages or []},
            messages=_result_messages(ctx, result),
            conversation_id=str(run.conversation_id) if run.conversation_id else None,
            agent_key=run.agent_key,
        )
    except LeaseLost:
        logger.warning("%s lost its lease before finishing; wrote nothing", log_prefix)
        return "lost"


# How a run ends: its terminal event (type, payload from the claim and the outcome) and log line.
_ENDINGS: dict[str, tuple[str, Callable[[leases.Claim, dict[str, Any]], dict[str, Any]], str]] = {
    "succeeded": (
        "run.succeeded",
        lambda claim, end: {"run_id": claim.run_id, "output": end["output"]["final_output"]},
        "succeeded",
    ),
    "failed": ("run.failed", lambda claim, end: {"error": end["error"], "attempt": claim.attempt}, "failed"),
    "cancelled": ("run.cancelled", lambda claim, end: {"reason": "cancel requested"}, "cancelled"),
    "timed_out": ("run.timed_out", lambda claim, end: {"error": end["error"]}, "timed out"),
}


async def _end(
    claim: leases.Claim,
    env: RunEnvironment,
    status: str,
    log_prefix: str,
    *,
    events: Sequence[tuple[str, dict[str, Any]]] = (),
    **outcome: Any,
) -> str:
    """Write the outcome ``status`` (see ``_ENDINGS``) with the run's last events; returns ``status``.

    ``outcome``: ``error``, ``output``, ``usage``, and for a success ``messages``,
    ``conversation_id`` and ``agent_key`` (``RunEnvironment.finish``).
    """
    event_type, payload, done = _ENDINGS[status]
    outcome.setdefault("error", None)
    outcome.setdefault("output", None)
    await env.finish(
        claim.run_id,
        claim.lease_token,
        status=status,
        attempt=claim.attempt,
        events=[*events, (event_type, payload(claim, outcome))],
        **outcome,
    )
    error = outcome["error"]
    logger.info("%s %s%s", log_prefix, done, f": {error['message']}" if error else "")
    return status


async def _fail(claim, env, failure, pending, usage, log_prefix) -> str:
    error = user_error(failure)
    logger.error("%s raised", log_prefix, exc_info=failure)
    events = list(pending)
    if conf.is_debug():
        trace = "".join(traceback.format_exception(failure))
        events.append(("debug.exception", {"error": error, "traceback": trace[-8000:]}))
    retryable = getattr(failure, "retryable", True) and conf.should_swallow_exceptions()
    if not retryable:
        return await _end(claim, env, "failed", log_prefix, events=events, usage=usage, error=error)
    status = await env.db(
        leases.retry_or_fail,
        claim.run_id,
        claim.lease_token,
        attempt=claim.attempt,
        max_attempts=claim.max_attempts,
        error=error,
        events=events,
        retry_base=env.retry_base,
    )
    logger.info(
        "%s %s", log_prefix, "will be retried" if status == "queued" else "failed after its last attempt"
    )
    return status


def retry_base() -> float:
    return conf.setting("AGENT_RETRY_BACKOFF_BASE")
