"""The litellm provider, pointed at the same local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json

import pytest

from runtime.llm import LLMError, get_llm_client
from tests.fakes.llm_servers import Status, Text, ToolCalls
from tests.fakes.sink import make_context, run_in_context

MODEL = "litellm:openai/gpt-4o-mini"


@pytest.fixture
def litellm_server(openai_server, settings):
    settings.LITELLM_API_BASE = openai_server.openai_base_url
    settings.LITELLM_API_KEY = "sk-litellm-test"
    return openai_server


def run_generate(messages: str | list[dict] = "Hi", **kwargs):
    ctx, sink = make_context(messages)
    response = asyncio.run(
        run_in_context(ctx, lambda: get_llm_client(MODEL).generate(ctx.input_messages, **kwargs))
    )
    return response, ctx, sink


def test_streamed_text_through_litellm(litellm_server):
    litellm_server.push(Text(["lite", "llm", " works"], prompt_tokens=9))
    response, ctx, sink = run_generate()
    assert sink.streamed_text() == "litellm works" == response.content
    assert ctx.usage == {"prompt_tokens": 9, "completion_tokens": 3}
    assert ctx.cost_usd > 0  # priced as gpt-4o-mini
    request = litellm_server.requests[0]
    assert request.path == "/v1/chat/completions" and request.json["model"] == "gpt-4o-mini"
    assert request.headers["authorization"] == "Bearer sk-litellm-test"


def test_streamed_tool_calls_through_litellm(litellm_server):
    litellm_server.push(ToolCalls([("get_weather", {"location": "Kyiv"})], fragment=5))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            },
        }
    ]
    response, _, _ = run_generate(tools=tools)
    (call,) = response.tool_calls
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Kyiv"}


def test_litellm_errors_use_the_same_retry_policy(litellm_server):
    litellm_server.push(Status(500), Text(["after retry"]))
    assert run_generate()[0].content == "after retry"
    assert len(litellm_server.requests) == 2

    litellm_server.requests.clear()
    litellm_server.push(Status(400, "bad request"))
    with pytest.raises(LLMError) as info:
        run_generate()
    assert info.value.retryable is False
    assert len(litellm_server.requests) == 1
