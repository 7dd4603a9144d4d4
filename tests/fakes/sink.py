"""An in-memory event sink and a helper to build a ``RunContext`` on it (no database)."""

from __future__ import annotations

import uuid
from typing import Any

from runtime.interfaces import RunContext


class MemorySink:
    """Records what an agent emits, in order, the way the runner's sink would receive it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.checkpoints: list[dict[str, Any]] = []

    async def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        self.events.append((event_type, payload))

    async def checkpoint(self, state: dict[str, Any]) -> None:
        self.checkpoints.append(state)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [payload for kind, payload in self.events if kind == event_type]

    def types(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def streamed_text(self) -> str:
        return "".join(p["delta"] for p in self.of_type("assistant.delta"))


def make_context(
    messages: list[dict[str, Any]] | str,
    *,
    agent_key: str = "test-agent",
    model: str = "",
    state: dict[str, Any] | None = None,
) -> tuple[RunContext, MemorySink]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    sink = MemorySink()
    ctx = RunContext(
        run_id=str(uuid.uuid4()),
        agent_key=agent_key,
        input_messages=messages,
        sink=sink,
        model=model,
        state=state,
    )
    return ctx, sink


async def run_in_context(ctx: RunContext, coro_factory):
    """Run ``coro_factory()`` with ``ctx`` as the current run (what the runner does)."""
    token = ctx.activate()
    try:
        return await coro_factory()
    finally:
        RunContext.deactivate(token)
