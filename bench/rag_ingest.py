"""Knowledge ingestion end to end: chunks per second from upload to ready, through ``runagent`` workers.

Method: a throw-away database, a temporary ``MEDIA_ROOT``, 1 then 2 ``manage.py runagent``
processes (default concurrency), and the local fake OpenAI server (bench/_fake_openai.py) in its
own process on 127.0.0.1, answering ``/v1/embeddings`` a whole batch per request. A round
uploads ``DOCS`` text documents (``document_upload``, the service the builder and the API call:
hash, sniff, store, create the ingestion run) into a fresh knowledge base with the default
passage settings (300 tokens, 40 overlap) and times from the first upload to the last document
``ready`` (extraction in the contained parser process, chunking, embedding in batches of
``RAG_EMBED_BATCH``, the atomic swap of the chunks). Embedders: the offline ``local`` model
(64 dimensions, in the worker) and ``openai-small`` (512 dimensions, the openai SDK against
the fake server).

Peers, measured after each round on the same data: the embedder alone in this process
(``embed`` in batches of ``RAG_EMBED_BATCH``, one after another, on two documents' passages),
and a plain bulk insert of the round's rows, ``INSERT ... SELECT`` inside the database in one
transaction, into ``rag_chunk`` (so its HNSW and GIN indexes are maintained as in ingestion)
and into a temporary copy of the table without the HNSW indexes (what the vector index costs).
Target: >= 1,000 chunks/s with the fake server and 2 workers.

    python -m bench rag_ingest   (BENCH_RAG_INGEST_DOCS documents of ~BENCH_RAG_INGEST_CHUNKS
                                  chunks per round, default 4 x 400; BENCH_RAG_INGEST_ROUNDS, 2)
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from bench._sse import env_int
from bench.common import PROJECT_ROOT, PYTHON, dedicated_database, django_env, setup_django, stop_process
from bench.common import wait_until as _wait_until

TIME_LIMIT = 1200  # seconds for `python -m bench` (6 minutes at load 12)

DOCS = env_int("BENCH_RAG_INGEST_DOCS", 4)
CHUNKS_PER_DOC = env_int("BENCH_RAG_INGEST_CHUNKS", 400)
ROUNDS = env_int("BENCH_RAG_INGEST_ROUNDS", 2)
MODELS = ("local", "openai-small")
TARGET = 1_000.0
# Words and sentences as in rag_search: a Zipf-distributed made-up vocabulary, 30-60 words each.
VOCABULARY = [
    "".join(random.Random(i * 31 + k).choice("bcdfghklmnprstvz") + "aeiou"[(i + k) % 5] for k in range(3))
    + str(i)
    for i in range(20_000)
]
CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(VOCABULARY))))


def document_text(rng: random.Random, chunks: int) -> str:
    """About ``chunks`` passages of 300 tokens (sentences of 30-60 words and a full stop)."""
    words = rng.choices(VOCABULARY, cum_weights=CUMULATIVE, k=chunks * 250)  # 300-token windows, 40 overlap
    lines, start = [], 0
    while start < len(words):
        end = start + rng.randint(30, 60)
        lines.append(" ".join(words[start:end]) + ".")
        start = end
    return "\n".join(lines)


class Workers:
    """``count`` runagent processes on the benchmark database, started once per worker count."""

    def __init__(self, url: str, count: int, env: dict[str, str]) -> None:
        self.processes = [
            subprocess.Popen(
                [PYTHON, "manage.py", "runagent", "--noreload"],
                cwd=PROJECT_ROOT,
                env=django_env(url, LOG_LEVEL="WARNING", **env),
            )
            for _ in range(count)
        ]

    def each_alone(self) -> Iterator[None]:
        """Yield once per worker with the others paused (SIGSTOP), so what the caller queues then
        is claimed by that worker: a warm-up reaches every worker, not whichever wakes first."""
        for chosen in self.processes:
            others = [p for p in self.processes if p is not chosen]
            for process in others:
                process.send_signal(signal.SIGSTOP)
            try:
                yield
            finally:
                for process in others:
                    process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)


def _upload_round(owner, *, model: str, texts: list[str], tag: str) -> tuple[float, int, object]:
    """Upload ``texts`` as documents of a new base; seconds until every one is ready, and chunks."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rag.models import Document, DocumentStatus
    from rag.services import document_upload, knowledge_base_create

    base = knowledge_base_create(owner=owner, name=f"{model} {tag}", embedding_model=model)
    started = time.perf_counter()
    for number, text in enumerate(texts):
        document_upload(
            knowledge_base=base, upload=SimpleUploadedFile(f"doc{number}.txt", text.encode()), user=owner
        )
    documents = Document.objects.filter(knowledge_base=base)
    _wait_until(
        lambda: not documents.exclude(status__in=[DocumentStatus.READY, DocumentStatus.FAILED]).exists(),
        timeout=600,
        every=0.01,
        what=f"{len(texts)} documents to be indexed",
    )
    elapsed = time.perf_counter() - started
    failed = list(documents.filter(status=DocumentStatus.FAILED).values_list("name", "error"))
    if failed:
        raise RuntimeError(f"ingestion failed: {failed[:3]}")
    chunks = sum(documents.values_list("chunk_count", flat=True))
    return elapsed, chunks, base


def _peer_embed(model: str, texts: list[str]) -> float:
    """Chunk texts per second through the embedder alone, in this process."""
    from django.conf import settings

    from rag.embeddings import get_embedder

    embedder = get_embedder(model)
    batch = settings.RAG_EMBED_BATCH
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        embedder.embed(texts[start : start + batch])
    return len(texts) / (time.perf_counter() - started)


