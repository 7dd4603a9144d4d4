"""Hybrid search: pgvector cosine (HNSW) and full text (ts_rank), fused by reciprocal rank.

``search(*, knowledge_bases, query, top_k=5, min_score=0.0) -> SearchResult``. Per embedding
model of the given bases, one SQL statement takes the ``candidates`` nearest chunks by
vector and the ``candidates`` best by text (any query word may match: an AND of every
word of a question finds nothing), then fuses them: score = sum of 1 / (60 + rank).
Ranking by text looks at no more than ``TEXT_SCAN`` matching rows, found through one full-text
index that also knows each chunk's knowledge base (migration 0005), and ranks them with
``ts_rank`` (word frequency): ``ts_rank_cd``'s cover density cost about a third of the text half
and only the order of the candidates reaches the fused score.

Words that most passages contain make the text half slow and tell nothing apart: a question
with one such word matches nearly every chunk of a large base, and the index must list them
all before any is ranked. So when the searched bases hold more than ``COMMON_WORDS_FROM``
chunks, the question's words found in more than ``COMMON_WORD_SHARE`` of all chunks (read from
the statistics ``ANALYZE`` keeps for the ``search`` column, ``pg_stats.most_common_elems``, which
each process reads every few minutes: ``common_words()``) are
left out of the text half, unless every word is that common, when the rarest one is kept. The
vector half still reads the whole question. Small bases are searched with every word.
``hnsw.iterative_scan`` lets the index keep scanning when the knowledge-base filter drops
rows, so a filter never empties the result; ``hnsw.ef_search`` is ``EF_SEARCH`` (pgvector's
default of 40 gave recall@10 0.91 in a base that shares its index with as many other chunks).
Both settings and the statement go to the server as one query string (one round trip, one
transaction); the fused ranking is cut to ``top_k`` before the chunks' rows, documents and
bases are read, so only the rows returned are fetched.
The vector half orders by ``embedding::halfvec(<dims>)``, the expression each model's HNSW
index is built on (migration 0004); the ``vector_score`` shown is computed in full precision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.db import connection

from rag.embeddings import get_embedder
from rag.models import TEXT_SEARCH_CONFIG, KnowledgeBase

RRF_K = 60
# The full-text index (migration 0005) is on each chunk's words plus one lexeme naming its
# knowledge base ("kb 17": no word of a text contains a space, so no question matches it by
# chance); a search asks for (any word of the question) AND (one of the searched bases' lexemes).
BASE_LEXEME = "kb "
SEARCH_WITH_BASE = f"(c.search || array_to_tsvector(ARRAY['{BASE_LEXEME}' || c.knowledge_base_id::text]))"
# Full-text ranking reads every matching row; a question made of common words matches most of a
# large base, so at most this many matches are ranked (the vector half still searches them all).
TEXT_SCAN = 500
# candidates the HNSW index reads per search (pgvector's hnsw.ef_search); more raises recall and time
EF_SEARCH = 100
# Above this many chunks in the searched bases, words in more than this share of all chunks
# are left out of the text half (see the module docstring).
COMMON_WORDS_FROM = 10_000
COMMON_WORD_SHARE = 0.05
COMMON_WORDS_TTL = 300.0  # seconds a process keeps the words' shares (common_words())
# pgvector releases with HNSW but without hnsw.iterative_scan (added in 0.8.0)
_BEFORE_ITERATIVE_SCAN = (
    "0.5.0",
    "0.5.1",
    "0.6.0",
    "0.6.1",
    "0.6.2",
    "0.7.0",
    "0.7.1",
    "0.7.2",
    "0.7.3",
    "0.7.4",
)

_SQL = r"""
WITH vec AS (
    SELECT id, dist, row_number() OVER (ORDER BY dist) AS rank FROM (
        SELECT c.id, c.embedding::halfvec({dims}) <=> %(vector)s::halfvec({dims}) AS dist
        FROM rag_chunk c
        WHERE c.embedding_model = {model} AND c.knowledge_base_id = ANY(%(bases)s)
        ORDER BY c.embedding::halfvec({dims}) <=> %(vector)s::halfvec({dims})
        LIMIT %(candidates)s
    ) nearest
),
stats AS MATERIALIZED (  -- the common words (common_words()), for large bases only
    SELECT %(common_words)s::text[] AS words, %(common_shares)s::float4[] AS shares
    WHERE (SELECT COALESCE(sum(chunk_count), 0) FROM rag_document
           WHERE knowledge_base_id = ANY(%(bases)s)) > %(common_from)s
),
words AS (
    SELECT word, COALESCE((SELECT s.shares[array_position(s.words, word)] FROM stats s), 0) AS share
    FROM unnest(tsvector_to_array(to_tsvector('{config}', %(text)s))) AS word
),
q AS (
    -- each word quoted as a tsquery operand: backslash and quote doubled inside single quotes
    SELECT string_agg('''' || replace(replace(word, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery AS query
    FROM words
    WHERE share <= %(common_share)s OR share = (SELECT min(share) FROM words)
),
txt AS (
    SELECT id, text_rank, row_number() OVER (ORDER BY text_rank DESC) AS rank FROM (
        SELECT m.id, ts_rank(m.search, q.query) AS text_rank
        FROM (
            -- the index holds each chunk's words and its base's lexeme: the base filter is part of
            -- the index search, not a second index read or a heap filter (`+ 0`: never that index)
            SELECT c.id, c.search FROM rag_chunk c, q
            WHERE q.query IS NOT NULL AND {search_with_base} @@ (q.query && %(base_lexemes)s::tsquery)
              AND c.embedding_model = {model} AND c.knowledge_base_id + 0 = ANY(%(bases)s)
            LIMIT %(text_scan)s
        ) m, q
        ORDER BY text_rank DESC
        LIMIT %(candidates)s
    ) best
),
fused AS (
    -- ranked and cut to top_k before the chunks' rows are read: only those are fetched
    SELECT COALESCE(vec.id, txt.id) AS id, txt.text_rank,
           COALESCE(1.0 / ({rrf} + vec.rank), 0) + COALESCE(1.0 / ({rrf} + txt.rank), 0) AS score
    FROM vec FULL OUTER JOIN txt ON txt.id = vec.id
    ORDER BY score DESC, id
    LIMIT %(top_k)s
)
SELECT c.id, c.ordinal, c.text, c.page, c.section, c.char_start, c.char_end,
       d.public_id, d.name, kb.public_id, kb.name,
       -- every hit's similarity, found by text alone too: a score threshold applies to all of them
       1 - (c.embedding::vector({dims}) <=> %(vector)s::vector({dims})) AS vector_score,
       fused.text_rank AS text_score,
       fused.score
FROM fused
JOIN rag_chunk c ON c.id = fused.id
JOIN rag_document d ON d.id = c.document_id
JOIN rag_knowledgebase kb ON kb.id = c.knowledge_base_id
ORDER BY fused.score DESC, c.id
"""


@dataclass
class Hit:
    chunk_id: int
    ordinal: int
    text: str
    page: int | None
    section: str
    char_start: int
    char_end: int
    document_id: str
    document_name: str
    knowledge_base_id: str
    knowledge_base_name: str
    vector_score: float | None
    text_score: float | None
    score: float

    def citation(self) -> dict:
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "document": self.document_name,
            "knowledge_base_id": self.knowledge_base_id,
            "ordinal": self.ordinal,
            "page": self.page,
            "section": self.section,
            "score": round(self.score, 5),
            "vector_score": None if self.vector_score is None else round(self.vector_score, 4),
            "text_score": None if self.text_score is None else round(self.text_score, 4),
        }


@dataclass
class SearchResult:
    hits: list[Hit] = field(default_factory=list)
    elapsed_ms: float = 0.0


# Django's psycopg cursors bind parameters client-side, so several statements can go in one
# execute. pgvector before 0.8 has no iterative scan: there the filter may return fewer rows.
_SETTINGS = """SELECT set_config('hnsw.ef_search', %(ef_search)s, true);
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true) FROM pg_extension
WHERE extname = 'vector' AND extversion <> ALL(%(before_iterative_scan)s);
"""


_COMMON_WORDS_SQL = """
SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats
WHERE schemaname = current_schema() AND tablename = 'rag_chunk' AND attname = 'search'
"""
_common_words: tuple[float, dict[str, float]] | None = None


def common_words() -> dict[str, float]:
    """The words ``ANALYZE`` found most often in chunks, with the share of chunks holding each.

    Read from ``pg_stats`` at most every ``COMMON_WORDS_TTL`` seconds per process, not with every
    search: the statistics change only when the table is analysed (autovacuum does it after a
    tenth of the rows changed), and reading the view cost about 1.2 ms of each 8 ms search.
    """
    global _common_words
    now = time.monotonic()
    if _common_words is None or now - _common_words[0] > COMMON_WORDS_TTL:
        with connection.cursor() as cursor:
            cursor.execute(_COMMON_WORDS_SQL)
            row = cursor.fetchone()
        # the share list ends with three summary figures: zip stops at the last word
        _common_words = (now, dict(zip(row[0], row[1], strict=False)) if row and row[0] else {})
    return _common_words[1]


def forget_common_words() -> None:
    """Read the statistics again on the next search (after an ``ANALYZE``; tests)."""
    global _common_words
    _common_words = None


def _model_literal(key: str) -> str:
    # The partial HNSW index's predicate must appear as a literal for the planner to use it.
    if not key.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"Unusable embedding model key {key!r}.")
    return f"'{key}'"


def _clean(query: str) -> str:
    return (query or "").replace("\x00", "").strip()


def embed_question(*, models: set[str], query: str) -> dict[str, list[float]]:
    """The question's vector for each embedding model, for ``search(vectors=...)``: a caller
    embeds with a remote model outside a thread that others wait for, then searches there."""
    query = _clean(query)
    return {model: get_embedder(model).embed([query])[0] for model in models} if query else {}


def search_statement(
    *,
    model: str,
    dimensions: int,
    vector: list[float],
    base_ids: list[int],
    query: str,
    top_k: int,
    candidates: int,
) -> tuple[str, dict]:
    """The one SQL statement (and its parameters) that searches ``base_ids`` of one model."""
    common = {word: share for word, share in common_words().items() if share > COMMON_WORD_SHARE}
    sql = _SQL.format(
        dims=int(dimensions),
        model=_model_literal(model),
        config=TEXT_SEARCH_CONFIG,
        rrf=RRF_K,
        search_with_base=SEARCH_WITH_BASE,
    )
    params = {
        "vector": "[" + ",".join(f"{x:.7f}" for x in vector) + "]",
        "bases": base_ids,
        "base_lexemes": " | ".join(f"'{BASE_LEXEME}{int(pk)}'" for pk in base_ids),
        "candidates": max(candidates, top_k),
        "text": query[:2000],
        "top_k": top_k,
        "text_scan": TEXT_SCAN,
        "common_words": list(common),
        "common_shares": list(common.values()),
        "common_from": COMMON_WORDS_FROM,
        "common_share": COMMON_WORD_SHARE,
        "ef_search": str(EF_SEARCH),
        "before_iterative_scan": list(_BEFORE_ITERATIVE_SCAN),
    }
    return sql, params


def search(
    *,
    knowledge_bases: list[KnowledgeBase],
    query: str,
    top_k: int = 5,
    min_score: float = 0.0,
    candidates: int = 40,
    vectors: dict[str, list[float]] | None = None,
) -> SearchResult:
    """``vectors``: the question already embedded (``embed_question``), by embedding model."""
    started = time.perf_counter()
    query = _clean(query)
    by_model: dict[str, list[int]] = {}
    for base in knowledge_bases:
        by_model.setdefault(base.embedding_model, []).append(base.pk)
    hits: list[Hit] = []
    if query and by_model:
        for model, base_ids in by_model.items():
            embedder = get_embedder(model)
            sql, params = search_statement(
                model=model,
                dimensions=embedder.dimensions,
                vector=vectors[model] if vectors and model in vectors else embedder.embed([query])[0],
                base_ids=base_ids,
                query=query,
                top_k=top_k,
                candidates=candidates,
            )
            with connection.cursor() as cursor:
                # One round trip (each costs milliseconds on a busy server): the settings and the
                # search go as one query string, which PostgreSQL runs as one transaction, so the
                # local settings last for the search only (or to the end of a caller's transaction).
                cursor.execute(_SETTINGS + sql, params)
                while cursor.nextset():  # past the settings' results to the search's
                    pass
                hits.extend(Hit(*row) for row in cursor.fetchall())
        hits.sort(key=lambda h: -h.score)
        hits = [h for h in hits if h.score >= min_score][:top_k]
    return SearchResult(hits=hits, elapsed_ms=round((time.perf_counter() - started) * 1000, 1))
