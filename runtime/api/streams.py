"""The event-stream views: ``runs/<id>/events/`` (sync) and ``runs/<id>/events/stream/`` (async).

Both send ``retry:`` first, then every visible event above the client's position
(``Last-Event-ID``, else ``?from_seq=N`` meaning "from seq N on"), then live
events, a keep-alive comment when idle, and close after a terminal event.

The ASGI view holds no database connection while it waits: it authenticates and
reads the backlog in one go in the request's thread (the connection is released
right after), and then waits on its buffer in the per-process listener
(:mod:`runtime.bus.listener`), which vouches for anything committed since the
backlog read. The sync view (WSGI) polls the table.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

from runtime import selectors
from runtime.api.credentials import CachedTokenAuthentication
from runtime.api.errors import database_unavailable, database_unavailable_response, error_response
from runtime.api.frames import KEEPALIVE_FRAME, RETRY_FRAME, StreamEvent, render_event, should_send
from runtime.api.permissions import AnonymousSessionQueryAuthentication, Caller
from runtime.models import TERMINAL_STATUSES

logger = logging.getLogger("runtime.api")

# Token first so an unauthenticated request gets 401 with a WWW-Authenticate header.
STREAM_AUTHENTICATION_CLASSES = [
    CachedTokenAuthentication,
    SessionAuthentication,
    AnonymousSessionQueryAuthentication,
]
CATCH_UP_LIMIT = 500
SYNC_POLL_SECONDS = 0.25
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def keepalive_seconds() -> float:
    return float(getattr(settings, "AGENT_SSE_KEEPALIVE_SECONDS", 15.0))


@dataclass(frozen=True)
class StreamParams:
    after: int
    levels: frozenset[str]


class BadStreamRequest(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _flag(request: HttpRequest, name: str) -> bool:
    raw = request.GET.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadStreamRequest(name, f"{name} must be true or false, got {raw!r}.")


def parse_stream_params(request: HttpRequest) -> StreamParams:
    """Where to start and what to show. ``Last-Event-ID`` wins over ``from_seq``.

    A browser's EventSource reconnects to the same URL (with its ``from_seq``)
    and adds ``Last-Event-ID``, so the header must take precedence.
    """
    from runtime.events import visible_levels

    last_event_id = request.headers.get("Last-Event-ID")
    from_seq = request.GET.get("from_seq")
    if last_event_id not in (None, ""):
        try:
            after = int(last_event_id)
        except ValueError:
            raise BadStreamRequest(
                "Last-Event-ID", f"Last-Event-ID must be an event sequence number, got {last_event_id!r}."
            ) from None
        if after < -1:
            raise BadStreamRequest("Last-Event-ID", "Last-Event-ID must not be negative.")
    elif from_seq not in (None, ""):  # "from seq N on"
        try:
            after = int(from_seq) - 1
        except ValueError:
            raise BadStreamRequest(
                "from_seq", f"from_seq must be a whole number, got {from_seq!r}."
            ) from None
        if after < -1:
            raise BadStreamRequest("from_seq", "from_seq must be 0 or more.")
    else:
        after = 0  # sequence numbers start at 1
    levels = visible_levels(
        include_debug=_flag(request, "include_debug"), include_all=_flag(request, "include_all")
    )
    return StreamParams(after=after, levels=frozenset(levels))


def stream_authenticators() -> list[Any]:
    """Ours, then any other of the host project's ``DEFAULT_AUTHENTICATION_CLASSES`` (e.g. JWT)."""
    classes = list(STREAM_AUTHENTICATION_CLASSES)
    for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if not any(issubclass(cls, ours) or issubclass(ours, cls) for ours in classes):
            classes.append(cls)
    return [cls() for cls in classes]


