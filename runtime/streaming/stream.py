"""One stream of a run's events: backlog, then live events, exactly once and in order.

A stream starts from a :class:`Page` (status and events above the client's position,
read in one query) and a :class:`Cursor` (what it has sent). Then:

- :func:`live_frames` (ASGI) holds no database connection while it waits: it
  subscribes to the per-process listener (:mod:`runtime.streaming.listener`), which
  vouches for anything committed since the backlog read, and reads the table again
  only after a gap, a RESYNC or while the bus is unreachable;
- :func:`poll_frames` (WSGI) polls the table every quarter second.

Both send ``retry:`` first, a keep-alive comment when idle, and stop after a terminal
event. Authentication and parsing the request are the API's (:mod:`runtime.api.streams`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, connection
from django.http import Http404

from runtime import conf, selectors
from runtime.models import TERMINAL_STATUSES
from runtime.streaming.direct import DIRECT_SEND, make_writer
from runtime.streaming.frames import KEEPALIVE_FRAME, RETRY_FRAME, StreamEvent, event_from_row, should_send
from runtime.streaming.listener import get_listener
from runtime.streaming.subscription import KEEPALIVE, RESYNC, WAKE

logger = logging.getLogger("runtime.api")

CATCH_UP_LIMIT = 500
SYNC_POLL_SECONDS = 0.25
READ_RETRY_MAX_SECONDS = 5.0


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection: worth a retry, not a 500."""
    return isinstance(exc, OperationalError | InterfaceError)


@dataclass
class Page:
    events: list[StreamEvent]
    terminal_status: bool
    complete: bool  # False when more rows than one read may be waiting
    read_at: float = 0.0  # time.monotonic() just before the read


def read_page(run_id: Any, after: int, caller: Any = None) -> Page:
    """Status and events in one query (one snapshot: a finished run's terminal event is there).

    With ``caller`` (a :class:`runtime.api.permissions.Caller`), a run that is not the
    caller's raises ``Http404``.
    """
    read_at = time.monotonic()
    status, rows = selectors.run_status_and_events(
        run_id=run_id, after_seq=after, limit=CATCH_UP_LIMIT, caller=caller
    )
    events = [event_from_row(run_id, row) for row in rows]
    return Page(events, status in TERMINAL_STATUSES, len(rows) < CATCH_UP_LIMIT, read_at)


class Cursor:
    """What one stream has sent: it turns events into frames exactly once, in order."""

    def __init__(self, after: int, levels: frozenset[str]) -> None:
        self.after = after
        self.levels = levels
        self.finished = False

    def take(self, events: list[StreamEvent]) -> bytes:
        out = []
        for event in events:
            if event.seq <= self.after or self.finished:
                continue
            self.after = event.seq
            if should_send(event, self.levels):
                out.append(event.frame)
            if event.is_terminal:
                self.finished = True
        return b"".join(out)


def _read_or_gone(run_id: str, after: int) -> Page:
    try:
        return read_page(run_id, after)
    except Http404:
        return Page([], terminal_status=True, complete=True)  # deleted meanwhile: nothing more will come


def _read_sync(run_id: str, after: int) -> Page:
    try:
        return _read_or_gone(run_id, after)
    finally:
        # A catch-up read runs on the event loop's executor, whose threads serve anything:
        # they keep no connection (the API's own threads do, bounded by AGENT_API_THREADS).
        connection.close()


async def _read(run_id: str, after: int) -> Page:
    return await sync_to_async(_read_sync, thread_sensitive=False)(run_id, after)


async def _read_retrying(run_id: str, after: int) -> AsyncIterator[Page | bytes]:
    """Read a page; while the database cannot be reached, yield a keep-alive and try again.

    An open stream outlives a database restart: the client keeps its connection (and its
    place), and the read that failed is retried with backoff until it succeeds.
    """
    delay = 0.25
    while True:
        try:
            yield await _read(run_id, after)
            return
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            logger.warning(
                "stream of run %s: database unavailable (%s); retrying in %.1fs", run_id, exc, delay
            )
        yield KEEPALIVE_FRAME
        await asyncio.sleep(delay)
        delay = min(delay * 2, READ_RETRY_MAX_SECONDS)


