from __future__ import annotations

import pytest

from rag.jobs import ingest_for_run
from rag.models import Document
from rag.services import knowledge_base_create


@pytest.fixture(autouse=True)
def _fresh_common_words():
    """Each test's database has its own statistics; a process keeps them for minutes otherwise."""
    from rag.search import forget_common_words

    forget_common_words()


@pytest.fixture
def base(owner):
    return knowledge_base_create(owner=owner, name="Handbook", chunk_size=60, chunk_overlap=10)


def ingest(document: Document) -> Document:
    """Run the ingestion job's work in this process (workers run the same function)."""
    ingest_for_run(document_id=str(document.public_id), run_id=str(document.ingest_run_id))
    return Document.objects.get(pk=document.pk)
