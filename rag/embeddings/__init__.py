"""Embedding models behind one interface: ``get_embedder(key).embed(texts) -> list[list[float]]``.

The keys and their backends come from ``settings.RAG_EMBEDDING_MODELS``; a backend
is imported by dotted path the first time it is used. Errors say whether a retry
can help (:class:`EmbeddingError` ``retryable``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from rag.embeddings.base import Embedder, EmbeddingError

__all__ = ["Embedder", "EmbeddingError", "embedding_model_choices", "get_embedder", "model_config"]


def model_config(key: str) -> dict[str, Any]:
    try:
        return dict(settings.RAG_EMBEDDING_MODELS[key])
    except KeyError:
        known = ", ".join(settings.RAG_EMBEDDING_MODELS)
        raise EmbeddingError(
            f"Unknown embedding model {key!r}; use one of {known}.", retryable=False
        ) from None


def embedding_model_choices() -> list[tuple[str, str]]:
    return [(key, str(cfg.get("label", key))) for key, cfg in settings.RAG_EMBEDDING_MODELS.items()]


@cache
def _cached(key: str, backend: str, dimensions: int, model: str) -> Embedder:
    cls = import_string(backend)
    return cls(key=key, dimensions=dimensions, model=model)


def get_embedder(key: str) -> Embedder:
    cfg = model_config(key)
    return _cached(key, cfg["backend"], int(cfg["dimensions"]), str(cfg.get("model", "")))