async def live_frames(
    run_key: str, cursor: Cursor, first_page: Page, direct: dict[str, Any] | None = None
) -> AsyncIterator[bytes]:
    """Backlog, then live events from the listener, until a terminal event.

    The backlog (``first_page``) was read before the stream subscribed; the listener
    vouches for the events committed since, or the stream reads once more.
    ``direct`` is filled by :class:`runtime.api.asgi.ApiASGIHandler` with the server's
    ``send`` when the listener may write frames itself while this stream waits
    (:mod:`runtime.streaming.direct`).
    """
    listener = get_listener()
    # the backlog's last event: what the listener need not deliver again
    read_up_to = first_page.events[-1].seq if first_page.events else cursor.after
    subscription = listener.attach(
        run_key, position=max(cursor.after, read_up_to), read_at=first_page.read_at
    )

    async def catch_up(current: Page | None = None) -> AsyncIterator[bytes]:
        while True:
            if current is None:  # keep-alives while the database is away, then the page
                async for item in _read_retrying(run_key, cursor.after):
                    if isinstance(item, bytes):
                        yield item
                    else:
                        current = item
            assert current is not None
            chunk = cursor.take(current.events)
            subscription.position = cursor.after
            if chunk:
                yield chunk
            if cursor.finished or current.complete:
                if current.terminal_status and current.complete:
                    cursor.finished = True  # the run ended without (more) events to show
                return
            current = None

    writer = None
    try:
        prefix = RETRY_FRAME  # sent with the backlog: one write, not two
        async for chunk in catch_up(first_page):
            yield prefix + chunk
            prefix = b""
        if prefix:
            yield prefix
        if not cursor.finished and not subscription.vouched:
            await listener.wait_ready(subscription)
            async for chunk in catch_up():
                yield chunk
        send = (direct or {}).get(DIRECT_SEND)
        if send is not None:
            writer = make_writer(send, cursor, subscription, lambda: subscription.offer(WAKE))
        while not cursor.finished:
            if subscription.degraded:
                # the bus was unreachable when this stream subscribed: poll until it is back
                try:
                    item = await asyncio.wait_for(subscription.queue.get(), 1.0)
                except TimeoutError:
                    async for chunk in catch_up():
                        yield chunk
                    continue
            else:
                # no timer per stream: the listener's ticker sends KEEPALIVE to quiet streams;
                # while the buffer is empty the listener may write frames itself
                if writer is not None and subscription.queue.empty():
                    subscription.writer = writer
                try:
                    item = await subscription.queue.get()
                finally:
                    subscription.writer = None
            if subscription.overflowed:
                return  # too slow to keep up: the client resumes with Last-Event-ID
            if item is WAKE:
                continue  # the listener wrote the terminal frame
            if item is KEEPALIVE:
                yield KEEPALIVE_FRAME
                continue
            if item is RESYNC or item[0].seq > cursor.after + 1:
                async for chunk in catch_up():
                    yield chunk
                continue
            event, noticed_at = item
            chunk = cursor.take([event])
            subscription.position = cursor.after
            if chunk:
                yield chunk  # returns once the server has handed the bytes to the socket
                listener.record_lag(noticed_at)
    finally:
        listener.unsubscribe(subscription)


def poll_frames(run_key: str, cursor: Cursor, page: Page) -> Iterator[bytes]:
    """Backlog, then new events by polling the table (the WSGI fallback), until a terminal event."""
    keepalive = conf.sse_keepalive_seconds()

    def frames() -> Iterator[bytes]:
        # Django's request_finished (sent when the response closes) releases the connection.
        yield RETRY_FRAME
        current = page
        last_sent = time.monotonic()
        while True:
            chunk = cursor.take(current.events)
            if chunk:
                last_sent = time.monotonic()
                yield chunk
            if cursor.finished or (current.terminal_status and current.complete):
                return
            if current.complete:
                if time.monotonic() - last_sent >= keepalive:
                    last_sent = time.monotonic()
                    yield KEEPALIVE_FRAME
                time.sleep(SYNC_POLL_SECONDS)  # the WSGI fallback polls; ASGI uses the listener
            current = _read_or_gone(run_key, cursor.after)

    return frames()
