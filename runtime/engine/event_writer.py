"""A run's event buffer: events are written in batches, fenced by the run's lease token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.engine.environment import RunEnvironment
from runtime.engine.leases import lease_held
from runtime.events import EventBatch, LeaseLost

logger = logging.getLogger("runtime.runner")


# A buffered event; a checkpoint's event also carries the state and who waits for it.
_Pending = tuple[str, dict[str, Any], "tuple[dict[str, Any], asyncio.Future[None]] | None"]


@dataclass
class EventWriter:
    """Buffers a run's events and writes them in batches, fenced by the lease token.

    While one batch is being written, new events accumulate, so a fast token
    stream becomes few writes and one bus notification per batch; the worker's
    event flusher (``RunEnvironment.write_events``) puts the batches of all its
    runs into one statement. A
    checkpoint is queued like an event: its row goes out in the same statement as
    the events before it and its own ``state.checkpoint`` event.

    Each batch names the seq it follows (``last_seq``), so when a write fails without
    saying whether it committed, sending the same batch again cannot write it twice.
    A checkpoint whose write was given up is dropped with its event: they are never
    written apart.
    """

    env: RunEnvironment
    run_id: str
    lease_token: str
    attempt: int
    extra: dict[str, Any] = field(default_factory=dict)
    on_lost: Callable[[], None] | None = None
    # The run's last seq when the writer starts (its run.started; 0 for a new child run).
    last_seq: int | None = None
    lost: bool = False
    _buffer: list[_Pending] = field(default_factory=list)
    _task: asyncio.Task | None = None

    async def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        if self.lost:
            return
        if self.extra:
            payload = {**payload, **self.extra}
        self._queue((event_type, payload, None))

    def _queue(self, item: _Pending) -> None:
        self._buffer.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_loop())

    async def checkpoint(self, state: dict[str, Any]) -> None:
        """Returns once the checkpoint is durably written (a retry resumes from it)."""
        if self.lost:
            raise LeaseLost(self.run_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # a run cancelled meanwhile no longer reads the outcome
        self._queue(("state.checkpoint", {"keys": sorted(state)[:50]}, (state, done)))
        # Shielded: the write goes on (and settles ``done``) if this run is cancelled meanwhile.
        await asyncio.shield(done)

    async def check_lease(self) -> None:
        """Raise LeaseLost (and stop the run) unless the lease is still held and unexpired."""
        if not self.lost and not await self.env.db(lease_held, self.run_id, self.lease_token):
            self._mark_lost()
        if self.lost:
            raise LeaseLost(self.run_id)

    async def _flush_loop(self) -> None:
        failures = 0
        batch: list[_Pending] = []
        try:
            while (batch or self._buffer) and not self.lost:
                if not batch:  # a failed batch is sent again as it was, never merged with newer events
                    batch, self._buffer = self._buffer, []
                checkpoints = [(i, cp[0]) for i, (_, _, cp) in enumerate(batch) if cp is not None]
                try:
                    self.last_seq = await self.env.write_events(
                        EventBatch(
                            self.run_id,
                            self.lease_token,
                            self.attempt,
                            [(event_type, payload) for event_type, payload, _ in batch],
                            checkpoints,
                            after_seq=self.last_seq,
                        )
                    )
                    failures = 0
                    _settle(batch, None)
                    batch = []
                except LeaseLost as exc:
                    _settle(batch, exc)
                    batch = []
                    self._mark_lost()
                except Exception as exc:
                    failures += 1
                    logger.warning(
                        "run %s: could not write %d events (try %d)", self.run_id, len(batch), failures
                    )
                    if failures >= 5:
                        self._give_up(batch, exc)
                        batch = []
                        raise
                    await asyncio.sleep(0.1 * 2**failures)
        except BaseException:
            # Cancelled or given up: nobody may wait forever on a checkpoint that will not be written.
            self._give_up(batch, LeaseLost(self.run_id))
            raise

    def _give_up(self, batch: list[_Pending], exc: BaseException) -> None:
        """Keep the unwritten events for the outcome's statement, but not a checkpoint's:
        its row cannot go with them, and whoever waited on it hears ``exc``."""
        pending = [*batch, *self._buffer]
        _settle(pending, exc)
        self._buffer = [item for item in pending if item[2] is None]

    def _mark_lost(self) -> None:
        self.lost = True
        _settle(self._buffer, LeaseLost(self.run_id))
        self._buffer.clear()
        if self.on_lost:
            self.on_lost()

    async def drain(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def take_pending(self) -> list[tuple[str, dict[str, Any]]]:
        """Unwritten events, for the outcome's statement (after ``drain``: no checkpoint waits)."""
        pending, self._buffer = self._buffer, []
        return [(event_type, payload) for event_type, payload, cp in pending if cp is None]


def _retrieved(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(batch: list[_Pending], exc: BaseException | None) -> None:
    for _, _, cp in batch:
        if cp is not None and not cp[1].done():
            if exc is None:
                cp[1].set_result(None)
            else:
                cp[1].set_exception(exc)
