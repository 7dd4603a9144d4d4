"""The event-stream views: ``runs/<id>/events/`` (sync) and ``runs/<id>/events/stream/`` (async).

Both send ``retry:`` first, then every visible event above the client's position
(``Last-Event-ID``, else ``?from_seq=N`` meaning "from seq N on"), then live
events, a keep-alive comment when idle, and close after a terminal event.

These views parse the request, authenticate the caller and read the backlog (in
the request's thread, one query after auth); what follows is
:mod:`runtime.streaming`: the ASGI view hands the stream to the per-process
listener and holds no database connection while it waits, the sync view (WSGI)
polls the table.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

from runtime.api.credentials import CachedTokenAuthentication
from runtime.api.errors import database_unavailable, database_unavailable_response, error_response
from runtime.api.permissions import AnonymousSessionQueryAuthentication, Caller
from runtime.events import visible_levels
from runtime.streaming.listener import current_listener
from runtime.streaming.stream import Cursor, Page, live_frames, poll_frames, read_page

logger = logging.getLogger("runtime.api")

# Token first so an unauthenticated request gets 401 with a WWW-Authenticate header.
STREAM_AUTHENTICATION_CLASSES = [
    CachedTokenAuthentication,
    SessionAuthentication,
    AnonymousSessionQueryAuthentication,
]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


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


# --- async (ASGI) -----------------------------------------------------------------------------


def _release_connection() -> None:
    """Give back this pool thread's connection the way a finished request does.

    With ``CONN_MAX_AGE = 0`` it is closed; otherwise the thread keeps it for the next
    read, which saves a PostgreSQL connection start per stream opened. Either way the
    stream itself holds none while it waits, and the threads are few (the loop's executor).
    """
    connection.close_if_unusable_or_obsolete()


def _start(request: HttpRequest, run_id: str) -> HttpResponse | tuple[str, Cursor, Page]:
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
        page = read_page(run_key, params.after, caller=authenticate_stream(request))
    except Exception as exc:
        return _error(exc)
    if page.terminal_status and page.complete and not page.events:
        return HttpResponse(status=204)  # nothing more will come: EventSource stops reconnecting
    return run_key, Cursor(params.after, params.levels), page


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
    response = _stream_response(live_frames(run_key, cursor, page, direct))
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
        return _stream_response(live_frames(run_key, cursor, page))
    return _stream_response(poll_frames(run_key, cursor, page))


# --- operations -------------------------------------------------------------------------------


def _staff_caller(request: HttpRequest) -> Any:
    try:
        drf_request = Request(request, authenticators=[TokenAuthentication(), SessionAuthentication()])
        return drf_request.user
    finally:
        _release_connection()


async def stream_stats(request: HttpRequest) -> HttpResponse:
    """Staff only: this process's listener (open streams, bus connection, deliveries)."""
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
