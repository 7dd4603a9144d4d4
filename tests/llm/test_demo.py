"""The offline demo model, model naming, the price table and list_models."""

from __future__ import annotations

import asyncio
import json

import pytest

from runtime.interfaces import Tool, ToolRegistry
from runtime.llm import LLMConfigurationError, get_llm_client, list_models, parse_model
from runtime.llm.demo import DEMO_NOTICE
from tests.fakes.sink import make_context, run_in_context


def get_weather(location: str) -> str:
    """Get current weather for a location."""
    return f"Sunny in {location}"


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


TOOLS = ToolRegistry([Tool.from_function(get_weather), Tool.from_function(add)]).to_openai_format()


def generate(messages, **kwargs):
    return asyncio.run(get_llm_client("demo").generate(messages, **kwargs))


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def test_demo_says_it_is_a_demo_and_is_deterministic():
    first = generate(user("Hello, who are you?"))
    second = generate(user("Hello, who are you?"))
    assert first.content.startswith(DEMO_NOTICE)
    assert "Hello, who are you?" in first.content
    assert first.message == second.message
    assert first.message == {"role": "assistant", "content": first.content}
    assert first.usage["completion_tokens"] > 0 and first.tool_calls == []


def test_demo_streams_deltas_that_add_up_to_the_reply_and_records_usage():
    ctx, sink = make_context("stream please")
    response = asyncio.run(run_in_context(ctx, lambda: get_llm_client("demo").generate(ctx.input_messages)))
    deltas = sink.of_type("assistant.delta")
    assert len(deltas) > 5
    assert sink.streamed_text() == response.content
    # the client never emits the final message: the agent does
    assert "assistant.message" not in sink.types()
    assert ctx.usage == response.usage and ctx.cost_usd == 0.0
    (usage,) = sink.of_type("usage")
    assert usage["provider"] == "demo" and usage["completion_tokens"] == response.usage["completion_tokens"]


def test_demo_without_stream_emits_no_deltas():
    ctx, sink = make_context("no stream")
    asyncio.run(
        run_in_context(ctx, lambda: get_llm_client("demo").generate(ctx.input_messages, stream=False))
    )
    assert sink.of_type("assistant.delta") == []


def test_demo_calls_a_tool_named_in_the_message_with_arguments_from_the_text():
    response = generate(user("What does get_weather say for Paris?"), tools=TOOLS)
    (call,) = response.tool_calls
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    assert response.message["tool_calls"] == response.tool_calls
    assert response.finish_reason == "tool_calls"


def test_demo_accepts_the_tool_name_written_with_spaces_and_fills_numbers_from_digits():
    response = generate(user("please add 2 and 40"), tools=TOOLS)
    assert json.loads(response.tool_calls[0]["function"]["arguments"]) == {"a": 2, "b": 40}
    spaced = generate(user("get weather in Oslo"), tools=TOOLS)
    assert json.loads(spaced.tool_calls[0]["function"]["arguments"]) == {"location": "Oslo"}


def test_demo_uses_the_whole_message_when_nothing_follows_the_tool_name():
    response = generate(user("Berlin: get_weather"), tools=TOOLS)
    assert json.loads(response.tool_calls[0]["function"]["arguments"]) == {"location": "Berlin: get_weather"}


def test_demo_does_not_call_tools_it_was_not_offered():
    response = generate(user("call get_weather for Rome"))
    assert response.tool_calls == [] and "get_weather for Rome" in response.content


def test_demo_summarises_a_tool_result():
    first = generate(user("get_weather for Lima"), tools=TOOLS)
    call = first.tool_calls[0]
    messages = [
        *user("get_weather for Lima"),
        first.message,
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny in Lima"},
    ]
    reply = generate(messages, tools=TOOLS)
    assert reply.tool_calls == []
    assert reply.content == f"{DEMO_NOTICE} The get_weather tool returned: Sunny in Lima"


def test_model_names_route_to_providers(settings):
    assert parse_model("demo") == ("demo", "demo")
    assert parse_model("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_model("anthropic:claude-sonnet-4-5") == ("anthropic", "claude-sonnet-4-5")
    assert parse_model("litellm:ollama/llama3") == ("litellm", "ollama/llama3")
    settings.DJANGO_AGENT_RUNTIME = {**settings.DJANGO_AGENT_RUNTIME, "MODEL_PROVIDER": "openai"}
    assert parse_model("my-local-model") == ("openai", "my-local-model")
    settings.DJANGO_AGENT_RUNTIME = {**settings.DJANGO_AGENT_RUNTIME, "MODEL_PROVIDER": "demo"}
    # with the demo as provider, a plainly named real model still goes to its provider
    assert parse_model("gpt-4o") == ("openai", "gpt-4o")
    assert parse_model("claude-haiku-4-5") == ("anthropic", "claude-haiku-4-5")


def test_unknown_provider_is_a_configuration_error():
    with pytest.raises(LLMConfigurationError, match="Unknown model provider 'nope'") as info:
        get_llm_client(provider="nope")
    assert info.value.retryable is False


@pytest.mark.parametrize(
    ("model", "variable"),
    [("openai:gpt-4o", "OPENAI_API_KEY"), ("anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY")],
)
def test_a_missing_key_names_the_variable_and_is_not_retryable(settings, model, variable):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.ANTHROPIC_API_KEY = ""
    with pytest.raises(LLMConfigurationError) as info:
        asyncio.run(get_llm_client(model).generate(user("hi")))
    assert variable in str(info.value)
    assert info.value.retryable is False


def test_list_models_offers_real_providers_only_with_their_keys(settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.ANTHROPIC_API_KEY = ""
    settings.AGENT_LLM_MODELS = []
    listing = list_models()
    assert [m["id"] for m in listing["models"]] == ["demo"]
    assert listing["models"][0]["is_demo"] is True and listing["default"] == "demo"

    settings.ANTHROPIC_API_KEY = "sk-ant"
    settings.AGENT_LLM_MODELS = ["litellm:ollama/llama3"]
    ids = [m["id"] for m in list_models()["models"]]
    assert "anthropic:claude-sonnet-4-6" in ids and "litellm:ollama/llama3" in ids
    assert not any(i.startswith("openai:") for i in ids)
    for model in list_models()["models"]:
        assert set(model) == {"id", "name", "provider", "supports_tools", "supports_streaming", "is_demo"}


def test_a_missing_key_reaches_users_as_a_clear_run_error(settings):
    from examples.seed_agents import ChatAgent
    from runtime.engine.runner import user_error

    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    ctx, _ = make_context("hi", model="openai:gpt-4o")
    with pytest.raises(LLMConfigurationError) as info:
        asyncio.run(run_in_context(ctx, lambda: ChatAgent().run(ctx)))
    error = user_error(info.value)
    assert error["code"] == "llm_not_configured"
    assert "set the OPENAI_API_KEY environment variable" in error["message"]
