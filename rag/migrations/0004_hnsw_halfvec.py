"""Each embedding model's HNSW index on ``embedding::halfvec(N)`` with a cheaper build (m, ef_construction).

Why: keeping the HNSW index up to date was most of an ingestion's cost (about 4.6 ms of
PostgreSQL CPU per 512-dimension chunk with pgvector's m=16, ef_construction=64, against
0.5 ms for the row, its tsvector and the GIN index). Half-precision elements halve the
index's size and memory traffic; a smaller ``m`` and ``ef_construction`` make each insert
compare far fewer neighbours. Recall@10 against an exact scan stays above 0.95 with the
search's ``hnsw.ef_search`` (docs/knowledge.md has the figures). The table keeps full-precision
``vector`` values: the exact scores shown to users, and a later rebuild, still use them.

The column and its data are untouched: the new index is built from the rows already there, then the old one
is dropped, neither blocking writes (``CONCURRENTLY``, so this migration is not atomic). ``rag/search.py`` orders by the same ``halfvec`` expression, so it uses the index.
A model added to RAG_EMBEDDING_MODELS later needs an index like these (a new migration).
"""

from django.db import migrations

MODELS = {"local": 64, "hash": 256, "openai-small": 512}  # key -> dimensions, as in 0002
M = 12
EF_CONSTRUCTION = 40


def _old(key: str) -> str:
    return f"rag_chunk_hnsw_{key.replace('-', '_')}"


def _new(key: str) -> str:
    return f"rag_chunk_hnsw_half_{key.replace('-', '_')}"


def _create_halfvec(key: str, dims: int) -> str:
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_new(key)} ON rag_chunk "
        f"USING hnsw ((embedding::halfvec({dims})) halfvec_cosine_ops) "
        f"WITH (m = {M}, ef_construction = {EF_CONSTRUCTION}) WHERE embedding_model = '{key}'"
    )


def _create_vector(key: str, dims: int) -> str:  # migration 0002's index
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_old(key)} ON rag_chunk "
        f"USING hnsw ((embedding::vector({dims})) vector_cosine_ops) WHERE embedding_model = '{key}'"
    )


def _replace(key: str, dims: int) -> list[migrations.RunSQL]:
    # the new index first, then the old one goes: search always has an index to use
    return [
        migrations.RunSQL(_create_halfvec(key, dims), f"DROP INDEX CONCURRENTLY IF EXISTS {_new(key)}"),
        migrations.RunSQL(f"DROP INDEX CONCURRENTLY IF EXISTS {_old(key)}", _create_vector(key, dims)),
    ]


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("rag", "0003_knowledge_base_own_permission")]

    operations = [op for key, dims in MODELS.items() for op in _replace(key, dims)]
