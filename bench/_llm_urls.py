"""The project's URLs plus ``/bench/llm-proxy/``: the yardstick for time to first token.

The proxy is what a Django developer writes without the runtime: an async view that
calls the ``openai`` SDK with ``stream=True`` and forwards each text piece as an SSE
frame. No auth, no database, no worker, no event log. The SDK client is made once per
event loop, with the same base URL and key as the runtime's worker (``OPENAI_*`` env).
"""

from __future__ import annotations

import asyncio
import json
import os

import openai
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns

_clients: dict[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = {}


def _client() -> openai.AsyncOpenAI:
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients[loop] = openai.AsyncOpenAI(
            api_key=os.environ.get("OPENAI_API_KEY", "not-needed"),
            base_url=os.environ["OPENAI_BASE_URL"],
            max_retries=0,
        )
    return _clients[loop]


async def llm_proxy(request: HttpRequest) -> StreamingHttpResponse:
    prompt = request.GET.get("prompt", "bench tokens=5 rate=0")

    async def frames():
        yield b"retry: 2000\n\n"
        try:
            stream = await _client().chat.completions.create(
                model="bench-model",
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                stream_options={"include_usage": True},
            )
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            data = json.dumps({"delta": choice.delta.content})
                            yield f"event: assistant.delta\ndata: {data}\n\n".encode()
        except openai.OpenAIError as exc:  # the benchmark shows it rather than a bare closed stream
            yield f"event: error\ndata: {json.dumps({'error': repr(exc)})}\n\n".encode()
            return
        yield b"event: done\ndata: {}\n\n"

    return StreamingHttpResponse(frames(), content_type="text/event-stream")


urlpatterns = [path("bench/llm-proxy/", llm_proxy), *project_urlpatterns]