def authenticate_stream(request: HttpRequest) -> Caller:
    """Run the stream routes' authenticators (DRF's, so the rules match the REST API)."""
    drf_request = Request(request, authenticators=stream_authenticators())
    drf_request.user  # noqa: B018 - evaluating it authenticates, raising on a bad credential
    return Caller.from_request(drf_request)


def _error(exc: Exception) -> HttpResponse:
    if database_unavailable(exc):
        # An EventSource does not reconnect after a non-200 answer; the page's script does.
        return database_unavailable_response()
    if isinstance(exc, BadStreamRequest):
        return error_response(400, "invalid", exc.message, {exc.field: [exc.message]})
    if isinstance(exc, Http404):
        return error_response(404, "not_found", "No run with this id.")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = (
            "not_authenticated" if isinstance(exc, exceptions.NotAuthenticated) else "authentication_failed"
        )
        message = str(exc.detail)
        if code == "not_authenticated":
            message = (
                "Sign in, send an API token, or pass an anonymous session token in X-Anonymous-Token "
                "or ?anonymous_token=."
            )
        response = error_response(401, code, message)
        response["WWW-Authenticate"] = "Token"
        return response
    raise exc


def _stream_response(content: Any) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    # nginx and similar proxies would otherwise buffer the stream
    response["X-Accel-Buffering"] = "no"
    return response


@dataclass
class _Page:
    events: list[StreamEvent]
    terminal_status: bool
    complete: bool  # False when more rows than one read may be waiting
    read_at: float = 0.0  # time.monotonic() just before the read


def _read_page(run_id: Any, after: int, caller: Caller | None = None) -> _Page:
    """Status and events in one query (one snapshot: a finished run's terminal event is there)."""
    read_at = time.monotonic()
    status, rows = selectors.run_status_and_events(
        run_id=run_id, after_seq=after, limit=CATCH_UP_LIMIT, caller=caller
    )
    events = [
        render_event(
            run_id=run_id,
            seq=seq,
            event_type=event_type,
            payload=payload,
            visibility=visibility,
            attempt=attempt,
            created_at=created_at,
        )
        for seq, event_type, payload, visibility, attempt, created_at in rows
    ]
    return _Page(events, status in TERMINAL_STATUSES, len(rows) < CATCH_UP_LIMIT, read_at)


class _Cursor:
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


# --- async (ASGI) -----------------------------------------------------------------------------


def _release_connection() -> None:
    """Give back this pool thread's connection the way a finished request does.

    With ``CONN_MAX_AGE = 0`` it is closed; otherwise the thread keeps it for the next
    read, which saves a PostgreSQL connection start per stream opened. Either way the
    stream itself holds none while it waits, and the threads are few (the loop's executor).
    """
    connection.close_if_unusable_or_obsolete()


def _start(request: HttpRequest, run_id: str) -> HttpResponse | tuple[str, _Cursor, _Page]:
    """Parse, authenticate, check the run is the caller's and read its backlog (one query after auth).

    Returns what to stream, or the response to send instead (an error, or 204 when
    the run has ended and the client has seen everything).
    """
    try:
        params = parse_stream_params(request)
        try:
            # the bus names runs in canonical form; an upper-case or unhyphenated id must match too
            run_key = str(uuid.UUID(str(run_id)))
        except ValueError:
            raise Http404 from None
        page = _read_page(run_key, params.after, caller=authenticate_stream(request))
    except Exception as exc:
        return _error(exc)
    if page.terminal_status and page.complete and not page.events:
        return HttpResponse(status=204)  # nothing more will come: EventSource stops reconnecting
    return run_key, _Cursor(params.after, params.levels), page


def _read_or_gone(run_id: str, after: int) -> _Page:
    try:
        return _read_page(run_id, after)
    except Http404:
        return _Page([], terminal_status=True, complete=True)  # deleted meanwhile: nothing more will come


def _read_sync(run_id: str, after: int) -> _Page:
    try:
        return _read_or_gone(run_id, after)
    finally:
        # A catch-up read runs on the event loop's executor, whose threads serve anything:
        # they keep no connection (the API's own threads do, bounded by AGENT_API_THREADS).
        connection.close()


