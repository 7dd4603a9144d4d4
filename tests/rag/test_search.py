"""Hybrid search finds the right document on a small labelled set, filtered to the given bases."""

from __future__ import annotations

import pytest

from rag.models import Document
from rag.search import search
from rag.services import document_upload, knowledge_base_create
from tests.rag import files
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db

DOCS = {
    "refunds.md": "# Refunds\nCustomers can return any product within 30 days and receive a full refund to their card.",
    "shipping.md": "# Shipping\nOrders ship from our Rotterdam warehouse. Delivery to Germany takes two business days.",
    "security.md": "# Passwords\nStaff must rotate passwords every ninety days and use a hardware security key.",
    "holidays.md": "# Holidays\nThe office closes between Christmas and New Year; support answers email only.",
    "pricing.md": "# Pricing\nThe premium plan costs 49 euros per month, billed yearly, with a discount for charities.",
}
QUESTIONS = [
    ("How many days do I have to return a product for a refund?", "refunds.md"),
    ("How long does delivery to Germany take?", "shipping.md"),
    ("How often should staff rotate their passwords?", "security.md"),
    ("Is the office open at Christmas?", "holidays.md"),
    ("What does the premium plan cost per month?", "pricing.md"),
]


@pytest.fixture
def labelled(owner):
    base = knowledge_base_create(owner=owner, name="Company")
    for name, text in DOCS.items():
        ingest(document_upload(knowledge_base=base, upload=files.upload(name, text), user=owner))
    return base


def test_each_question_finds_its_document_first(labelled):
    found = [search(knowledge_bases=[labelled], query=q, top_k=3).hits[0].document_name for q, _ in QUESTIONS]
    assert found == [expected for _, expected in QUESTIONS]


def test_hits_carry_both_scores_and_fused_order(labelled):
    result = search(knowledge_bases=[labelled], query="refund within 30 days", top_k=5)
    top = result.hits[0]
    assert top.vector_score is not None and top.text_score is not None
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert result.elapsed_ms >= 0


def test_other_knowledge_bases_are_not_searched(labelled, owner):
    other = knowledge_base_create(owner=owner, name="Other")
    ingest(
        document_upload(knowledge_base=other, upload=files.upload("x.md", "refund refund refund"), user=owner)
    )
    hits = search(knowledge_bases=[other], query="refund", top_k=10).hits
    assert {h.document_name for h in hits} == {"x.md"}


def test_a_question_of_only_stop_words_still_uses_vectors(labelled):
    assert search(knowledge_bases=[labelled], query="what is it", top_k=2).hits


def test_offline_local_model_search(owner):
    base = knowledge_base_create(owner=owner, name="Local", embedding_model="local")
    for name, text in DOCS.items():
        ingest(document_upload(knowledge_base=base, upload=files.upload(name, text), user=owner))
    found = [search(knowledge_bases=[base], query=q, top_k=1).hits[0].document_name for q, _ in QUESTIONS]
    recall = sum(f == e for f, (_, e) in zip(found, QUESTIONS, strict=True)) / len(QUESTIONS)
    assert recall >= 0.8, found


def test_words_most_passages_contain_do_not_hide_the_distinctive_one(owner, monkeypatch):
    """In a large base, a question's common word would match nearly every passage, and only the
    first ``TEXT_SCAN`` matches are ranked; leaving the common word out of the text half finds the
    passage with the distinctive word wherever it is."""
    from django.db import connection

    from rag import search as search_module

    base = knowledge_base_create(owner=owner, name="Policies", chunk_size=32, chunk_overlap=0)
    filler = "parts labour travel and a replacement unit while yours is away, at no cost to you"
    lines = [f"Our policy covers appliance model {n} for two years: {filler}." for n in range(60)]
    lines.append("The policy on refunds: money back within thirty days.")
    document = ingest(
        document_upload(knowledge_base=base, upload=files.upload("p.txt", "\n\n".join(lines)), user=owner)
    )
    assert document.chunk_count >= 61
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rag_chunk")  # the statistics that say which words are common
    search_module.forget_common_words()  # a process reads them every few minutes; now, here
    monkeypatch.setattr(search_module, "TEXT_SCAN", 5)
    monkeypatch.setattr(search_module, "COMMON_WORDS_FROM", 10)

    def refunds_text_score(share: float) -> float | None:
        monkeypatch.setattr(search_module, "COMMON_WORD_SHARE", share)
        hits = search(knowledge_bases=[base], query="policy refunds", top_k=70, candidates=70).hits
        return next(h.text_score for h in hits if "refunds" in h.text)

    assert refunds_text_score(0.05) is not None
    assert refunds_text_score(1.1) is None  # every word kept: the five ranked matches are others

    # a question made only of common words still searches text (with its rarest word)
    monkeypatch.setattr(search_module, "COMMON_WORD_SHARE", 0.05)
    assert any(h.text_score is not None for h in search(knowledge_bases=[base], query="policy", top_k=5).hits)


