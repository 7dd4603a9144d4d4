"""A worker killed with SIGKILL in the middle of embedding a document: another worker resumes
the ingestion run and the document ends ready with each chunk exactly once."""

from __future__ import annotations

import signal

import pytest

from rag.models import Chunk, Document, DocumentStatus
from rag.services import document_upload, knowledge_base_create
from runtime.models import AgentRun
from tests.processes import WorkerProcess, wait_until
from tests.rag import files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TTL = 2


def test_kill_9_mid_embedding_resumes_without_duplicate_chunks(owner, tmp_path):
    base = knowledge_base_create(
        owner=owner, name="Big", embedding_model="gated", chunk_size=32, chunk_overlap=0
    )
    text = "\n".join(f"Paragraph {n} talks about topic {n} at some length, then stops." for n in range(60))
    document = document_upload(knowledge_base=base, upload=files.upload("big.txt", text), user=owner)
    env = {"AGENT_LEASE_TTL_SECONDS": str(TTL), "RAG_EMBED_BATCH": "4", "RAG_GATE_DIR": str(tmp_path)}
    first = WorkerProcess("--concurrency", "1", **env).start()
    second = None
    try:
        wait_until((tmp_path / "started").exists, timeout=60, what="embedding to reach its second batch")
        held = Document.objects.get(pk=document.pk)
        assert held.status == DocumentStatus.EMBEDDING and 0 < held.progress < 1
        assert not Chunk.objects.filter(document=document).exists()

        first.signal(signal.SIGKILL)
        (tmp_path / "release").write_text("go")
        second = WorkerProcess("--concurrency", "1", **env).start()
        wait_until(
            lambda: Document.objects.get(pk=document.pk).status == DocumentStatus.READY,
            timeout=60,
            what="another worker to finish the document",
        )
    finally:
        first.stop()
        if second:
            log = second.stop()
    document.refresh_from_db()
    ordinals = list(
        Chunk.objects.filter(document=document).order_by("ordinal").values_list("ordinal", flat=True)
    )
    assert ordinals == list(range(document.chunk_count)) and document.chunk_count > 8, log
    run = AgentRun.objects.get(pk=document.ingest_run_id)
    assert run.status == "succeeded" and run.attempt == 2
