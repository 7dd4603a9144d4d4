"""The anthropic provider: the real ``anthropic`` SDK against a local Messages API server."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from runtime.llm import LLMRateLimitError, LLMStreamInterrupted, LLMTimeoutError, get_llm_client
from runtime.llm.anthropic import from_anthropic, to_anthropic
from tests.fakes.llm_servers import Cut, Hang, Status, Text, ToolCalls
from tests.fakes.sink import make_context, run_in_context

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]
MODEL = "anthropic:claude-sonnet-4-6"

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Lima and Quito?"},
    {
        "role": "assistant",
        "content": "Checking both.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Lima"}'},
            },
            {
                "id": "toolu_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Quito"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny"},
    {"role": "tool", "tool_call_id": "toolu_2", "content": "Rain"},
]


def run_generate(messages: str | list[dict] = "Hi", model: str = MODEL, **kwargs):
    ctx, sink = make_context(messages)
    response = asyncio.run(
        run_in_context(ctx, lambda: get_llm_client(model).generate(ctx.input_messages, **kwargs))
    )
    return response, ctx, sink


def test_conversion_splits_the_system_prompt_and_groups_tool_results():
    system, messages = to_anthropic(CONVERSATION)
    assert system == "You are terse."
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Lima"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Quito"}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "Rain"},
    ]


def test_conversion_round_trips():
    system, messages = to_anthropic(CONVERSATION)
    assert from_anthropic(messages, system) == CONVERSATION


def test_streamed_text_with_usage(anthropic_server):
    anthropic_server.push(Text(["Bon", "jour"], prompt_tokens=200))
    response, ctx, sink = run_generate(CONVERSATION[:2])
    assert sink.streamed_text() == "Bonjour" == response.content
    assert response.usage == {"prompt_tokens": 200, "completion_tokens": 2}
    assert ctx.cost_usd == pytest.approx((200 * 3 + 2 * 15) / 1e6)
    (request,) = anthropic_server.requests
    assert request.path == "/v1/messages"
    # SDK versions differ in the header they use for the key
    assert "sk-ant-test-key" in request.headers.get("x-api-key", "") + request.headers.get(
        "authorization", ""
    )
    assert request.json["system"] == "You are terse."
    assert request.json["stream"] is True and request.json["max_tokens"] == 4096
    assert request.json["model"] == "claude-sonnet-4-6"


def test_streamed_tool_use_becomes_neutral_tool_calls(anthropic_server):
    anthropic_server.push(
        ToolCalls([("get_weather", {"location": "Lima"})], text="Let me check.", fragment=3)
    )
    response, _, sink = run_generate(tools=TOOLS)
    assert sink.streamed_text() == "Let me check."
    (call,) = response.tool_calls
    assert call["id"] == "toolu_fake_0" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Lima"}
    assert response.finish_reason == "tool_calls"
    assert anthropic_server.requests[0].json["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": TOOLS[0]["function"]["parameters"],
        }
    ]


def test_tool_results_are_sent_as_tool_result_blocks(anthropic_server):
    run_generate(CONVERSATION, tools=TOOLS)
    sent = anthropic_server.requests[0].json["messages"]
    assert sent[-1]["role"] == "user" and sent[-1]["content"][0]["type"] == "tool_result"


def test_non_streamed_call(anthropic_server):
    anthropic_server.push(ToolCalls([("get_weather", {"location": "Oslo"})], text="One moment."))
    response, _, sink = run_generate(stream=False, tools=TOOLS)
    assert response.content == "One moment."
    assert json.loads(response.tool_calls[0]["function"]["arguments"]) == {"location": "Oslo"}
    assert sink.of_type("assistant.delta") == []


def test_429_with_retry_after_then_success(anthropic_server):
    anthropic_server.push(Status(429, headers={"retry-after": "1"}), Text(["ok"]))
    started = time.monotonic()
    assert run_generate()[0].content == "ok"
    assert time.monotonic() - started >= 0.95
    assert len(anthropic_server.requests) == 2


def test_overloaded_529_and_500_are_retried(anthropic_server):
    anthropic_server.push(Status(529, "overloaded"), Status(500), Text(["back"]))
    assert run_generate()[0].content == "back"
    assert len(anthropic_server.requests) == 3


def test_rate_limit_that_never_lifts_is_reported_retryable(anthropic_server):
    anthropic_server.push(*[Status(429, headers={"retry-after": "0"})] * 3)
    with pytest.raises(LLMRateLimitError) as info:
        run_generate()
    assert info.value.retryable is True and info.value.status_code == 429


def test_hang_times_out(anthropic_server, settings):
    settings.AGENT_LLM_TIMEOUT = 0.3
    settings.AGENT_LLM_MAX_RETRIES = 0
    anthropic_server.push(Hang())
    with pytest.raises(LLMTimeoutError):
        run_generate()


def test_cut_stream_after_text(anthropic_server):
    anthropic_server.push(Cut(["Half", " of", " it"], after=2))
    with pytest.raises(LLMStreamInterrupted):
        run_generate()
    assert len(anthropic_server.requests) == 1
