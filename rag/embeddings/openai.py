"""OpenAI embeddings (or any OpenAI-compatible server at ``OPENAI_BASE_URL``) through the openai SDK.

``dimensions`` is sent, so a text-embedding-3 model returns vectors of the size the index
expects. Rate limits, timeouts and 5xx answers are retryable (the ingestion job retries
with the runtime's backoff); a bad key or request is not.

One SDK client per process and configuration serves every batch (its HTTP connections are
kept alive and shared by the worker's threads): a client made per batch paid a new TLS
context and a new connection each time.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from django.conf import settings

from rag.embeddings.base import Embedder, EmbeddingError, normalise


@lru_cache(maxsize=8)
def _shared_client(api_key: str, base_url: str | None, timeout: float, max_retries: int):
    import openai  # optional: the openai extra (~650 modules)

    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)


class OpenAIEmbedder(Embedder):
    def _client(self):
        try:
            import openai  # noqa: F401 - optional: the openai extra; imported here to say plainly when it is missing
        except ImportError:
            raise EmbeddingError("The openai package is not installed.", retryable=False) from None
        if not settings.OPENAI_API_KEY and not settings.OPENAI_BASE_URL:
            raise EmbeddingError(
                f"The embedding model {self.key!r} needs OPENAI_API_KEY (or OPENAI_BASE_URL).",
                retryable=False,
            )
        return _shared_client(
            settings.OPENAI_API_KEY or "not-needed",
            settings.OPENAI_BASE_URL or None,
            settings.AGENT_LLM_TIMEOUT,
            settings.AGENT_LLM_MAX_RETRIES,
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import openai  # optional: the openai extra (~650 modules)

        if not texts:
            return []
        try:
            response = self._client().embeddings.create(
                model=self.model, input=list(texts), dimensions=self.dimensions
            )
        except (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise EmbeddingError(f"The embedding service is unavailable: {exc}", retryable=True) from exc
        except openai.APIStatusError as exc:
            raise EmbeddingError(
                f"The embedding service refused the request ({exc.status_code}).",
                retryable=exc.status_code >= 500,
            ) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts) or any(len(item.embedding) != self.dimensions for item in data):
            raise EmbeddingError(
                f"The embedding service returned the wrong number or size of vectors for {self.model}.",
                retryable=False,
            )
        return [normalise(item.embedding) for item in data]
