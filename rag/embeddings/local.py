"""The offline local model: a static (Model2Vec-style) embedding model whose weights ship in
the ``tokenlearn-static-model`` wheel (10k vocabulary, 64 dimensions, int8). It loads from
the installed package with no network and no key, so knowledge works on a fresh machine.
Its quality is modest; choose an OpenAI model for better retrieval when a key is available.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.embeddings.base import Embedder, EmbeddingError, normalise


class StaticModelEmbedder(Embedder):
    in_process = True

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            from static_model import get_embeddings  # optional: answered with a clear error when absent
        except ImportError:
            raise EmbeddingError(
                "The offline embedding model is not installed (pip install tokenlearn-static-model).",
                retryable=False,
            ) from None
        if not texts:
            return []
        vectors = get_embeddings([str(t) for t in texts])
        if vectors and len(vectors[0]) != self.dimensions:
            raise EmbeddingError(
                f"The offline model gives {len(vectors[0])} dimensions, but settings say {self.dimensions}.",
                retryable=False,
            )
        return [normalise(v) for v in vectors]
