"""Ingest one document: extract, chunk, embed, then swap its chunks in atomically.

Called by the ``rag.ingest`` runtime job (``rag/jobs.py``) in a worker thread.
Steps, each stage written as soon as it starts so the document list shows it live:

1. Load the document, only if this run is still the one that owns it
   (``ingest_run_id``): a cancelled, retried or deleted document is left alone.
2. ``extracting``: text out of the stored file (``rag/extract.py``), in a child process with
   a time and a memory limit (``rag/contain.py``).
3. ``chunking``: token-aware chunks that keep page and heading (``rag/chunking.py``).
4. ``embedding``: vectors in batches of ``RAG_EMBED_BATCH``, progress after each batch;
   no transaction is open during these calls.
5. One transaction: lock the row (still owned by this run?), delete the document's old
   chunks, insert the new ones, mark it ``ready``. A worker killed before this commit
   leaves the old chunks (or none) and the retried run does the work again: never duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rag.chunking import chunk_sections
from rag.contain import extract_contained
from rag.embeddings import get_embedder
from rag.models import Chunk, Document, DocumentStatus

logger = logging.getLogger(__name__)


class Superseded(Exception):
    """This run no longer owns the document (cancelled, deleted or re-queued)."""


def _set(document: Document, run_id: str, **fields: object) -> None:
    updated = Document.objects.filter(pk=document.pk, ingest_run_id=run_id).update(
        updated_at=timezone.now(), **fields
    )
    if not updated:
        raise Superseded()


def ingest_document(
    *, document_id: str, run_id: str, should_stop: Callable[[], bool] = lambda: False
) -> dict:
    document = (
        Document.objects.select_related("knowledge_base")
        .filter(public_id=document_id, ingest_run_id=run_id)
        .first()
    )
    if document is None:
        return {"document": document_id, "outcome": "skipped"}
    base = document.knowledge_base
    try:
        _set(document, run_id, status=DocumentStatus.EXTRACTING, progress=0.0, error="")
        sections = extract_contained(
            kind=document.kind,
            name=document.name,
            open_file=lambda: document.file.storage.open(document.file.name, "rb"),
        )
        _set(document, run_id, status=DocumentStatus.CHUNKING, progress=0.0)
        drafts = chunk_sections(sections, size=base.chunk_size, overlap=base.chunk_overlap)
        _set(document, run_id, status=DocumentStatus.EMBEDDING, progress=0.0)
        embedder = get_embedder(base.embedding_model)
        vectors: list[list[float]] = []
        batch = max(1, settings.RAG_EMBED_BATCH)
        for start in range(0, len(drafts), batch):
            if should_stop():
                raise Superseded()
            vectors.extend(embedder.embed([d.embedding_text() for d in drafts[start : start + batch]]))
            _set(document, run_id, progress=round(len(vectors) / len(drafts), 3))
        with transaction.atomic():
            owned = Document.objects.select_for_update().filter(pk=document.pk, ingest_run_id=run_id).exists()
            if not owned:
                raise Superseded()
            Chunk.objects.filter(document=document).delete()
            Chunk.objects.bulk_create(
                [
                    Chunk(
                        document=document,
                        knowledge_base=base,
                        embedding_model=base.embedding_model,
                        ordinal=draft.ordinal,
                        text=draft.text,
                        page=draft.page,
                        section=draft.section,
                        char_start=draft.char_start,
                        char_end=draft.char_end,
                        token_count=draft.token_count,
                        embedding=vector,
                    )
                    for draft, vector in zip(drafts, vectors, strict=True)
                ],
                batch_size=500,
            )
            _set(
                document,
                run_id,
                status=DocumentStatus.READY,
                progress=1.0,
                chunk_count=len(drafts),
                ready_at=timezone.now(),
            )
    except Superseded:
        return {"document": document_id, "outcome": "superseded"}
    return {"document": document_id, "outcome": "ready", "chunks": len(drafts)}


def mark_failed(*, document_id: str, run_id: str, reason: str) -> None:
    Document.objects.filter(public_id=document_id, ingest_run_id=run_id).update(
        status=DocumentStatus.FAILED, error=reason[:2000], updated_at=timezone.now()
    )


def mark_retrying(*, document_id: str, run_id: str, reason: str) -> None:
    Document.objects.filter(public_id=document_id, ingest_run_id=run_id).update(
        status=DocumentStatus.STORED, progress=0.0, error=reason[:2000], updated_at=timezone.now()
    )
