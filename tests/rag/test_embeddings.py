"""Embedders behind one interface: the hash embedder, the offline local model, and OpenAI through
the real SDK against a local server speaking its wire protocol (``dimensions`` sent)."""

from __future__ import annotations

import math

import pytest

from rag.embeddings import EmbeddingError, get_embedder
from rag.models import DocumentStatus
from rag.services import document_upload, knowledge_base_create
from tests.fakes.llm_servers import FakeOpenAIServer, Status
from tests.rag import files
from tests.rag.conftest import ingest


@pytest.fixture
def fake_openai(settings):
    with FakeOpenAIServer() as server:
        settings.OPENAI_API_KEY = "sk-test"
        settings.OPENAI_BASE_URL = server.openai_base_url
        settings.AGENT_LLM_MAX_RETRIES = 0
        yield server


def _unit(vector: list[float]) -> bool:
    return math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)


def test_hash_embedder_is_deterministic_and_unit_length():
    first, again = (
        get_embedder("hash").embed(["refund policy"]),
        get_embedder("hash").embed(["refund policy"]),
    )
    assert first == again and len(first[0]) == 256 and _unit(first[0])


def test_offline_local_model_loads_from_its_wheel():
    vectors = get_embedder("local").embed(
        ["The cat sat on the mat", "A kitten rested on a rug", "Tax returns"]
    )
    assert [len(v) for v in vectors] == [64, 64, 64] and all(_unit(v) for v in vectors)

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])


def test_openai_embeddings_send_dimensions(fake_openai):
    vectors = get_embedder("openai-small").embed(["one", "two"])
    request = fake_openai.requests[-1]
    assert request.path == "/v1/embeddings"
    assert request.json["dimensions"] == 512 and request.json["model"] == "text-embedding-3-small"
    assert [len(v) for v in vectors] == [512, 512] and all(_unit(v) for v in vectors)


def test_openai_rate_limit_is_retryable_and_bad_key_is_not(fake_openai):
    fake_openai.push(Status(429), Status(401))
    with pytest.raises(EmbeddingError) as limited:
        get_embedder("openai-small").embed(["x"])
    with pytest.raises(EmbeddingError) as refused:
        get_embedder("openai-small").embed(["x"])
    assert limited.value.retryable and not refused.value.retryable


@pytest.mark.django_db
def test_a_document_indexed_with_openai(fake_openai, owner):
    base = knowledge_base_create(owner=owner, name="OpenAI", embedding_model="openai-small")
    document = ingest(
        document_upload(knowledge_base=base, upload=files.upload("a.md", "# A\nHello"), user=owner)
    )
    assert document.status == DocumentStatus.READY


@pytest.mark.django_db
def test_a_refused_embedding_fails_the_document_with_the_reason(fake_openai, owner):
    base = knowledge_base_create(owner=owner, name="OpenAI", embedding_model="openai-small")
    fake_openai.push(Status(401))
    document = ingest(
        document_upload(knowledge_base=base, upload=files.upload("a.md", "# A\nHello"), user=owner)
    )
    assert document.status == DocumentStatus.FAILED
    assert document.error == "Embedding failed: The embedding service refused the request (401)."


@pytest.mark.django_db
def test_a_rate_limited_embedding_is_retried_by_the_runtime(fake_openai, owner):
    base = knowledge_base_create(owner=owner, name="OpenAI", embedding_model="openai-small")
    fake_openai.push(Status(429))
    document = document_upload(knowledge_base=base, upload=files.upload("a.md", "# A\nHello"), user=owner)
    with pytest.raises(EmbeddingError):
        ingest(document)
    document.refresh_from_db()
    assert document.status == DocumentStatus.STORED and "retrying" in document.error
