"""Fake provider servers (one per test module) and settings that point the SDKs at them."""

from __future__ import annotations

import pytest

from tests.fakes.llm_servers import FakeAnthropicServer, FakeOpenAIServer
from tests.llm.run_caps import capped_agents  # noqa: F401 - the per-run caps tests' agents


@pytest.fixture(scope="module")
def _openai_server():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def _anthropic_server():
    with FakeAnthropicServer() as server:
        yield server


@pytest.fixture
def fast_llm(settings):
    """Short timeouts and backoff so failure paths take milliseconds, not minutes."""
    settings.AGENT_LLM_TIMEOUT = 0.5
    settings.AGENT_LLM_MAX_RETRIES = 2
    settings.AGENT_LLM_RETRY_BASE_DELAY = 0.01
    settings.AGENT_LLM_RETRY_MAX_WAIT = 5.0
    return settings


@pytest.fixture
def openai_server(_openai_server, fast_llm):
    _openai_server.script.clear()
    _openai_server.requests.clear()
    fast_llm.OPENAI_API_KEY = "sk-test-key"
    fast_llm.OPENAI_BASE_URL = _openai_server.openai_base_url
    yield _openai_server
    _openai_server.script.clear()


@pytest.fixture
def anthropic_server(_anthropic_server, fast_llm):
    _anthropic_server.script.clear()
    _anthropic_server.requests.clear()
    fast_llm.ANTHROPIC_API_KEY = "sk-ant-test-key"
    fast_llm.ANTHROPIC_BASE_URL = _anthropic_server.base_url
    yield _anthropic_server
    _anthropic_server.script.clear()
