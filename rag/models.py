"""Knowledge bases, their documents and the indexed chunks of each document.

A document's chunks are written in the same transaction that marks it ``ready``
(``rag/ingest.py``), replacing whatever chunks it had, so search never sees a
half-indexed document and a resumed ingestion never duplicates chunks.
Chunk embeddings live in one untyped ``vector`` column; each embedding model has
a partial HNSW index on ``embedding::halfvec(<its dimensions>)`` (migrations 0002, 0004),
which is how pgvector indexes vectors of several sizes in one table.
The ``search`` column's full-text index is an expression index created by migration 0005 (on the
words plus a lexeme naming the chunk's knowledge base, see ``rag/search.py``), not declared here.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import VectorField

TEXT_SEARCH_CONFIG = "english"


class KnowledgeBase(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="knowledge_bases"
    )
    # A key of settings.RAG_EMBEDDING_MODELS, fixed at creation (vectors of two models do not mix).
    embedding_model = models.CharField(max_length=64)
    # In tokens (see rag/chunking.py for what a token is here).
    chunk_size = models.PositiveIntegerField(default=300)
    chunk_overlap = models.PositiveIntegerField(default=40)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("own_knowledgebase", "Own the knowledge base: share, delete")]

    def __str__(self) -> str:
        return self.name


class DocumentStatus(models.TextChoices):
    STORED = "stored", "Stored"
    EXTRACTING = "extracting", "Extracting text"
    CHUNKING = "chunking", "Chunking"
    EMBEDDING = "embedding", "Embedding"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


TERMINAL_STATUSES = frozenset({DocumentStatus.READY, DocumentStatus.FAILED})


def document_upload_to(instance: Document, filename: str) -> str:
    return f"rag/{instance.knowledge_base.public_id}/{instance.public_id}/{filename}"


class Document(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    # The uploaded name, cleaned of path separators and control characters.
    name = models.CharField(max_length=255)
    file = models.FileField(upload_to=document_upload_to, max_length=500)
    # Sniffed from the content: txt, md, csv, json, html, pdf, docx, xlsx, pptx.
    kind = models.CharField(max_length=16)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.STORED)
    progress = models.FloatField(default=0.0)  # 0..1 within the current stage
    error = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    # The runtime run that ingests this document now; a run with another id writes nothing.
    ingest_run_id = models.UUIDField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["knowledge_base", "sha256"], name="rag_document_content_unique")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # Denormalised so search filters by knowledge base without a join.
    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="+")
    embedding_model = models.CharField(max_length=64)
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    page = models.PositiveIntegerField(null=True, blank=True)
    section = models.CharField(max_length=500, blank=True)
    char_start = models.PositiveIntegerField()
    char_end = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField()
    embedding = VectorField()
    search = models.GeneratedField(
        expression=SearchVector("section", "text", config=TEXT_SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="rag_chunk_ordinal_unique")
        ]
        indexes = [
            models.Index(fields=["knowledge_base", "embedding_model"], name="rag_chunk_kb_model"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"
