"""An ASGI handler that serves ``/api/`` (and ``/v1/``) requests with one thread hop each.

Django's stock ASGI handler runs every sync view, and the request and response
hooks of every ``MiddlewareMixin`` middleware, through
``sync_to_async(thread_sensitive=True)``: about 30 hops per API request, each to a
thread created for that request (``ThreadSensitiveContext``), and each request
then opens its own database connection in that new thread. On two cores at
50 runs/s that, not the database, was where ``POST runs/`` spent its time.

For paths under the API prefixes this handler runs Django's *sync* middleware
chain and the view in one call on a small, fixed pool of threads, exactly as a
threaded WSGI server does (the same middleware, the same views, the same
behaviour). Async views (the event streams) are reached from that thread through
``async_to_sync`` and run on the event loop as before; their streaming body is
sent by the loop, never by a pool thread. Database connections live in the pool
threads and follow ``CONN_MAX_AGE`` like under WSGI (closed after each request
when it is 0, reused otherwise), so a process holds at most
``AGENT_API_THREADS`` connections for the API.

Everything else (the builder, the admin) goes through Django's handler unchanged.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponseBase

from runtime import conf

# /v1/: the OpenAI-compatible endpoint (runtime/channels/openai_compat.py)
DEFAULT_PREFIXES = ("/api/", "/v1/")
DEFAULT_THREADS = 8


class ApiASGIHandler(ASGIHandler):
    """Django's ASGI handler, with one pooled-thread hop per request under ``prefixes``."""

    def __init__(self, *, prefixes: tuple[str, ...] = DEFAULT_PREFIXES, threads: int | None = None) -> None:
        super().__init__()
        self.prefixes = prefixes
        self._sync_handler = BaseHandler()
        self._sync_handler.load_middleware(is_async=False)
        size = threads or int(
            conf.setting("AGENT_API_THREADS") or os.environ.get("AGENT_API_THREADS") or DEFAULT_THREADS
        )
        # Not the loop's default executor: a stream view, reached from one of these threads,
        # awaits work on the default executor; sharing one pool could leave nothing to run it.
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="api-request")
        self._serve = sync_to_async(self._serve_in_thread, thread_sensitive=False, executor=self._executor)

    def _is_api(self, path: str) -> bool:
        return path.startswith(self.prefixes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self._is_api(scope.get("path", "")):
            # No ThreadSensitiveContext: it would create a thread per request for the few
            # thread-sensitive calls left (the request signals, response.close), which are cheap
            # and may share the process's one sync thread.
            await self.handle(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        if self._is_api(request.path):
            return await self._serve(request)
        return await super().get_response_async(request)

    async def send_response(self, response: HttpResponseBase, send: Any) -> None:
        finish = getattr(response, "finish_async", None)
        if finish is not None:
            # A view that must wait (a whole chat completion waits for its run) returns at once and
            # is finished here, on the loop: no pool thread waits. A client that goes away cancels
            # this (Django's disconnect listener). The middleware's headers carry over.
            final = await finish()
            for name, value in response.items():
                if name.lower() not in {"content-type", "content-length"} and name not in final:
                    final[name] = value
            response = final
        direct = getattr(response, "sse_direct", None)
        if direct is not None:
            # app loading: config/asgi.py imports this module before django.setup(), and this one
            # reaches runtime.models
            from runtime.streaming.direct import DIRECT_SEND, can_write_directly

            if can_write_directly(send):
                # the event stream lets the listener write its live frames itself
                direct[DIRECT_SEND] = send
        await super().send_response(response, send)

    def _serve_in_thread(self, request: HttpRequest) -> HttpResponseBase:
        # A view here may hand back a response to finish on the loop (see send_response).
        request.META["agent_runtime.finish_on_loop"] = True
        # What request_started/request_finished do under WSGI, for this thread's connection.
        close_old_connections()
        try:
            return self._sync_handler.get_response(request)
        finally:
            close_old_connections()


def get_api_asgi_application() -> ApiASGIHandler:
    """Like ``django.core.asgi.get_asgi_application``, with the API fast path."""
    django.setup(set_prefix=False)
    return ApiASGIHandler()
