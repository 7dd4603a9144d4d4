"""Time to first token: our openai client against the bare ``openai`` SDK, same local server.

A local OpenAI-compatible server (tests/fakes) answers at once. For each request we time
the first streamed text: (a) through ``runtime.llm`` inside a run context (retry loop, read
guard, ``assistant.delta`` emitted to an in-memory sink), and (b) straight from
``AsyncOpenAI().chat.completions.create(stream=True)``, as a plain Django view proxying the
stream would. The difference is the client layer's share of the runtime's overhead; the
worker's event batching and the SSE hop are measured by the engine/SSE benchmarks.

    python -m bench llm_ttft        (BENCH_LLM_TTFT_N requests each, default 300)
"""

from __future__ import annotations

import asyncio
import os
import time

from bench._llm import setup_django, summary

N = int(os.environ.get("BENCH_LLM_TTFT_N", "300"))


async def _measure(server_url: str) -> list[dict[str, str]]:
    import openai
    from django.test import override_settings

    from runtime.llm import get_llm_client
    from tests.fakes.sink import make_context

    raw_client = openai.AsyncOpenAI(api_key="sk-bench", base_url=server_url, max_retries=0)
    messages = [{"role": "user", "content": "Say hello"}]

    async def raw_once() -> float:
        started = time.perf_counter()
        stream = await raw_client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        first = None
        async with stream:
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.perf_counter() - started
        assert first is not None
        return first

    async def ours_once() -> float:
        ctx, sink = make_context(messages)
        first: list[float] = []
        started = time.perf_counter()
        original = sink.emit

        async def emit(event_type, payload):
            if event_type == "assistant.delta" and not first:
                first.append(time.perf_counter() - started)
            await original(event_type, payload)

        sink.emit = emit  # type: ignore[method-assign]
        token = ctx.activate()
        try:
            await get_llm_client("openai:gpt-4o-mini").generate(messages)
        finally:
            ctx.deactivate(token)
        return first[0]

    with override_settings(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=server_url):
        for _ in range(20):  # warm both connection pools
            await raw_once()
            await ours_once()
        raw: list[float] = []
        ours: list[float] = []
        for _ in range(N):  # interleaved, so drift in machine load hits both alike
            raw.append(await raw_once())
            ours.append(await ours_once())
    overhead = [o - r for o, r in zip(sorted(ours), sorted(raw), strict=True)]
    return [
        summary("bare openai SDK: first text chunk", raw),
        summary("runtime.llm: first assistant.delta", ours),
        summary("difference (by rank)", overhead, target="p50 <= 25 ms, p99 <= 100 ms (whole path)"),
    ]


def main() -> list[dict[str, str]]:
    setup_django()
    from tests.fakes.llm_servers import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        return asyncio.run(_measure(server.openai_base_url))


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