async def _read(run_id: str, after: int) -> _Page:
    return await sync_to_async(_read_sync, thread_sensitive=False)(run_id, after)


READ_RETRY_MAX_SECONDS = 5.0


async def _read_retrying(run_id: str, after: int) -> AsyncIterator[_Page | bytes]:
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


async def _live_frames(
    run_key: str, cursor: _Cursor, first_page: _Page, direct: dict[str, Any] | None = None
) -> AsyncIterator[bytes]:
    """Backlog, then live events from the listener, until a terminal event.

    The backlog (``first_page``) was read before the stream subscribed; the listener
    vouches for the events committed since, or the stream reads once more.
    ``direct`` is filled by :class:`runtime.api.asgi.ApiASGIHandler` with the server's
    ``send`` when the listener may write frames itself while this stream waits
    (:mod:`runtime.api.direct`).
    """
    from runtime.api.direct import DIRECT_SEND, make_writer
    from runtime.bus.listener import get_listener
    from runtime.bus.subscription import KEEPALIVE, RESYNC, WAKE

    listener = get_listener()
    # the backlog's last event: what the listener need not deliver again
    read_up_to = first_page.events[-1].seq if first_page.events else cursor.after
    subscription = listener.attach(
        run_key, position=max(cursor.after, read_up_to), read_at=first_page.read_at
    )

    async def catch_up(current: _Page | None = None) -> AsyncIterator[bytes]:
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


def async_event_stream(request: HttpRequest, run_id: str) -> HttpResponse:
    """Live events of a run, for ASGI servers. See the module docstring.

    The view itself is synchronous: authentication and the backlog read are
    database work, done in the request's thread in one go; the body it returns
    is an async iterator that the server drives on its event loop.
    """
    try:
        started = _start(request, run_id)
    finally:
        _release_connection()
    if isinstance(started, HttpResponse):
        return started
    run_key, cursor, page = started
    direct: dict[str, Any] = {}
    response = _stream_response(_live_frames(run_key, cursor, page, direct))
    response.sse_direct = direct  # the API's ASGI handler puts the server's send here
    return response


# --- sync (WSGI) ------------------------------------------------------------------------------


def sync_event_stream(request: HttpRequest, run_id: str) -> HttpResponse:
    """Live events of a run for WSGI servers: polls the table every quarter second."""
    started = _start(request, run_id)
    if isinstance(started, HttpResponse):
        return started
    run_key, cursor, page = started
    if isinstance(request, ASGIRequest):
        # Under ASGI Django would buffer a sync iterator to the end; stream from the listener
        # instead, and give the connection back now rather than when the stream ends.
        _release_connection()
        return _stream_response(_live_frames(run_key, cursor, page))
    keepalive = keepalive_seconds()

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

    return _stream_response(frames())


# --- operations -------------------------------------------------------------------------------


def _staff_caller(request: HttpRequest) -> Any:
    try:
        drf_request = Request(request, authenticators=[TokenAuthentication(), SessionAuthentication()])
        return drf_request.user
    finally:
        _release_connection()


async def stream_stats(request: HttpRequest) -> HttpResponse:
    """Staff only: this process's listener (open streams, bus connection, deliveries)."""
    from django.http import JsonResponse

    from runtime.bus.listener import current_listener

    try:
        user = await sync_to_async(_staff_caller, thread_sensitive=False)(request)
    except exceptions.AuthenticationFailed as exc:
        return _error(exc)
    if not user.is_authenticated:
        return _error(exceptions.NotAuthenticated())
    if not user.is_staff:
        return error_response(403, "permission_denied", "Only staff may see stream statistics.")
    listener = current_listener()
    if listener is None:
        return JsonResponse({"connected": False, "subscribers": 0})
    return JsonResponse(listener.describe())
