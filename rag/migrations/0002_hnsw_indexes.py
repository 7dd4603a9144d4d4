"""One partial HNSW index per embedding model, on the vector cast to that model's dimensions.

A model added to RAG_EMBEDDING_MODELS later needs an index like these (a new migration):
CREATE INDEX ... USING hnsw ((embedding::vector(N)) vector_cosine_ops) WHERE embedding_model = 'key'.
"""

from django.db import migrations

MODELS = {"local": 64, "hash": 256, "openai-small": 512}


def _index(key: str, dims: int) -> migrations.RunSQL:
    name = f"rag_chunk_hnsw_{key.replace('-', '_')}"
    return migrations.RunSQL(
        f"CREATE INDEX {name} ON rag_chunk USING hnsw ((embedding::vector({dims})) vector_cosine_ops) "
        f"WHERE embedding_model = '{key}'",
        f"DROP INDEX IF EXISTS {name}",
    )


class Migration(migrations.Migration):
    dependencies = [("rag", "0001_initial")]

    operations = [_index(key, dims) for key, dims in MODELS.items()]
