"""The openai provider: the real ``openai`` SDK against a local Chat Completions server."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from runtime.llm import (
    LLMConfigurationError,
    LLMServerError,
    LLMStreamInterrupted,
    LLMTimeoutError,
    get_llm_client,
)
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


def run_generate(model: str, messages: str | list[dict] = "Hi", **kwargs):
    ctx, sink = make_context(messages)
    response = asyncio.run(
        run_in_context(ctx, lambda: get_llm_client(model).generate(ctx.input_messages, **kwargs))
    )
    return response, ctx, sink


def test_streamed_text_arrives_as_deltas_with_usage_and_cost(openai_server):
    openai_server.push(Text(["Hel", "lo", " there"], prompt_tokens=1000))
    response, ctx, sink = run_generate("openai:gpt-4o-mini")
    assert [d["delta"] for d in sink.of_type("assistant.delta")] == ["Hel", "lo", " there"]
    assert response.message == {"role": "assistant", "content": "Hello there"}
    assert response.usage == {"prompt_tokens": 1000, "completion_tokens": 3}
    assert ctx.usage == response.usage
    # gpt-4o-mini: $0.15 / $0.60 per million tokens
    assert ctx.cost_usd == pytest.approx((1000 * 0.15 + 3 * 0.60) / 1e6)
    (request,) = openai_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.json["stream"] is True and request.json["stream_options"] == {"include_usage": True}
    assert request.json["model"] == "gpt-4o-mini"


def test_streamed_tool_call_fragments_are_assembled(openai_server):
    arguments = {"location": "São Paulo", "units": "metric"}
    openai_server.push(
        ToolCalls([("get_weather", arguments), ("get_weather", {"location": "Lima"})], fragment=4)
    )
    response, _, sink = run_generate("openai:gpt-4o", tools=TOOLS)
    assert [c["function"]["name"] for c in response.tool_calls] == ["get_weather", "get_weather"]
    assert json.loads(response.tool_calls[0]["function"]["arguments"]) == arguments
    assert response.tool_calls[1]["id"] == "call_fake_1"
    assert response.message["tool_calls"] == response.tool_calls
    assert response.finish_reason == "tool_calls"
    assert sink.of_type("assistant.delta") == []
    assert openai_server.requests[0].json["tools"] == TOOLS


def test_a_conversation_with_tool_results_is_sent_in_openai_shape(openai_server):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Lima?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Lima"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": {"sky": "clear"}},
    ]
    run_generate("openai:gpt-4o", messages, tools=TOOLS)
    sent = openai_server.requests[0].json["messages"]
    assert sent[2]["tool_calls"][0]["id"] == "call_1" and sent[2]["content"] is None
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear"}'}


def test_non_streamed_call_returns_the_same_neutral_response(openai_server):
    openai_server.push(ToolCalls([("get_weather", {"location": "Oslo"})], text="Checking."))
    response, _, sink = run_generate("openai:gpt-4o", stream=False, tools=TOOLS)
    assert response.content == "Checking."
    assert json.loads(response.tool_calls[0]["function"]["arguments"]) == {"location": "Oslo"}
    assert response.usage == {"prompt_tokens": 20, "completion_tokens": 2}
    assert "stream" not in openai_server.requests[0].json
    assert sink.of_type("assistant.delta") == []


def test_429_honours_retry_after_then_succeeds(openai_server):
    openai_server.push(Status(429, "slow down", headers={"retry-after": "1"}), Text(["ok"]))
    started = time.monotonic()
    response, _, _ = run_generate("openai:gpt-4o")
    elapsed = time.monotonic() - started
    assert response.content == "ok"
    assert elapsed >= 0.95, "the client must wait as long as Retry-After says"
    assert len(openai_server.requests) == 2, "only our retry loop retries (the SDK's retries are off)"


def test_retry_after_is_capped(openai_server, settings):
    settings.AGENT_LLM_RETRY_MAX_WAIT = 0.05
    openai_server.push(Status(429, headers={"retry-after": "3600"}), Text(["ok"]))
    started = time.monotonic()
    assert run_generate("openai:gpt-4o")[0].content == "ok"
    assert time.monotonic() - started < 2


def test_500_is_retried_with_backoff_then_reported_as_retryable(openai_server):
    openai_server.push(Status(500), Text(["recovered"]))
    assert run_generate("openai:gpt-4o")[0].content == "recovered"

    openai_server.requests.clear()
    openai_server.push(Status(500), Status(502), Status(503))
    with pytest.raises(LLMServerError) as info:
        run_generate("openai:gpt-4o")
    assert info.value.retryable is True and info.value.status_code == 503
    assert len(openai_server.requests) == 3  # first try + AGENT_LLM_MAX_RETRIES (2)


def test_rejected_key_is_a_configuration_error_not_retried(openai_server):
    openai_server.push(Status(401, "bad key"))
    with pytest.raises(LLMConfigurationError, match="OPENAI_API_KEY") as info:
        run_generate("openai:gpt-4o")
    assert info.value.retryable is False
    assert len(openai_server.requests) == 1


def test_a_hung_provider_times_out(openai_server, settings):
    settings.AGENT_LLM_TIMEOUT = 0.3
    settings.AGENT_LLM_MAX_RETRIES = 1
    openai_server.push(Hang(), Hang())
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError) as info:
        run_generate("openai:gpt-4o")
    assert info.value.retryable is True
    assert "AGENT_LLM_TIMEOUT" in str(info.value) or "timed out" in str(info.value)
    assert time.monotonic() - started < 3
    assert len(openai_server.requests) == 2


def test_a_stream_cut_after_text_was_shown_is_not_silently_retried(openai_server):
    openai_server.push(Cut(["Partial", " answer", " lost"], after=2))
    with pytest.raises(LLMStreamInterrupted) as info:
        run_generate("openai:gpt-4o")
    # retryable as a whole run (the runner's run.retrying tells clients to drop the partial text)
    assert info.value.retryable is True
    assert len(openai_server.requests) == 1


def test_a_stream_cut_before_any_text_is_retried(openai_server):
    openai_server.push(Cut(after=0), Text(["fine"]))
    response, _, sink = run_generate("openai:gpt-4o")
    assert response.content == "fine" and sink.streamed_text() == "fine"
    assert len(openai_server.requests) == 2


def test_base_url_without_a_key_serves_compatible_servers(openai_server, settings):
    settings.OPENAI_API_KEY = ""
    response, _, _ = run_generate("openai:llama3.1")
    assert response.content == "Hello from the fake model."
    assert openai_server.requests[0].json["model"] == "llama3.1"


def test_temperature_and_max_tokens_are_passed(openai_server):
    run_generate("openai:gpt-4o", temperature=0.2, max_tokens=50)
    body = openai_server.requests[0].json
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50


def test_a_run_model_chooses_the_provider_for_get_llm_client_without_arguments(openai_server):
    ctx, sink = make_context("hi", model="openai:gpt-4o-mini")
    response = asyncio.run(run_in_context(ctx, lambda: get_llm_client().generate(ctx.input_messages)))
    assert response.provider == "openai" and openai_server.requests[0].json["model"] == "gpt-4o-mini"
