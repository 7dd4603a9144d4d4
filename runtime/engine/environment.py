"""What a worker lends the runs it executes: database threads, batched outcomes, one heartbeat.

- ``db(fn, ...)`` runs a blocking database call in the worker's thread pool.
- ``finish(...)`` writes a run's outcome; the outcomes (and answers) of runs that end
  together go to PostgreSQL as one statement (``outcomes.finish_many``), each fenced by
  its own lease token.
- ``write_events(batch)`` writes a run's pending events; the batches of all runs pending
  together go out as one statement (``events.write_many``), each fenced by its lease token.
  Both go through one ``_Batcher``.
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

    _watched: dict[str, tuple[str, Callable[[str], None]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _beater: asyncio.Task | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._events = _Batcher(self, write_many)
        self._outcomes = _Batcher(self, _finish_many)

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
        return await self._events.submit(batch)

    async def finish(self, run_id: str, lease_token: str, **options: Any) -> None:
        """``outcomes.finish``, with the outcomes of runs that end together written as one statement.

        Raises LeaseLost like ``outcomes.finish``. A run's messages (its answer) go with its
        outcome and are written only if it still holds its lease.
        """
        if not (options.get("messages") and options.get("conversation_id")):
            for name in ("messages", "conversation_id"):
                options.pop(name, None)
        await self._outcomes.submit(outcomes.Outcome(run_id, lease_token, **options))


def _finish_many(batch: list[outcomes.Outcome]) -> dict[str, None]:
    return dict.fromkeys(outcomes.finish_many(batch))


class _Batcher:
    """Items of many runs, written as one statement per round, each run fenced by its lease.

    ``statement(items)`` returns ``{run_id: result}`` for the runs that still held their
    lease; the others hear ``LeaseLost``. The items queued in one loop tick join the first
    statement; items arriving while it runs wait for the next.
    """

    def __init__(self, env: RunEnvironment, statement: Callable[[list[Any]], dict[str, Any]]) -> None:
        self._env = env
        self._statement = statement
        self._queue: list[tuple[Any, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def submit(self, item: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._write_pending())
        # Shielded: a run cancelled now (shutdown) still gets the write already on its way.
        return await asyncio.shield(future)

    async def _write_pending(self) -> None:
        batch: list[tuple[Any, asyncio.Future]] = []
        try:
            await asyncio.sleep(0)  # let every item queued in this loop tick join the first statement
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    written = await self._env.db(self._statement, [item for item, _ in batch])
                except Exception as exc:
                    _settle(batch, exc)
                    continue
                for item, future in batch:
                    if not future.done():
                        if item.run_id in written:
                            future.set_result(written[item.run_id])
                        else:
                            future.set_exception(LeaseLost(item.run_id))
        except BaseException:
            # Cancelled with the loop: no run may wait forever on a statement that will not answer.
            _settle([*batch, *self._queue], LeaseLost("worker stopping"))
            self._queue = []
            raise
        finally:
            # Nothing can be appended between the loop's last check and here (one event loop).
            self._task = None


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
