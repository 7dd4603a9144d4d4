"""One cap on request bodies (``REQUEST_MAX_BYTES``), answered with 413 everywhere.

Three places enforce it, from the outside in:

- :class:`BodyLimitASGI` (around the ASGI application, ``config/asgi.py``) refuses
  a declared ``Content-Length`` over the cap, and stops reading a chunked body at
  the cap, before Django spools anything to disk;
- :class:`RequestSizeLimitMiddleware` refuses a declared ``Content-Length`` under
  WSGI (and the test client);
- Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (set to the same cap) raises
  ``RequestDataTooBig`` while a body is read; the API's exception handler and
  :func:`bad_request` turn that into the same 413.

The reverse proxy should refuse such bodies first (README, "Reverse proxy and
request limits").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.defaults import bad_request as page_bad_request


def max_bytes(content_type: str | bytes | None = None) -> int:
    """The cap for a body of this type: file uploads (multipart) may be larger, up to ``UPLOAD_MAX_BYTES``.

    Django still caps a multipart body's non-file fields at ``DATA_UPLOAD_MAX_MEMORY_SIZE``.
    """
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    if content_type and content_type.lower().startswith("multipart/form-data"):
        return int(getattr(settings, "UPLOAD_MAX_BYTES", 0) or 0)
    return int(getattr(settings, "REQUEST_MAX_BYTES", 0) or 0)


def _readable(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def too_large_response(path: str, cap: int | None = None) -> HttpResponse:
    """413: a JSON error under /api/, a readable page elsewhere."""
    limit = _readable(max_bytes() if cap is None else cap)
    if path.startswith("/api/"):
        message = f"The request body is larger than {limit}; send less data in one request."
        return JsonResponse(
            {"error": {"code": "request_too_large", "message": message, "fields": {}}}, status=413
        )
    return HttpResponse(render_to_string("413.html", {"limit": limit}), status=413)


def declared_length(value: str | bytes | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class RequestSizeLimitMiddleware:
    """413 for a request whose declared body is over ``REQUEST_MAX_BYTES``, before it is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = max_bytes(request.META.get("CONTENT_TYPE"))
        if limit and declared_length(request.META.get("CONTENT_LENGTH")) > limit:
            return too_large_response(request.path, limit)
        return self.get_response(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler400``: a body Django stopped reading at the cap is a 413, not a 400."""
    if isinstance(exception, RequestDataTooBig):
        return too_large_response(request.path)
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "bad_request", "message": "The request could not be read.", "fields": {}}},
            status=400,
        )

    return page_bad_request(request, exception)


class BodyLimitASGI:
    """ASGI wrapper: 413 for a body over the cap, without reading it.

    A request that declares its length is answered at once. A chunked one is read
    through a counting ``receive``; past the cap the application is told the client
    left (Django drops the request), and this wrapper sends the 413 itself. Bodiless
    and in-limit requests pass through untouched, so the event streams keep uvicorn's
    own ``send``.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        limit = max_bytes(headers.get(b"content-type"))
        if not limit:
            await self.app(scope, receive, send)
            return
        if declared_length(headers.get(b"content-length")) > limit:
            await self._refuse(scope, send, limit)
            return
        if b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)
            return
        received = 0
        over = False
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                over = True
                return {"type": "http.disconnect"}
            return message

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        await self.app(scope, counting_receive, watching_send)
        if over and not started:
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: dict[str, Any], send: Any, limit: int) -> None:
        response = await sync_to_async(too_large_response, thread_sensitive=False)(
            scope.get("path", ""), limit
        )
        headers = [(b"content-type", response["Content-Type"].encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": response.content})
