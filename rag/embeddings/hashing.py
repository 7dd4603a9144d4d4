"""A deterministic embedder for tests: hashed word (and word-pair) counts, signed, normalised.

Texts sharing words get close vectors, so retrieval tests mean something; no
model, no network, the same vector on every machine.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from rag.embeddings.base import Embedder, normalise

_WORD = re.compile(r"\w+")


def _bucket(token: str, dimensions: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "big")
    return value % dimensions, 1.0 if value >> 63 else -1.0


class HashEmbedder(Embedder):
    in_process = True

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimensions
            words = [w.lower() for w in _WORD.findall(text)]
            for token in [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]:
                index, sign = _bucket(token, self.dimensions)
                vector[index] += sign
            vectors.append(normalise(vector))
        return vectors
