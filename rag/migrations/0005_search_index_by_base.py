"""The full-text index holds each chunk's words and a lexeme naming its knowledge base.

Why: a search looks in a few knowledge bases of a table that holds every base's chunks. With an
index on the words alone, PostgreSQL either read the rows of every base that matched and threw
away the others' (one heap page per row), or read a second index for the base filter and
combined the two (a bitmap of every chunk of a large base: 3.9 ms of a 17 ms search at 100,000
chunks). Now the one index answers "(any word of the question) AND (one of these bases)"
itself, reading only as far into each list as the other allows, so a small base in a large table
and a large base alike cost what their own matches cost. ``rag/search.py`` asks with the same
expression (``SEARCH_WITH_BASE``); the lexeme is ``kb <id>``, which no word of a text can
produce (words never contain a space). The ``search`` column is unchanged, so nothing is
rewritten: the new index is built beside the old one, then the old one goes, neither blocking
writes (``CONCURRENTLY``, so this migration is not atomic).
"""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations

NAME = "rag_chunk_search_kb_gin"
# GIN files new rows in a pending list that every search reads in full until it is merged into
# the index (by the insert that overflows it, or by vacuum). PostgreSQL's default of 4 MB let it
# reach 400-500 pages during an ingestion: +2.6 ms on a 7 ms search. At 256 kB a search reads at
# most 32 pages; inserting costs 2% more (merging often), against 20% more with no list at all.
PENDING_LIST_KB = 256
CREATE = (
    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON rag_chunk USING gin "
    "((search || array_to_tsvector(ARRAY['kb ' || knowledge_base_id::text]))) "
    f"WITH (gin_pending_list_limit = {PENDING_LIST_KB})"
)


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("rag", "0004_hnsw_halfvec")]

    operations = [
        migrations.RunSQL(CREATE, f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}"),
        RemoveIndexConcurrently(model_name="chunk", name="rag_chunk_search_gin"),
    ]
