"""A parser runs in a child process under a time and a memory limit: a file that would hang or
exhaust the worker fails alone, with a readable reason, and the next document indexes as usual."""

from __future__ import annotations

import time

import pytest

from rag.models import DocumentStatus
from rag.services import document_upload
from tests.rag import files
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db

# About 18 MB of nested HTML: BeautifulSoup needs tens of seconds and more than 1 GB for it.
HEAVY_HTML = "<html><body>" + "<div><p>word <b>bold</b> <i>it</i></p></div>" * 400_000 + "</body></html>"


def test_a_parser_that_runs_too_long_is_stopped(base, owner, settings):
    settings.RAG_PARSE_TIMEOUT = 1
    started = time.monotonic()
    document = ingest(
        document_upload(knowledge_base=base, upload=files.upload("heavy.html", HEAVY_HTML), user=owner)
    )
    assert time.monotonic() - started < 15  # stopped at the limit, not when the parse would end
    assert document.status == DocumentStatus.FAILED
    assert document.error.startswith("heavy.html: reading the file took longer than 1 seconds")


def test_a_parser_that_needs_too_much_memory_is_stopped(base, owner, settings):
    settings.RAG_PARSE_MEMORY_MB = 64
    big = ingest(
        document_upload(knowledge_base=base, upload=files.upload("big.txt", "word " * 3_000_000), user=owner)
    )
    assert big.status == DocumentStatus.FAILED
    assert big.error.startswith("big.txt: reading the file needed more than 64 MB of memory")

    settings.RAG_PARSE_MEMORY_MB = 1024
    small = ingest(
        document_upload(
            knowledge_base=base, upload=files.upload("small.txt", "Refunds take 14 days."), user=owner
        )
    )
    assert small.status == DocumentStatus.READY and small.chunk_count == 1
