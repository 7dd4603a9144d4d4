"""The project's URLs plus ``/bench/plain-stream/``: the yardstick for idle-connection cost.

The plain endpoint is what a Django developer writes without the runtime: an async
view returning ``StreamingHttpResponse`` over an async generator that only sends a
keep-alive comment now and then. No auth, no database, no listener.
"""

from __future__ import annotations

import asyncio

from django.http import StreamingHttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


async def plain_stream(request):
    async def frames():
        yield b"retry: 2000\n\n"
        while True:
            await asyncio.sleep(15)
            yield b": keep-alive\n\n"

    return StreamingHttpResponse(frames(), content_type="text/event-stream")


urlpatterns = [path("bench/plain-stream/", plain_stream), *project_urlpatterns]
