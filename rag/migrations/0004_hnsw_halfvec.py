"""Each embedding model's HNSW index on ``embedding::halfvec(N)`` instead of ``embedding::vector(N)``.

Why: keeping the HNSW index up to date is most of an ingestion's cost (about 4.6 ms of
PostgreSQL CPU per 512-dimension chunk, against 0.5 ms for the row, its tsvector and the GIN
index). Half-precision elements halve the index's size and the memory each insert reads:
about a fifth less CPU per insert, and an index half as large to keep in shared buffers.
Recall@10 against an exact full-precision scan stays at 0.97-0.98 (docs/knowledge.md).
The build parameters stay pgvector's defaults (m=16, ef_construction=64), spelled out here:
m=12 with ef_construction=40 halved the insert cost again but gave recall@10 0.95 / 0.92
at 100,000 chunks (local model, two question sets), under the 0.95 the search needs.
The table keeps full-precision ``vector`` values: the scores shown to users and any later
rebuild use them.

The column and its data are untouched: the new index is built from the rows already there,
then the old one is dropped, neither blocking writes (``CONCURRENTLY``, so this migration is not
atomic). ``rag/search.py`` orders by the same ``halfvec`` expression, so it uses the index.
A model added to RAG_EMBEDDING_MODELS later needs an index like these (a new migration).
"""

from django.db import migrations

MODELS = {"local": 64, "hash": 256, "openai-small": 512}  # key -> dimensions, as in 0002
M = 16  # pgvector's default
EF_CONSTRUCTION = 64  # pgvector's default


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