_COLUMNS = (
    "knowledge_base_id, embedding_model, text, page, section, char_start, char_end, token_count, embedding"
)


def _peer_insert(base) -> tuple[float, float]:
    """Rows per second of a plain bulk insert of the round's rows (``INSERT ... SELECT`` in the
    database, one transaction, no Python): into ``rag_chunk`` with all its indexes (as a new
    document), and into a copy of the table without the HNSW indexes."""
    from django.db import connection, transaction

    from rag.models import Chunk, Document

    count = Chunk.objects.filter(knowledge_base=base).count()
    document = Document.objects.create(
        knowledge_base=base, name="peer.txt", kind="txt", size=1, sha256=f"peer{base.pk:060d}", status="ready"
    )
    figures = []
    for target in ("rag_chunk", "bench_chunk_no_hnsw"):
        with transaction.atomic(), connection.cursor() as cursor:
            if target != "rag_chunk":
                # the same columns, constraints and indexes (GIN, b-trees) but the vector ones
                cursor.execute("DROP TABLE IF EXISTS bench_chunk_no_hnsw")
                cursor.execute("CREATE TEMPORARY TABLE bench_chunk_no_hnsw (LIKE rag_chunk INCLUDING ALL)")
                cursor.execute(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'bench_chunk_no_hnsw' "
                    "AND indexdef LIKE '%%USING hnsw%%'"
                )
                for (name,) in cursor.fetchall():
                    cursor.execute(f'DROP INDEX "{name}"')
            started = time.perf_counter()
            cursor.execute(
                f"INSERT INTO {target} (document_id, ordinal, {_COLUMNS}) "
                f"SELECT %s, row_number() OVER (), {_COLUMNS} FROM rag_chunk "
                "WHERE knowledge_base_id = %s AND document_id <> %s",
                [document.pk, base.pk, document.pk],
            )
            figures.append(count / (time.perf_counter() - started))
    return figures[0], figures[1]


def main() -> list[dict]:
    import logging

    from bench._fake_openai import fake_openai

    logging.getLogger("httpx").setLevel(logging.WARNING)
    rows: list[dict] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-media-") as media,
        dedicated_database(prefix="benchingest") as url,
        fake_openai() as (base_url, _server),
    ):
        env = {"MEDIA_ROOT": media, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench"}
        setup_django(url, **env)
        from django.contrib.auth import get_user_model

        from rag.chunking import chunk_sections
        from rag.extract import Section

        owner = get_user_model().objects.create_user("owner", is_staff=True)
        rng = random.Random(12)
        for count in (1, 2):
            workers = Workers(url, count, env)
            try:
                # warm-up of every worker: its imports, the parser's fork server, the SDK's first
                # connection (a second worker left cold paid these inside the first measured round)
                for number, _ in enumerate(workers.each_alone()):
                    for model in MODELS:
                        _upload_round(
                            owner, model=model, texts=[document_text(rng, 20)], tag=f"warm {count}.{number}"
                        )
                figures: dict[str, dict[str, list[float]]] = {
                    m: {"engine": [], "embed": [], "insert": [], "no_hnsw": [], "seconds": [], "chunks": []}
                    for m in MODELS
                }
                for round_number in range(ROUNDS):
                    for model in MODELS:
                        texts = [document_text(rng, CHUNKS_PER_DOC) for _ in range(DOCS)]
                        seconds, chunks, base = _upload_round(
                            owner, model=model, texts=texts, tag=f"{count}w r{round_number}"
                        )
                        figure = figures[model]
                        figure["engine"].append(chunks / seconds)
                        figure["seconds"].append(seconds)
                        figure["chunks"].append(chunks)
                        passages = [
                            draft.embedding_text()
                            for text in texts[:2]
                            for draft in chunk_sections([Section(text=text)], size=300, overlap=40)
                        ]
                        figure["embed"].append(_peer_embed(model, passages))
                        insert, no_hnsw = _peer_insert(base)
                        figure["insert"].append(insert)
                        figure["no_hnsw"].append(no_hnsw)
                        print(
                            f"{count} worker(s), {model}: {chunks / seconds:.0f} chunks/s; embedder alone "
                            f"{figure['embed'][-1]:.0f}/s, bulk insert {insert:.0f} rows/s ({no_hnsw:.0f} without HNSW); "
                            f"load {os.getloadavg()[0]:.1f}",
                            file=sys.stderr,
                            flush=True,
                        )
            finally:
                workers.stop()
            load = os.getloadavg()[0]
            for model in MODELS:
                figure = figures[model]
                engine = statistics.median(figure["engine"])
                rows.append(
                    {
                        "embedder": "offline local (64 d)"
                        if model == "local"
                        else "fake OpenAI server (512 d)",
                        "runagent processes": count,
                        "chunks per round": f"{int(statistics.median(figure['chunks'])):,} in {DOCS} docs",
                        "upload -> ready, chunks/s (median of rounds)": f"{engine:,.0f}",
                        "rounds chunks/s": " / ".join(f"{v:,.0f}" for v in figure["engine"]),
                        "peer: embedder alone, chunks/s": f"{statistics.median(figure['embed']):,.0f}",
                        "peer: bulk insert of the same rows, rows/s": f"{statistics.median(figure['insert']):,.0f}",
                        "peer: same, table without HNSW index": f"{statistics.median(figure['no_hnsw']):,.0f}",
                        "target": (f">= {TARGET:,.0f}: " + ("met" if engine >= TARGET else "MISSED"))
                        if model == "openai-small" and count == 2
                        else "",
                        "load 1 min": f"{load:.1f}",
                    }
                )
    return rows


if __name__ == "__main__":
    from bench.common import markdown_table

    print(markdown_table(main()))
