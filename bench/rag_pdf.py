"""A 100-page PDF from upload to ready, with the offline model and with a (fake) OpenAI server.

The PDF is written by hand in the benchmark (uncompressed content streams, Helvetica, no
download): ``PAGES`` pages of ``LINES`` lines of prose each (rag_search's Zipf vocabulary), about
500 words a page, so a page is about two passages at the default 300 tokens. One
``manage.py runagent`` worker; the local fake OpenAI server (bench/_fake_openai.py) in its own
process answers ``/v1/embeddings``. Each round uploads the file (``document_upload``) into a
fresh knowledge base and times until the document is ``ready``: extraction by pypdf in the
contained parser process, chunking, embedding, the atomic swap of the chunks. The embedders
alternate, ``ROUNDS`` rounds each.

Peer, in the same run: pypdf alone reading the same file's text in this process (what any
PDF pipeline pays before it can chunk).

    python -m bench rag_pdf   (BENCH_RAG_PDF_ROUNDS rounds per embedder, default 3)
"""

from __future__ import annotations

import io
import os
import random
import statistics
import tempfile
import time

from bench._sse import env_int
from bench.common import dedicated_database, setup_django
from bench.common import wait_until as _wait_until
from bench.rag_ingest import Workers
from tests.rag.files import pdf_bytes as tests_pdf_bytes

PAGES = 100
LINES = 45
ROUNDS = env_int("BENCH_RAG_PDF_ROUNDS", 3)
MODELS = ("local", "openai-small")


def pdf_bytes(rng: random.Random, pages: int = PAGES) -> bytes:
    """A PDF of ``pages`` pages, each ``LINES`` lines of 10-12 words (one text object per page)."""
    from bench.rag_search import _words

    text = []
    for _ in range(pages):
        lines = [" ".join(_words(rng, rng.randint(10, 12))) for _ in range(LINES)]
        lines[-1] += "."
        text.append(lines)
    return tests_pdf_bytes(text)


def _to_ready(owner, *, model: str, data: bytes, tag: str) -> tuple[float, int, int]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rag.models import Document, DocumentStatus
    from rag.services import document_upload, knowledge_base_create

    base = knowledge_base_create(owner=owner, name=f"{model} {tag}", embedding_model=model)
    started = time.perf_counter()
    document = document_upload(
        knowledge_base=base, upload=SimpleUploadedFile("handbook.pdf", data), user=owner
    )
    row = Document.objects.filter(pk=document.pk)
    _wait_until(
        lambda: row.filter(status__in=[DocumentStatus.READY, DocumentStatus.FAILED]).exists(),
        timeout=600,
        every=0.01,
        what="the PDF to be indexed",
    )
    elapsed = time.perf_counter() - started
    document.refresh_from_db()
    if document.status != DocumentStatus.READY:
        raise RuntimeError(f"the PDF failed: {document.error}")
    pages = len(set(document.chunks.values_list("page", flat=True)))
    return elapsed, document.chunk_count, pages


def _pypdf_alone(data: bytes) -> float:
    from pypdf import PdfReader

    started = time.perf_counter()
    reader = PdfReader(io.BytesIO(data))
    text = [page.extract_text() for page in reader.pages]
    assert len(text) == PAGES and all(text)
    return time.perf_counter() - started


def main() -> list[dict]:
    import logging

    from bench._fake_openai import fake_openai

    logging.getLogger("httpx").setLevel(logging.WARNING)
    with (
        tempfile.TemporaryDirectory(prefix="bench-media-") as media,
        dedicated_database(prefix="benchragpdf") as url,
        fake_openai() as (base_url, _server),
    ):
        env = {"MEDIA_ROOT": media, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench"}
        setup_django(url, **env)
        from django.contrib.auth import get_user_model

        owner = get_user_model().objects.create_user("owner", is_staff=True)
        rng = random.Random(100)
        workers = Workers(url, 1, env)
        seconds: dict[str, list[float]] = {m: [] for m in MODELS}
        parse: list[float] = []
        try:
            for model in MODELS:  # warm-up: imports, the parser's fork server, the first connection
                _to_ready(owner, model=model, data=pdf_bytes(rng, 2), tag="warm")
            for round_number in range(ROUNDS):
                data = pdf_bytes(rng)  # new content each round (a base refuses a duplicate anyway)
                for model in MODELS if round_number % 2 == 0 else reversed(MODELS):
                    elapsed, chunks, pages = _to_ready(owner, model=model, data=data, tag=f"r{round_number}")
                    seconds[model].append(elapsed)
                parse.append(_pypdf_alone(data))
        finally:
            workers.stop()
        size_kb = len(data) / 1024
    load = os.getloadavg()[0]
    rows = []
    for model in MODELS:
        rows.append(
            {
                "100-page PDF": f"{size_kb:.0f} KB, {chunks} chunks from {pages} pages",
                "embedder": "offline local (64 d)" if model == "local" else "fake OpenAI server (512 d)",
                "upload -> ready, s (median)": f"{statistics.median(seconds[model]):.2f}",
                "rounds s": " / ".join(f"{v:.2f}" for v in seconds[model]),
                "peer: pypdf text extraction alone, s (median)": f"{statistics.median(parse):.2f}",
                "load 1 min": f"{load:.1f}",
            }
        )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
