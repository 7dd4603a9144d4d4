"""The event-stream views: ``runs/<id>/events/`` (sync) and ``runs/<id>/events/stream/`` (async).

Both send ``retry:`` first, then every visible event above the client's position
(``Last-Event-ID``, else ``?from_seq=N`` meaning "from seq N on"), then live
events, a keep-alive comment when idle, and close after a terminal event.

The async view holds no database connection while it waits: it borrows one
briefly for authentication and for each catch-up read (closed right after), and
otherwise waits on its buffer in the per-process listener
(:mod:`runtime.bus.listener`). The sync view (WSGI) polls the table.
"""

from __future__ import annotations

import asyncio
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

from runtime import selectors
from runtime.api.errors import error_response
from runtime.api.frames import KEEPALIVE_FRAME, RETRY_FRAME, StreamEvent, render_model_event, should_send
from runtime.api.permissions import AnonymousSessionQueryAuthentication, Caller
from runtime.models import TERMINAL_STATUSES

# Token first so an unauthenticated request gets 401 with a WWW-Authenticate header.
STREAM_AUTHENTICATION_CLASSES = [
    TokenAuthentication,
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


def authenticate_stream(request: HttpRequest) -> Caller:
    """Run the stream routes' authenticators (DRF's, so the rules match the REST API)."""
    drf_request = Request(request, authenticators=[cls() for cls in STREAM_AUTHENTICATION_CLASSES])
    drf_request.user  # noqa: B018 - evaluating it authenticates, raising on a bad credential
    return Caller.from_request(drf_request)


def _error(exc: Exception) -> HttpResponse:
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


def _read_page(run_id: Any, after: int, status: str | None = None) -> _Page:
    # Status first: a run's terminal status commits with its last events, so if the status read
    # says "finished", the events read after it include the terminal one. A caller that has just
    # read the run row passes its status (read before the events too).
    if status is None:
        status = selectors.run_status(run_id=run_id)
    rows = selectors.run_events_after(run_id=run_id, after_seq=after, limit=CATCH_UP_LIMIT)
    complete = len(rows) < CATCH_UP_LIMIT
    return _Page([render_model_event(row) for row in rows], status in TERMINAL_STATUSES, complete)


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


def _open_async(request: HttpRequest, run_id: str, after: int) -> _Page:
    """Authenticate, check the run is the caller's and read the backlog."""
    try:
        caller = authenticate_stream(request)
        run = selectors.run_for_caller(caller=caller, run_id=run_id)
        return _read_page(run.pk, after, run.status)
    finally:
        _release_connection()


def _read_async(run_id: str, after: int) -> _Page:
    try:
        return _read_page(run_id, after)
    finally:
        _release_connection()


async def _read(run_id: str, after: int) -> _Page:
    return await sync_to_async(_read_async, thread_sensitive=False)(run_id, after)


async def _live_frames(
    run_key: str,
    cursor: _Cursor,
    first_page: _Page | None,
    subscription: Any = None,
    direct: dict[str, Any] | None = None,
) -> AsyncIterator[bytes]:
    """Backlog, then live events from the listener, until a terminal event.

    ``direct`` is filled by :class:`runtime.api.asgi.ApiASGIHandler` with the server's
    ``send`` when the listener may write frames itself while this stream waits
    (:mod:`runtime.api.direct`).
    """
    from runtime.api.direct import DIRECT_SEND, make_writer
    from runtime.bus.listener import KEEPALIVE, RESYNC, WAKE, get_listener

    listener = get_listener()
    if subscription is None:
        subscription = await listener.subscribe(run_key, position=cursor.after)

    async def catch_up(current: _Page | None = None) -> AsyncIterator[bytes]:
        current = current or await _read(run_key, cursor.after)
        while True:
            chunk = cursor.take(current.events)
            subscription.position = cursor.after
            if chunk:
                yield chunk
            if cursor.finished or current.complete:
                if current.terminal_status and current.complete:
                    cursor.finished = True  # the run ended without (more) events to show
                return
            current = await _read(run_key, cursor.after)

    writer = None
    try:
        yield RETRY_FRAME
        async for chunk in catch_up(first_page):
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


async def async_event_stream(request: HttpRequest, run_id: str) -> HttpResponse:
    """Live events of a run, for ASGI servers. See the module docstring."""
    from runtime.bus.listener import get_listener

    try:
        params = parse_stream_params(request)
    except BadStreamRequest as exc:
        return _error(exc)
    try:
        # the bus names runs in canonical form; an upper-case or unhyphenated id must match too
        run_key = str(uuid.UUID(str(run_id)))
    except ValueError:
        return _error(Http404())
    listener = get_listener()
    # Subscribe before the backlog read so an event committed in between is not lost.
    subscription = await listener.subscribe(run_key, position=params.after)
    try:
        page = await sync_to_async(_open_async, thread_sensitive=False)(request, run_key, params.after)
    except Exception as exc:
        listener.unsubscribe(subscription)
        return _error(exc)
    if page.terminal_status and page.complete and not page.events:
        listener.unsubscribe(subscription)
        return HttpResponse(status=204)  # nothing more will come: EventSource stops reconnecting
    cursor = _Cursor(params.after, params.levels)
    direct: dict[str, Any] = {}
    response = _stream_response(_live_frames(run_key, cursor, page, subscription, direct))
    response.sse_direct = direct  # the API's ASGI handler puts the server's send here
    # If the client leaves before the body starts, the generator never runs its cleanup;
    # the response's closers run in a thread, so hand the release back to the loop.
    response._resource_closers.append(lambda: listener.unsubscribe_threadsafe(subscription))
    return response


# --- sync (WSGI) ------------------------------------------------------------------------------


def sync_event_stream(request: HttpRequest, run_id: str) -> HttpResponse:
    """Live events of a run for WSGI servers: polls the table every quarter second."""
    try:
        params = parse_stream_params(request)
        caller = authenticate_stream(request)
        run = selectors.run_for_caller(caller=caller, run_id=run_id)
        page = _read_page(run.pk, params.after, run.status)
    except Exception as exc:
        return _error(exc)
    if page.terminal_status and page.complete and not page.events:
        return HttpResponse(status=204)
    cursor = _Cursor(params.after, params.levels)
    if isinstance(request, ASGIRequest):
        # Under ASGI Django would buffer a sync iterator to the end; stream from the listener
        # instead, and give the connection back now rather than when the stream ends.
        _release_connection()
        return _stream_response(_live_frames(str(run.pk), cursor, None))
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
            current = _read_page(run.pk, cursor.after)

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
