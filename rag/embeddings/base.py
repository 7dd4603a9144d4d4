from __future__ import annotations

import abc
import math
from collections.abc import Sequence


class EmbeddingError(Exception):
    """An embedding call failed; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Embedder(abc.ABC):
    """One verb: ``embed(texts)`` gives one unit-length vector of ``dimensions`` floats per text.
    Each backend (local, hashing, OpenAI, LiteLLM) implements it.

    ``in_process``: embeds in this process without waiting on a network, so it may run on a
    thread that others wait for (a worker's database threads); a backend that calls an API
    leaves it False."""

    in_process = False

    def __init__(self, *, key: str, dimensions: int, model: str = "") -> None:
        self.key = key
        self.dimensions = dimensions
        self.model = model

    @abc.abstractmethod
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0:
        # pgvector's cosine distance of a zero vector is NaN; a tiny constant keeps ranking defined.
        return [1.0 / math.sqrt(len(vector))] * len(vector)
    return [x / norm for x in vector]