@pytest.mark.parametrize("model", ["local", "hash", "openai-small"])
def test_the_vector_half_can_use_the_models_hnsw_index(owner, model):
    """The statement orders by the expression the model's partial HNSW index is built on
    (``embedding::halfvec(<dims>)``, migration 0004): with a cast that differs from the index's,
    every search would scan the whole table. Sequential scans are priced out so the plan shows
    whether the index *can* serve the statement, whatever the table's size."""
    from django.db import connection, transaction

    from rag.embeddings import model_config
    from rag.search import search_statement

    base = knowledge_base_create(owner=owner, name="Planned", embedding_model=model)
    dims = int(model_config(model)["dimensions"])
    sql, params = search_statement(
        model=model,
        dimensions=dims,
        vector=[1.0] * dims,
        base_ids=[base.pk],
        query="refund",
        top_k=5,
        candidates=40,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Scan using rag_chunk_hnsw_half_{model.replace('-', '_')}" in plan, plan


def test_the_text_half_finds_the_bases_chunks_in_one_index(owner):
    """The full-text index holds each chunk's knowledge base as a lexeme (migration 0005), so the
    text half asks one index for (a word of the question AND one of the searched bases). Before,
    the plan either combined the word index with a bitmap of every chunk of the base (3.9 ms for a
    base of 100,000) or read every matching chunk of every base and filtered the rows."""
    from django.db import connection, transaction

    from rag.search import search_statement

    base = knowledge_base_create(owner=owner, name="Planned")
    other = knowledge_base_create(owner=owner, name="Larger")
    with connection.cursor() as cursor:  # 4,000 chunks, a word in 1% of them, as statistics
        for kb, count in ((other, 3_600), (base, 400)):
            document = Document.objects.create(
                knowledge_base=kb, name="bulk.txt", kind="txt", size=1, sha256=f"{kb.pk:064d}", status="ready"
            )
            cursor.execute(
                "INSERT INTO rag_chunk (document_id, knowledge_base_id, embedding_model, ordinal, text, "
                "section, char_start, char_end, token_count, embedding) "
                "SELECT %s, %s, 'local', i, 'passage ' || i || CASE WHEN i %% 100 = 0 THEN ' refund' ELSE '' END, "
                "'', 0, 10, 2, array_fill(0.1 + i %% 7, ARRAY[64])::vector FROM generate_series(1, %s) i",
                [document.pk, kb.pk, count],
            )
        cursor.execute("ANALYZE rag_chunk")
    sql, params = search_statement(
        model="local",
        dimensions=64,
        vector=[1.0] * 64,
        base_ids=[base.pk],
        query="refund",
        top_k=5,
        candidates=40,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on rag_chunk_search_kb_gin" in plan, plan
    assert "BitmapAnd" not in plan and "rag_chunk_knowledge_base_id" not in plan, plan


def test_a_base_lexeme_never_matches_a_word_of_a_text(owner):
    """A passage that spells out "kb 1" is found by its words, never by the lexeme of base 1."""
    base = knowledge_base_create(owner=owner, name="Spelled")
    ingest(
        document_upload(
            knowledge_base=base,
            upload=files.upload("kb.md", f"The kb {base.pk} article lists kb codes."),
            user=owner,
        )
    )
    other = knowledge_base_create(owner=owner, name="Empty of that")
    ingest(document_upload(knowledge_base=other, upload=files.upload("o.md", "Opening hours."), user=owner))
    hits = search(knowledge_bases=[other], query=f"kb {base.pk}", top_k=5).hits
    assert all(h.text_score is None for h in hits)
    assert any(h.text_score for h in search(knowledge_bases=[base], query="kb codes", top_k=5).hits)


def test_the_common_words_are_read_once_per_process_not_per_search(labelled, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from rag import search as search_module

    with CaptureQueriesContext(connection) as queries:
        for question, _ in QUESTIONS:
            search(knowledge_bases=[labelled], query=question, top_k=3)
    assert sum("pg_stats" in q["sql"] for q in queries.captured_queries) == 1
    monkeypatch.setattr(search_module, "COMMON_WORDS_TTL", 0.0)  # older than the time to keep them
    with CaptureQueriesContext(connection) as queries:
        search(knowledge_bases=[labelled], query="refund", top_k=3)
    assert sum("pg_stats" in q["sql"] for q in queries.captured_queries) == 1


def test_new_chunks_wait_in_a_short_pending_list():
    """Every text search reads the GIN index's pending list (rows not yet merged into the index);
    PostgreSQL's default 4 MB let it reach 400-500 pages during an ingestion, +2.6 ms a search."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'rag_chunk_search_kb_gin'")
        assert "gin_pending_list_limit=256" in cursor.fetchone()[0]
