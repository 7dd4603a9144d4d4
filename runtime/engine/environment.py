"""What a worker lends the runs it executes: database threads, batched outcomes, one heartbeat.

- ``db(fn, ...)`` runs a blocking database call in the worker's thread pool.
- ``finish(...)`` writes a run's outcome; the outcomes (and answers) of runs that end
  together go to PostgreSQL as one statement (``outcomes.finish_many``), each fenced by
  its own lease token.
- ``write_events(batch)`` writes a run's pending events; the batches of all runs pending
  together go out as one statement (``events.write_many``), each fenced by its lease token.
- ``watch``/``unwatch``: one task per worker extends every lease it holds in one
  statement every ``ttl / 3`` and tells a run when it lost its lease or was cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from runtime.engine import leases, outcomes
from runtime.events import EventBatch, LeaseLost, write_many

logger = logging.getLogger("runtime.runner")


@dataclass
class RunEnvironment:
    """What a run needs from the worker that executes it."""

    executor: Executor
    owner: str
    ttl: float
    retry_base: float = 1.0

    _outcomes: list[tuple[outcomes.Outcome, asyncio.Future]] = field(
        default_factory=list, init=False, repr=False
    )
    _finisher: asyncio.Task | None = field(default=None, init=False, repr=False)
    _watched: dict[str, tuple[str, Callable[[str], None]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _beater: asyncio.Task | None = field(default=None, init=False, repr=False)
    _batches: list[tuple[EventBatch, asyncio.Future]] = field(default_factory=list, init=False, repr=False)
    _event_flusher: asyncio.Task | None = field(default=None, init=False, repr=False)

    async def db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _with_connection, fn, args, kwargs)

    def watch(self, claim: leases.Claim, stop: Callable[[str], None]) -> None:
        """Heartbeat this claim's lease until ``unwatch``; ``stop`` hears "lost" or "cancel"."""
        self._watched[claim.run_id] = (claim.lease_token, stop)
        if self._beater is None:
            self._beater = asyncio.create_task(self._beat())

    def unwatch(self, run_id: str) -> None:
        self._watched.pop(run_id, None)

    async def close(self) -> None:
        """Stop the heartbeat task (the worker calls this once its runs have ended)."""
        self._watched.clear()
        if self._beater is not None:
            self._beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beater

    async def _beat(self) -> None:
        """One task and one statement per interval extend every lease this worker holds.

        A lease is extended every ``ttl / 3`` (its first time at most that long after
        the claim), so cancel requests and lost leases are seen within one interval.
        """
        interval = max(0.2, self.ttl / 3)
        told_cancel: set[str] = set()
        try:
            while self._watched:
                await asyncio.sleep(interval)
                held = dict(self._watched)
                if not held:
                    continue  # every run ended during the sleep: the loop ends
                try:
                    beats = await self.db(
                        leases.heartbeat_many,
                        [(run_id, token) for run_id, (token, _) in held.items()],
                        ttl=self.ttl,
                    )
                except Exception:
                    logger.warning("heartbeat of %d run(s) failed; will try again", len(held), exc_info=True)
                    continue
                told_cancel &= held.keys()
                for run_id, (token, stop) in held.items():
                    if self._watched.get(run_id, (None,))[0] != token:
                        continue  # ended meanwhile
                    if run_id not in beats:
                        self._watched.pop(run_id, None)
                        stop("lost")
                    elif beats[run_id] and run_id not in told_cancel:
                        told_cancel.add(run_id)
                        stop("cancel")  # the lease is still extended while the run winds down
        finally:
            self._beater = None

    async def write_events(self, batch: EventBatch) -> int:
        """Write one run's batch of events; the batches of all runs pending together share one statement.

        Returns the last seq; raises LeaseLost like ``append_events``. A run has at most one
        batch on its way (its ``EventWriter`` waits for this), which keeps its seqs in order.
        """
        future = asyncio.get_running_loop().create_future()
        self._batches.append((batch, future))
        if self._event_flusher is None:
            self._event_flusher = asyncio.create_task(self._write_pending_events())
        return await asyncio.shield(future)

    async def _write_pending_events(self) -> None:
        """One statement per round; a run's first event goes out in the next loop tick when idle."""
        pending: list[tuple[EventBatch, asyncio.Future]] = []
        try:
            await asyncio.sleep(0)  # the batches queued in this loop tick join the first statement
            while self._batches:
                pending, self._batches = self._batches, []
                try:
                    written = await self.db(write_many, [batch for batch, _ in pending])
                except Exception as exc:
                    _settle(pending, exc)
                    continue
                for batch, future in pending:
                    if not future.done():
                        if batch.run_id in written:
                            future.set_result(written[batch.run_id])
                        else:
                            future.set_exception(LeaseLost(batch.run_id))
        except BaseException:
            _settle([*pending, *self._batches], LeaseLost("worker stopping"))
            self._batches = []
            raise
        finally:
            self._event_flusher = None

    async def finish(self, run_id: str, lease_token: str, **options: Any) -> None:
        """``outcomes.finish``, with the outcomes of runs that end together written as one statement.

        Raises LeaseLost like ``outcomes.finish``. A run's messages (its answer) go with its
        outcome and are written only if it still holds its lease.
        """
        if not (options.get("messages") and options.get("conversation_id")):
            for name in ("messages", "conversation_id"):
                options.pop(name, None)
        future = asyncio.get_running_loop().create_future()
        self._outcomes.append((outcomes.Outcome(run_id, lease_token, **options), future))
        if self._finisher is None:
            self._finisher = asyncio.create_task(self._finish_pending())
        # Shielded: a run cancelled now (shutdown) still gets the outcome already on its way.
        await asyncio.shield(future)

    async def _finish_pending(self) -> None:
        """Write what is pending, one statement per round; outcomes arriving meanwhile wait for the next."""
        batch: list[tuple[outcomes.Outcome, asyncio.Future]] = []
        try:
            await asyncio.sleep(0)  # let every run ending in this loop tick join the first statement
            while self._outcomes:
                batch, self._outcomes = self._outcomes, []
                try:
                    held = await self.db(outcomes.finish_many, [outcome for outcome, _ in batch])
                except Exception as exc:
                    _settle(batch, exc)
                    continue
                for outcome, future in batch:
                    if not future.done():
                        if outcome.run_id in held:
                            future.set_result(None)
                        else:
                            future.set_exception(LeaseLost(outcome.run_id))
        except BaseException:
            # Cancelled with the loop: no run may wait forever on a statement that will not answer.
            _settle([*batch, *self._outcomes], LeaseLost("worker stopping"))
            self._outcomes = []
            raise
        finally:
            # Nothing can be appended between the loop's last check and here (one event loop).
            self._finisher = None


def _settle(batch: list[tuple[Any, asyncio.Future]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def _with_connection(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception:
        # A broken connection must not poison this executor thread for later calls.
        if connection.connection is not None and (connection.needs_rollback or not connection.is_usable()):
            connection.close()
        raise
