"""An embedder a test can hold mid-document: from its second call it waits for a release file.

Used by workers the tests start (``RAG_GATE_DIR`` in their environment): the first batch is
embedded (so progress is written), then the call blocks until ``<dir>/release`` exists,
after writing ``<dir>/started`` with the worker's pid.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from rag.embeddings.hashing import HashEmbedder


class GatedEmbedder(HashEmbedder):
    calls = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        GatedEmbedder.calls += 1
        gate = os.environ.get("RAG_GATE_DIR")
        if gate and GatedEmbedder.calls >= 2:
            folder = Path(gate)
            (folder / "started").write_text(str(os.getpid()))
            deadline = time.monotonic() + 60
            while not (folder / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().embed(texts)
