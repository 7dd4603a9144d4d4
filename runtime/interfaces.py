"""The public Python API for agents written in code.

    from runtime.interfaces import AgentRuntime, RunContext, RunResult, EventType, Tool, ToolRegistry

An agent is an :class:`AgentRuntime` with a ``key`` and an async ``run(ctx)``
that returns a :class:`RunResult`. The context streams events to clients,
saves checkpoints and tells the agent when it has been cancelled.
"""

from __future__ import annotations

import asyncio
import contextvars
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from runtime.tools import Tool, ToolRegistry

__all__ = [
    "AgentRuntime",
    "EventType",
    "RunCancelled",
    "RunFailed",
    "RunContext",
    "RunResult",
    "Tool",
    "ToolRegistry",
    "current_context",
]


class EventType(StrEnum):
    RUN_STARTED = "run.started"
    RUN_SUCCEEDED = "run.succeeded"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    RUN_TIMED_OUT = "run.timed_out"
    RUN_RETRYING = "run.retrying"
    RUN_HEARTBEAT = "run.heartbeat"
    TOOL_CALL = "tool.call"
    TOOL_RESULT = "tool.result"
    ASSISTANT_MESSAGE = "assistant.message"
    ASSISTANT_DELTA = "assistant.delta"
    STATE_CHECKPOINT = "state.checkpoint"
    SUB_AGENT_START = "sub_agent.start"
    SUB_AGENT_END = "sub_agent.end"
    USAGE = "usage"
    ERROR = "error"


TERMINAL_EVENT_TYPES = frozenset(
    {EventType.RUN_SUCCEEDED, EventType.RUN_FAILED, EventType.RUN_CANCELLED, EventType.RUN_TIMED_OUT}
)


class RunCancelled(Exception):
    """Raised inside a run when cancellation was requested (see ``RunContext.raise_if_cancelled``)."""


class RunFailed(Exception):
    """Raised inside a run (by the agent or by one of its tools) to end it as failed at once.

    For problems the model cannot work around, such as a sub-agent that no longer exists:
    a tool that raises it does not become an error result the model reads, the run fails,
    is not retried, and ``message`` (with ``code``) is what the user sees.
    """

    retryable = False

    def __init__(self, message: str, *, code: str = "run_failed") -> None:
        super().__init__(message)
        self.user_message = message
        self.code = code


@dataclass
class RunResult:
    final_output: dict[str, Any] = field(default_factory=dict)
    final_messages: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    # set by the runner for sub-agent results: the child run's id
    run_id: str | None = None


class EventSink(Protocol):
    """What the runner gives a context to write through (fenced by the run's lease)."""

    async def emit(self, event_type: str, payload: dict[str, Any]) -> None: ...

    async def checkpoint(self, state: dict[str, Any]) -> None: ...


class AgentRuntime(ABC):
    """An agent. Subclasses give a ``key`` and implement ``run``."""

    @property
    @abstractmethod
    def key(self) -> str: ...

    @abstractmethod
    async def run(self, ctx: RunContext) -> RunResult: ...

    def describe(self) -> dict[str, Any]:
        """What the API and the builder show about this agent."""
        return {
            "key": self.key,
            "name": getattr(self, "name", self.key),
            "description": (self.__doc__ or "").strip(),
        }


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "agent_run_context", default=None
)


def current_context() -> RunContext | None:
    """The context of the run executing in this task, if any (LLM clients stream deltas to it)."""
    return _current.get()


class RunContext:
    """Everything a running agent may see and do."""

    def __init__(
        self,
        *,
        run_id: str,
        agent_key: str,
        input_messages: list[dict[str, Any]],
        sink: EventSink,
        conversation_id: str | None = None,
        params: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        attempt: int = 1,
        model: str = "",
        user_id: int | None = None,
        anonymous_session_id: str | None = None,
        parent_run_id: str | None = None,
        depth: int = 0,
        call_chain: tuple[str, ...] = (),
        state: dict[str, Any] | None = None,
    ) -> None:
        self.run_id = run_id
        self.agent_key = agent_key
        self.input_messages = input_messages
        self.conversation_id = conversation_id
        self.params = params or {}
        self.metadata = metadata or {}
        self.attempt = attempt
        self.model = model
        self.user_id = user_id
        self.anonymous_session_id = anonymous_session_id
        self.parent_run_id = parent_run_id
        self.depth = depth
        self.call_chain = call_chain or (agent_key,)
        # the last checkpoint of an earlier attempt, so an agent can resume
        self.state = state
        self._sink = sink
        self._cancelled = asyncio.Event()
        self.usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0}
        self.cost_usd: float = 0.0
        # tokens spent on models without a known price: their cost is missing from cost_usd
        self.unpriced_tokens: int = 0

    # events ---------------------------------------------------------------
    async def emit(self, event_type: EventType | str, payload: dict[str, Any] | None = None) -> None:
        await self._sink.emit(str(event_type), dict(payload or {}))

    async def emit_user_message(self, content: str) -> None:
        """A message always shown to users."""
        await self.emit(EventType.ASSISTANT_MESSAGE, {"content": content, "role": "assistant"})

    async def emit_error(self, message: str, details: dict[str, Any] | None = None) -> None:
        """An error shown to users that does not end the run."""
        await self.emit(EventType.ERROR, {"message": message, "details": details or {}})

    async def checkpoint(self, state: dict[str, Any]) -> None:
        self.state = state
        await self._sink.checkpoint(state)

    async def ensure_lease(self) -> None:
        """Raise ``LeaseLost`` unless this worker still holds the run's lease (one query).

        Tool calls do this before they start: a worker that was frozen past its lease must
        not repeat a side effect that the run's new worker may already be making.
        """
        check = getattr(self._sink, "check_lease", None)
        if check is not None:
            await check()

    # cancellation -----------------------------------------------------------
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled():
            raise RunCancelled()

    def request_cancel(self) -> None:
        self._cancelled.set()

    async def wait_cancelled(self) -> None:
        await self._cancelled.wait()

    # usage ------------------------------------------------------------------
    def add_usage(
        self,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float | None = 0.0,
        unpriced_tokens: int = 0,
    ) -> None:
        """Count a call's tokens; ``cost_usd=None`` (price unknown) counts them as unpriced."""
        self.usage["prompt_tokens"] += prompt_tokens
        self.usage["completion_tokens"] += completion_tokens
        if cost_usd is None:
            self.unpriced_tokens += prompt_tokens + completion_tokens
        else:
            self.cost_usd += cost_usd
        self.unpriced_tokens += unpriced_tokens

    def activate(self) -> contextvars.Token:
        return _current.set(self)

    @staticmethod
    def deactivate(token: contextvars.Token) -> None:
        _current.reset(token)


def run_caps(ctx: RunContext) -> dict[str, int]:
    """The caps a channel set on this run (``metadata.run_caps``), positive whole numbers only."""
    raw = (ctx.metadata or {}).get("run_caps") or {}
    if not isinstance(raw, dict):
        return {}
    return {
        name: value
        for name, value in raw.items()
        if name in {"steps", "tokens", "seconds"}
        and isinstance(value, int)
        and not isinstance(value, bool)
        and value > 0
    }
