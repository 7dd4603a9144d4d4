"""The worker loop behind ``manage.py runagent``.

Algorithm:
1. Listen on PostgreSQL for new work (``agent_runs``) and cancel requests
   (``agent_cancel``); if the listener fails, fall back to polling every
   ``poll_interval`` seconds and reconnect with backoff.
2. Loop until asked to stop: rescue expired leases (every ``ttl / 3``, at most
   2 s), claim as many due runs as there are free slots (``concurrency``), start
   one task per claim, then wait for a wake-up, a finished task or the poll
   interval.
3. On SIGTERM/SIGINT: claim nothing more, let in-flight runs finish for the
   grace period, then cancel them and give their leases back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
from django.db import connection, connections

from runtime import conf
from runtime.bus import CANCEL_CHANNEL, RUNS_CHANNEL
from runtime.engine import leases
from runtime.engine.environment import RunEnvironment
from runtime.engine.queue import get_queue
from runtime.engine.runner import execute, retry_base

logger = logging.getLogger("runtime.worker")


class Worker:
    def __init__(
        self,
        *,
        concurrency: int = 10,
        agent_keys: list[str] | None = None,
        poll_interval: float = 1.0,
        once: bool = False,
        grace: float = 30.0,
        name: str | None = None,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.agent_keys = agent_keys or None
        self.poll_interval = poll_interval
        self.once = once
        self.grace = grace
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.ttl = float(conf.get("LEASE_TTL_SECONDS"))
        self.queue = get_queue()
        self._active: dict[str, asyncio.Task] = {}
        self._cancel_hooks: dict = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.processed = 0

    def stop(self) -> None:
        if not self._stopping.is_set():
            logger.info("worker %s stopping: finishing %d run(s)", self.name, len(self._active))
        self._stopping.set()
        self._wake.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Outside the main thread (tests) there are no signal handlers: stop() is called directly.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)
        executor = ThreadPoolExecutor(
            max_workers=min(self.concurrency, 16) + 3, thread_name_prefix="agent-db"
        )
        env = RunEnvironment(executor=executor, owner=self.name, ttl=self.ttl, retry_base=retry_base())
        listener = asyncio.create_task(self._listen())
        logger.info(
            "worker %s ready: queue=%s concurrency=%d agents=%s",
            self.name,
            self.queue.name,
            self.concurrency,
            ",".join(self.agent_keys or ["*"]),
        )
        last_sweep = 0.0
        sweep_every = min(2.0, self.ttl / 3)
        try:
            while not self._stopping.is_set():
                now = loop.time()
                if now - last_sweep >= sweep_every:
                    last_sweep = now
                    await self._safe(env, leases.sweep_expired)
                    await self._safe(env, self.queue.maintain)
                free = self.concurrency - len(self._active)
                claims = []
                if free > 0:
                    self._wake.clear()
                    claims = (
                        await self._safe(
                            env,
                            self.queue.claim,
                            owner=self.name,
                            limit=free,
                            ttl=self.ttl,
                            agent_keys=self.agent_keys,
                        )
                        or []
                    )
                for claim in claims:
                    task = asyncio.create_task(self._execute(claim, env))
                    self._active[claim.run_id] = task
                if self.once and not claims and not self._active:
                    break
                if claims and len(self._active) < self.concurrency:
                    continue  # there may be more due work right now
                waited = getattr(self.queue, "waited_for_work", None)
                if free > 0 and not claims and waited is not None and waited(self.name):
                    continue  # the claim already blocked in the queue (Redis XREADGROUP BLOCK)
                await self._wait()
            await self._drain()
        finally:
            listener.cancel()
            await env.close()
            _close_thread_connections(executor)
            executor.shutdown(wait=True, cancel_futures=False)
        return self.processed

    async def _execute(self, claim, env: RunEnvironment) -> None:
        try:
            await execute(claim, env, cancel_events=self._cancel_hooks)
        except Exception:
            logger.exception("run %s: the worker could not record its outcome", claim.run_id)
        finally:
            self.processed += 1
            self._active.pop(claim.run_id, None)
            try:
                self.queue.done(claim)
            except Exception:
                logger.warning("run %s: could not acknowledge queue entry", claim.run_id, exc_info=True)
            self._wake.set()

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
        # Consumed: with every slot busy the loop would otherwise spin on a set flag.
        self._wake.clear()

    async def _drain(self) -> None:
        if not self._active:
            return
        tasks = list(self._active.values())
        _, pending = await asyncio.wait(tasks, timeout=self.grace)
        for task in pending:
            task.cancel()  # the runner gives the lease back
        if pending:
            await asyncio.wait(pending, timeout=10)

    async def _safe(self, env: RunEnvironment, fn, *args, **kwargs):
        try:
            return await env.db(fn, *args, **kwargs)
        except Exception:
            logger.warning(
                "worker %s: %s failed; backing off", self.name, getattr(fn, "__name__", fn), exc_info=True
            )
            await asyncio.sleep(min(5.0, self.poll_interval))
            return None

    async def _listen(self) -> None:
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {RUNS_CHANNEL}")
                    await conn.execute(f"LISTEN {CANCEL_CHANNEL}")
                    delay = 0.5
                    self._wake.set()  # catch up on anything sent while we were not listening
                    async for note in conn.notifies():
                        if note.channel == CANCEL_CHANNEL:
                            hook = self._cancel_hooks.get(note.payload)
                            if hook:
                                hook()
                        elif not self.agent_keys or not note.payload or note.payload in self.agent_keys:
                            self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning(
                    "worker %s: listener lost; polling until it reconnects", self.name, exc_info=True
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)


def _close_thread_connections(executor: ThreadPoolExecutor) -> None:
    """Close the database connection each executor thread opened.

    Django's connections are per thread and are not closed when a thread ends;
    a barrier makes every thread of the pool run exactly one close.
    """
    size = executor._max_workers
    barrier = threading.Barrier(size)

    def close() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)
        connections.close_all()

    for future in [executor.submit(close) for _ in range(size)]:
        future.result()


def run_worker(**options) -> int:
    return asyncio.run(Worker(**options).run())
