"""The per-process event listener that feeds every open SSE stream.

One listener per process (per event loop) holds one subscription to the bus:
``LISTEN agent_events`` on a PostgreSQL connection in autocommit, or a Redis
pubsub subscription on ``agent_runtime:events``. A notification says only
``<run_id>:<last_seq>``; the listener then reads the new events of that run
once, on its own reader connection, renders each SSE frame once, and puts it
in the bounded buffer of every stream watching the run. So a thousand idle
streams cost no database connection and no thread, and one event fanned out to
a thousand clients costs one query.

Algorithm of the listener task:
1. connect and subscribe; mark ready (streams wait for this before their
   catch-up read, so no notification can fall between the two);
2. record each notification as "run R has events up to S" (coalesced), and
   remember it for a while even if nobody watches R yet: a stream that read its
   backlog before subscribing learns from this what it would otherwise have to
   re-read from the database (see ``attach``);
3. a dispatcher reads the events of each pending run above the listener's
   cursor for it and offers them to that run's subscriptions;
4. on a lost connection, back off, reconnect, and send every subscription a
   RESYNC so it re-reads what it may have missed.

A subscription whose buffer is full is marked overflowed and gets nothing
more: the stream ends and the client resumes with ``Last-Event-ID``. The
listener never waits for a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connections

from runtime import conf
from runtime.bus import EVENTS_CHANNEL as PG_CHANNEL
from runtime.bus import REDIS_EVENTS_CHANNEL as REDIS_CHANNEL
from runtime.models import AgentEvent
from runtime.streaming.frames import EVENT_COLUMNS, StreamEvent, event_from_row
from runtime.streaming.subscription import KEEPALIVE, RESYNC, ListenerStats, Subscription

# the name it had under runtime/bus/, kept so existing logging configuration still applies
logger = logging.getLogger("runtime.bus.listener")


@dataclass(eq=False)
class EventListener:
    backend: str = "db"
    redis_url: str | None = None
    conninfo: dict[str, Any] = field(default_factory=dict)
    buffer_size: int = 1024
    read_limit: int = 500
    ready_timeout: float = 5.0

    keepalive_seconds: float = 15.0
    # how many runs' latest notified seq are remembered (then forgotten all at once)
    recent_limit: int = 10_000

    def __post_init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = {}
        # run -> highest seq notified since _recent_since (time.monotonic()); inf: not listening
        self._recent: dict[str, int] = {}
        self._recent_since = math.inf
        self._cursor: dict[str, int] = {}
        self._pending: dict[str, tuple[int, float]] = {}
        self._wakeup = asyncio.Event()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._reader: Any = None
        self.stats = ListenerStats()
        self.loop = asyncio.get_running_loop()

    # --- the streams' side ------------------------------------------------------------
    @property
    def subscriber_count(self) -> int:
        return sum(len(subs) for subs in self._subscriptions.values())

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def subscribe(self, run_id: str, *, position: int = -1) -> Subscription:
        """Register a stream for ``run_id``; returns once the bus subscription is live.

        If the bus cannot be reached in time the subscription is ``degraded``: the
        stream then polls the database itself until the listener is back.
        """
        subscription = self.attach(run_id, position=position)
        await self.wait_ready(subscription)
        return subscription

    def attach(self, run_id: str, *, position: int = -1, read_at: float | None = None) -> Subscription:
        """Register a stream for ``run_id`` at once, from the event loop.

        ``read_at`` is when (``time.monotonic()``) the stream's backlog read up to
        ``position`` began. If the listener has been listening without a break since
        before then, it has heard of every event committed after that read: one it
        heard of already is delivered now, later ones as they come, and the
        subscription is ``vouched``. Otherwise the stream must ``wait_ready`` and
        read the database once more.
        """
        self._start()
        subscription = Subscription(run_id=run_id, queue=asyncio.Queue(self.buffer_size), position=position)
        self._subscriptions.setdefault(run_id, set()).add(subscription)
        if read_at is not None and self._ready.is_set() and read_at >= self._recent_since:
            subscription.vouched = True
            last_seq = self._recent.get(run_id, -1)
            if last_seq > position:
                self._mark_pending(run_id, last_seq)
        return subscription

    async def wait_ready(self, subscription: Subscription) -> None:
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.ready_timeout)
            except TimeoutError:
                subscription.degraded = True

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._subscriptions.get(subscription.run_id)
        if subs is None:
            return
        subs.discard(subscription)
        if not subs:
            del self._subscriptions[subscription.run_id]
            self._cursor.pop(subscription.run_id, None)
            self._pending.pop(subscription.run_id, None)

    def unsubscribe_threadsafe(self, subscription: Subscription) -> None:
        """``unsubscribe`` from another thread (Django runs response closers in one)."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nothing to free
            self.loop.call_soon_threadsafe(self.unsubscribe, subscription)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "connected": self.connected,
            "subscribers": self.subscriber_count,
            "runs_watched": len(self._subscriptions),
            "notifications": self.stats.notifications,
            "reads": self.stats.reads,
            "delivered": self.stats.delivered,
            "overflows": self.stats.overflows,
            "reconnects": self.stats.reconnects,
            **self.stats.lag_summary(),
        }

    def record_lag(self, noticed_at: float) -> None:
        self.stats.lags.append(time.monotonic() - noticed_at)

    # --- lifecycle ----------------------------------------------------------------------
    def _start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            self.loop.create_task(self._listen_forever(), name="agent-events-listener"),
            self.loop.create_task(self._dispatch_forever(), name="agent-events-dispatcher"),
            self.loop.create_task(self._keepalive_forever(), name="agent-events-keepalive"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._close_reader()

    # --- the bus side ---------------------------------------------------------------------
    def _on_notification(self, payload: str) -> None:
        self.stats.notifications += 1
        run_id, _, last = payload.rpartition(":")
        try:
            last_seq = int(last)
        except ValueError:
            logger.warning("Ignoring malformed event notification %r", payload)
            return
        if len(self._recent) >= self.recent_limit and run_id not in self._recent:
            self._recent.clear()
            self._recent_since = time.monotonic()
        if last_seq > self._recent.get(run_id, -1):
            self._recent[run_id] = last_seq
        if run_id in self._subscriptions:
            self._mark_pending(run_id, last_seq)

    def _mark_pending(self, run_id: str, last_seq: int) -> None:
        previous = self._pending.get(run_id)
        if previous is None:
            self._pending[run_id] = (last_seq, time.monotonic())
        elif last_seq > previous[0]:
            self._pending[run_id] = (last_seq, previous[1])  # the lag counts from the first
        self._wakeup.set()

    def _resync_all(self) -> None:
        self._cursor.clear()
        for subs in self._subscriptions.values():
            for subscription in subs:
                subscription.degraded = False
                subscription.offer(RESYNC)

    async def _listen_forever(self) -> None:
        delay = 0.2
        first = True
        while True:
            try:
                async for payload in self._notifications(first):
                    delay = 0.2
                    self._on_notification(payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("Event listener lost its %s connection (%s); reconnecting", self.backend, exc)
            self._ready.clear()
            self._recent_since = math.inf  # notifications may be lost until it listens again
            first = False
            self.stats.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _notifications(self, first: bool):
        """Yield notification payloads; sets ready once subscribed."""
        if self.backend == "redis":
            import redis.asyncio as aioredis  # optional: the redis extra

            client = aioredis.from_url(self.redis_url)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(REDIS_CHANNEL)
                self._mark_ready(first)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        yield data.decode() if isinstance(data, bytes) else str(data)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()
        else:
            conn = await psycopg.AsyncConnection.connect(**self.conninfo, autocommit=True)
            try:
                await conn.execute(f"LISTEN {PG_CHANNEL}")
                self._mark_ready(first)
                async for notify in conn.notifies():
                    yield notify.payload
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    def _mark_ready(self, first: bool) -> None:
        self._recent.clear()
        self._recent_since = time.monotonic()
        self._ready.set()
        if not first:
            self._resync_all()

    async def _keepalive_forever(self) -> None:
        """One timer for every stream: a stream offered nothing for a whole period gets KEEPALIVE.

        Streams then wait on their buffer without a timeout of their own; a per-stream timer
        armed and cancelled for each event cost more than the write itself in a 1,000-client
        fan-out. A quiet stream hears something after at most ``keepalive_seconds``.
        """
        while True:
            await asyncio.sleep(self.keepalive_seconds / 2)
            for subs in list(self._subscriptions.values()):
                for subscription in list(subs):
                    if subscription.active:
                        subscription.active = False
                    elif subscription.queue.empty():
                        subscription.offer(KEEPALIVE)
                        subscription.active = False

    # --- reading and fanning out -----------------------------------------------------------
    async def _dispatch_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            pending, self._pending = self._pending, {}
            try:
                await self._deliver(pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "Could not read events of %d run(s) (%s); streams will re-read", len(pending), exc
                )
                await self._close_reader()
                for run_id in pending:
                    for subscription in self._subscriptions.get(run_id, ()):
                        subscription.offer(RESYNC)

    async def _deliver(self, pending: dict[str, tuple[int, float]]) -> None:
        """Offer the new events of every pending run to its streams, as ``(event, noticed_at)`` items.

        One query reads the events of all the runs notified since the last round.
        """
        wanted: dict[str, tuple[int, int, float]] = {}
        for run_id, (last_seq, noticed_at) in pending.items():
            subs = self._subscriptions.get(run_id)
            if not subs:
                continue
            start = self._cursor.get(run_id)
            if start is None:
                # streams that are behind this point catch up from the database themselves
                start = max(subscription.position for subscription in subs)
            if start < last_seq:
                wanted[run_id] = (start, last_seq, noticed_at)
        while wanted:
            read = await self._read({run_id: (start, last) for run_id, (start, last, _) in wanted.items()})
            more: dict[str, tuple[int, int, float]] = {}
            for run_id, events in read.items():
                _, last_seq, noticed_at = wanted[run_id]
                self._cursor[run_id] = events[-1].seq
                self._offer(run_id, events, noticed_at)
                if len(events) >= self.read_limit and events[-1].seq < last_seq:
                    more[run_id] = (events[-1].seq, last_seq, noticed_at)
            wanted = more

    def _offer(self, run_id: str, events: list[StreamEvent], noticed_at: float) -> None:
        for subscription in list(self._subscriptions.get(run_id, ())):
            for event in events:
                writer = subscription.writer
                if writer is not None and subscription.queue.empty() and writer(event, noticed_at):
                    subscription.active = True
                    self.stats.delivered += 1
                    continue
                if subscription.offer((event, noticed_at)):
                    self.stats.delivered += 1
                else:
                    self.stats.overflows += 1
                    break

    async def _read(self, ranges: dict[str, tuple[int, int]]) -> dict[str, list[StreamEvent]]:
        """Events with ``after < seq <= upto`` of each run (at most ``read_limit`` each), in order."""
        if self._reader is None or self._reader.closed:
            self._reader = await psycopg.AsyncConnection.connect(**self.conninfo, autocommit=True)
        self.stats.reads += 1
        table = AgentEvent._meta.db_table
        columns = ", ".join(EVENT_COLUMNS)
        cursor = await self._reader.execute(
            "SELECT p.run_id, e.* "  # noqa: S608
            "FROM unnest(%s::uuid[], %s::int[], %s::int[]) AS p(run_id, after_seq, upto) "
            f"CROSS JOIN LATERAL (SELECT {columns} FROM {table} "
            "WHERE run_id = p.run_id AND seq > p.after_seq AND seq <= p.upto ORDER BY seq LIMIT %s) AS e "
            "ORDER BY p.run_id, e.seq",
            (
                list(ranges),
                [after for after, _ in ranges.values()],
                [upto for _, upto in ranges.values()],
                self.read_limit,
            ),
        )
        read: dict[str, list[StreamEvent]] = {}
        for run_uuid, *row in await cursor.fetchall():
            run_id = str(run_uuid)
            read.setdefault(run_id, []).append(event_from_row(run_id, row))
        return read

    async def _close_reader(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader.close()
            self._reader = None


_listener: EventListener | None = None


def _conninfo() -> dict[str, Any]:
    params = connections["default"].get_connection_params()
    # Django's own cursor class and adapters are for its sync connections only
    for key in ("cursor_factory", "context"):
        params.pop(key, None)
    return params


def get_listener() -> EventListener:
    """The listener of the running event loop (created on first use)."""
    global _listener
    loop = asyncio.get_running_loop()
    if _listener is None or _listener.loop is not loop or loop.is_closed():
        _listener = EventListener(
            backend=conf.get("EVENT_BUS_BACKEND"),
            redis_url=conf.get("REDIS_URL"),
            conninfo=_conninfo(),
            keepalive_seconds=conf.sse_keepalive_seconds(),
        )
    return _listener


def current_listener() -> EventListener | None:
    """The listener if one was started in this process (for stats), without starting one."""
    return _listener
