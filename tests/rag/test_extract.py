"""Every supported format, built by the tests, goes through upload -> ingest -> ready with its structure."""

from __future__ import annotations

import json

import pytest

from rag.models import Chunk, DocumentStatus
from rag.services import document_upload
from tests.rag import files
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db


def _ready(base, owner, name, content):
    document = document_upload(knowledge_base=base, upload=files.upload(name, content), user=owner)
    document = ingest(document)
    assert document.status == DocumentStatus.READY, document.error
    chunks = list(Chunk.objects.filter(document=document).order_by("ordinal"))
    return document, chunks, "\n".join(c.text for c in chunks)


def test_plain_text(base, owner):
    document, chunks, text = _ready(base, owner, "notes.txt", "The office opens at nine.\n")
    assert document.kind == "txt" and "opens at nine" in text


def test_markdown_keeps_headings(base, owner):
    _, chunks, _ = _ready(
        base, owner, "guide.md", "# Intro\nWelcome.\n\n## Billing\nInvoices go out monthly.\n"
    )
    billing = next(c for c in chunks if "Invoices" in c.text)
    assert billing.section == "Billing"


def test_csv_rows_keep_their_column_names(base, owner):
    _, _, text = _ready(base, owner, "stock.csv", "item,count\nbolts,40\nnuts,12\n")
    assert "item: bolts; count: 40" in text


def test_json_flattened_to_paths(base, owner):
    _, _, text = _ready(base, owner, "cfg.json", json.dumps({"shop": {"hours": "9-5", "tags": ["a"]}}))
    assert "shop.hours: 9-5" in text and "shop.tags[0]: a" in text


def test_html_drops_scripts_and_keeps_headings(base, owner):
    html = "<html><head><script>alert(1)</script></head><body><h1>Returns</h1><p>Within 30 days.</p></body></html>"
    _, chunks, text = _ready(base, owner, "page.html", html)
    assert "alert" not in text and chunks[0].section == "Returns" and "Within 30 days." in text


def test_pdf_pages(base, owner):
    _, chunks, _ = _ready(base, owner, "manual.pdf", files.pdf_bytes(["First page text", "Second page text"]))
    assert [(c.page, "page text" in c.text) for c in chunks] == [(1, True), (2, True)]


def test_docx_headings_and_tables(base, owner):
    _, chunks, text = _ready(base, owner, "policy.docx", files.docx_bytes())
    refund = next(c for c in chunks if "full refund" in c.text)
    assert refund.section == "Refund policy" and "Europe | 3" in text


def test_xlsx_rows_per_sheet(base, owner):
    document, chunks, text = _ready(base, owner, "prices.xlsx", files.xlsx_bytes())
    assert document.kind == "xlsx" and "Widget | 9.5" in text and chunks[0].section == "Sheet Prices"


def test_pptx_slides_are_pages(base, owner):
    _, chunks, _ = _ready(base, owner, "deck.pptx", files.pptx_bytes())
    assert [(c.page, c.section) for c in chunks] == [(1, "Quarterly results"), (2, "Outlook")]


def test_offsets_point_into_the_extracted_text(base, owner):
    body = "alpha beta gamma. " * 200
    _, chunks, _ = _ready(base, owner, "long.txt", body)
    assert len(chunks) > 3
    for chunk in chunks:
        assert body[chunk.char_start : chunk.char_end] == chunk.text
    assert all(c.token_count <= 60 for c in chunks)
