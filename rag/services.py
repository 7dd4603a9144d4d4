"""Knowledge writes: create and delete bases, upload, retry, cancel and delete documents.

Every upload is checked before anything is written (name, size, type sniffed from the
content, zip bomb, duplicate content); then the row, the stored file and the ingestion
run are created together: if any part fails, nothing of it remains.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.text import get_valid_filename

from rag.embeddings import model_config
from rag.embeddings.base import EmbeddingError
from rag.jobs import INGEST_AGENT_KEY
from rag.models import Document, DocumentStatus, KnowledgeBase
from rag.sniff import FileRejected, extension, sniff
from runtime.models import AgentRun
from runtime.net import BlockedDestination, NetError, safe_request_sync
from runtime.services import RunAlreadyFinished, run_cancel, run_create

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.core.files.uploadedfile import UploadedFile

logger = logging.getLogger(__name__)
MAX_NAME = 200
HEAD_BYTES = 8192


class KnowledgeInputError(ValueError):
    """Bad input; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _checked_settings(
    *, name: str, description: str, embedding_model: str | None, chunk_size: int, chunk_overlap: int
) -> dict[str, Any]:
    name = (name or "").strip()
    if not name:
        raise KnowledgeInputError("name", "Give the knowledge base a name.")
    if len(name) > 200:
        raise KnowledgeInputError("name", "Keep the name under 200 characters.")
    embedding_model = embedding_model or settings.RAG_DEFAULT_EMBEDDING_MODEL
    try:
        model_config(embedding_model)
    except EmbeddingError as exc:
        raise KnowledgeInputError("embedding_model", str(exc)) from None
    if not 32 <= chunk_size <= 4000:
        raise KnowledgeInputError("chunk_size", "Chunk size must be between 32 and 4000 tokens.")
    if not 0 <= chunk_overlap <= chunk_size // 2:
        raise KnowledgeInputError("chunk_overlap", "Overlap must be between 0 and half the chunk size.")
    return {
        "name": name,
        "description": (description or "").strip(),
        "embedding_model": embedding_model,
        "chunk_size": chunk_size,
        "chunk_overlap": chunk_overlap,
    }


def knowledge_base_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    description: str = "",
    embedding_model: str | None = None,
    chunk_size: int = 300,
    chunk_overlap: int = 40,
) -> KnowledgeBase:
    fields = _checked_settings(
        name=name,
        description=description,
        embedding_model=embedding_model,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
    )
    return KnowledgeBase.objects.create(owner=owner, **fields)


# Settings whose change makes every stored passage stale.
INDEX_SETTINGS = ("embedding_model", "chunk_size", "chunk_overlap")


@transaction.atomic
def knowledge_base_update(
    *,
    knowledge_base: KnowledgeBase,
    user: AbstractBaseUser,
    name: str,
    description: str = "",
    embedding_model: str | None = None,
    chunk_size: int = 300,
    chunk_overlap: int = 40,
) -> int:
    """Change a base's settings. A new embedding model, passage size or overlap indexes every
    document again (each keeps its old passages until its new ones replace them in one
    transaction; passages of another model are never searched). Returns how many documents
    were queued again."""
    fields = _checked_settings(
        name=name,
        description=description,
        embedding_model=embedding_model,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
    )
    base = KnowledgeBase.objects.select_for_update().get(pk=knowledge_base.pk)
    stale = any(getattr(base, key) != fields[key] for key in INDEX_SETTINGS)
    for key, value in fields.items():
        setattr(base, key, value)
    base.save()
    requeued = 0
    if stale:
        for document in base.documents.select_for_update():
            _cancel_run(document)
            _enqueue(document, user)
            requeued += 1
    for key, value in fields.items():
        setattr(knowledge_base, key, value)
    return requeued


def _delete_files(names: list[tuple[Any, str]]) -> None:
    for storage, name in names:
        try:
            storage.delete(name)
        except Exception:  # a disk or an object store that refuses: the row is gone, say so in the log
            logger.warning("Could not delete stored file %s", name, exc_info=True)


def knowledge_base_delete(*, knowledge_base: KnowledgeBase) -> None:
    documents = list(knowledge_base.documents.all())
    files = [(d.file.storage, d.file.name) for d in documents if d.file]
    with transaction.atomic():
        for document in documents:
            _cancel_run(document)
        knowledge_base.delete()
        transaction.on_commit(lambda: _delete_files(files))


def clean_name(raw: str) -> str:
    """The file's own name: no folders, no control characters (NUL included), at most 200 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")
    if len(name) > MAX_NAME:
        ext = extension(name)
        keep = MAX_NAME - len(ext) - 1 if ext and len(ext) < 16 else MAX_NAME
        name = name[:keep].rstrip() + (f".{ext}" if keep != MAX_NAME else "")
    if not name:
        raise KnowledgeInputError(
            "files", f"{raw!r}: the file name is empty once folders are removed; rename it."
        )
    return name


def _storage_name(name: str) -> str:
    safe = get_valid_filename(name) if any(c.isalnum() for c in name) else "file"
    return safe[-120:] or "file"


def _enqueue(document: Document, user: AbstractBaseUser | None) -> None:
    run, _ = run_create(
        agent_key=INGEST_AGENT_KEY,
        messages=[{"role": "user", "content": f"Index {document.name}"}],
        user=user,
        metadata={"rag_document": str(document.public_id), "source": "rag"},
    )
    Document.objects.filter(pk=document.pk).update(
        ingest_run_id=run.pk, status=DocumentStatus.STORED, progress=0.0, error="", updated_at=timezone.now()
    )
    document.ingest_run_id = run.pk
    document.status = DocumentStatus.STORED


def document_upload(
    *, knowledge_base: KnowledgeBase, upload: UploadedFile, user: AbstractBaseUser
) -> Document:
    """Check, store and queue one uploaded file; raises ``KnowledgeInputError`` naming the file."""
    name = clean_name(upload.name or "")
    size = upload.size or 0
    limit = settings.RAG_MAX_FILE_BYTES
    if size == 0:
        raise KnowledgeInputError("files", f"{name}: the file is empty.")
    if size > limit:
        raise KnowledgeInputError(
            "files", f"{name}: the file is {size / 1048576:.1f} MB; the limit is {limit / 1048576:.0f} MB."
        )
    quota = settings.RAG_MAX_BASE_BYTES
    used = knowledge_base.documents.aggregate(total=Sum("size"))["total"] or 0
    if used + size > quota:
        raise KnowledgeInputError(
            "files",
            f"{name}: {knowledge_base.name} would hold {(used + size) / 1048576:.1f} MB; its quota is "
            f"{quota / 1048576:.0f} MB. Delete documents first or use another knowledge base.",
        )
    hasher = hashlib.sha256()
    head = b""
    upload.seek(0)
    for piece in upload.chunks():
        if len(head) < HEAD_BYTES:
            head += piece[: HEAD_BYTES - len(head)]
        hasher.update(piece)
    digest = hasher.hexdigest()

    def reopen() -> contextlib.nullcontext:
        upload.seek(0)
        return contextlib.nullcontext(upload.file)

    try:
        kind = sniff(name=name, head=head, open_file=reopen)
    except FileRejected as exc:
        raise KnowledgeInputError("files", str(exc)) from None
    existing = knowledge_base.documents.filter(sha256=digest).first()
    if existing is not None:
        raise KnowledgeInputError(
            "files", f"{name}: the same content is already in this knowledge base as {existing.name}."
        )
    previous = knowledge_base.documents.filter(name=name).first()
    if previous is not None:
        return _replace(previous, upload=upload, kind=kind, size=size, digest=digest, user=user)
    document = Document(
        knowledge_base=knowledge_base, name=name, kind=kind, size=size, sha256=digest, uploaded_by=user
    )
    upload.seek(0)
    stored: list[tuple[Any, str]] = []
    try:
        with transaction.atomic():
            _store(document, upload, name)
            stored.append((document.file.storage, document.file.name))
            document.save()
            _enqueue(document, user)
    except IntegrityError:
        _delete_files(stored)
        raise KnowledgeInputError(
            "files", f"{name}: the same content was just uploaded to this knowledge base."
        ) from None
    except BaseException:
        _delete_files(stored)
        raise
    return document


def _store(document: Document, upload: UploadedFile, name: str) -> None:
    """Save the file through the configured storage; a storage that fails (a full disk, an
    object store that is down or refuses) is a readable message naming the file, not a 500."""
    try:
        document.file.save(_storage_name(name), upload, save=False)
    except Exception as exc:
        logger.exception("Could not store %s", name)
        raise KnowledgeInputError(
            "files",
            f"{name}: the file could not be stored ({type(exc).__name__}); nothing was saved. "
            "Try again later, or ask an operator to check the file storage.",
        ) from None


def _replace(
    document: Document, *, upload: UploadedFile, kind: str, size: int, digest: str, user: AbstractBaseUser
) -> Document:
    """A new version of a document (same name, new content): its old chunks stay searchable until
    the new ones replace them in one transaction; a run still indexing the old version is cancelled."""
    old_file = (document.file.storage, document.file.name)
    stored: list[tuple[Any, str]] = []
    upload.seek(0)
    try:
        with transaction.atomic():
            document = Document.objects.select_for_update().get(pk=document.pk)
            _cancel_run(document)
            _store(document, upload, document.name)
            stored.append((document.file.storage, document.file.name))
            document.kind, document.size, document.sha256, document.uploaded_by = kind, size, digest, user
            document.save(update_fields=["file", "kind", "size", "sha256", "uploaded_by", "updated_at"])
            _enqueue(document, user)
            transaction.on_commit(lambda: _delete_files([old_file]))
    except IntegrityError:
        _delete_files(stored)
        raise KnowledgeInputError(
            "files", f"{document.name}: the same content was just uploaded to this knowledge base."
        ) from None
    except BaseException:
        _delete_files(stored)
        raise
    return document


def _cancel_run(document: Document) -> None:
    run = AgentRun.objects.filter(pk=document.ingest_run_id).first() if document.ingest_run_id else None
    if run is not None and run.status in ("queued", "running"):
        with contextlib.suppress(RunAlreadyFinished):
            run_cancel(run=run)


@transaction.atomic
def document_retry(*, document: Document, user: AbstractBaseUser) -> Document:
    """Index the document again (after a failure, or to refresh a ready one)."""
    document = Document.objects.select_for_update().get(pk=document.pk)
    if not document.is_terminal:
        raise KnowledgeInputError(
            "document", f"{document.name} is still being indexed; wait or cancel it first."
        )
    _enqueue(document, user)
    return document


@transaction.atomic
def document_cancel(*, document: Document) -> Document:
    """Stop indexing: the running job's later writes are ignored; earlier chunks (if any) stay."""
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.is_terminal:
        raise KnowledgeInputError("document", f"{document.name} is not being indexed.")
    _cancel_run(document)
    Document.objects.filter(pk=document.pk).update(
        status=DocumentStatus.FAILED, error="Cancelled.", ingest_run_id=None, updated_at=timezone.now()
    )
    document.refresh_from_db()
    return document


def document_delete(*, document: Document) -> None:
    files = [(document.file.storage, document.file.name)] if document.file else []
    with transaction.atomic():
        _cancel_run(document)
        document.delete()
        transaction.on_commit(lambda: _delete_files(files))


# Extensions a fetched page may keep from its URL; anything else is named by its content type.
_URL_KINDS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "txt",
    "text/markdown": "md",
    "text/csv": "csv",
    "application/json": "json",
    "application/pdf": "pdf",
}


def _name_for_url(url: str, content_type: str) -> str:
    parsed = urlsplit(url)
    last = parsed.path.rstrip("/").rsplit("/", 1)[-1]
    stem = f"{parsed.hostname}{'-' + last if last else ''}"
    kind = _URL_KINDS.get(content_type.split(";")[0].strip().lower(), "")
    if kind and extension(stem) != kind:
        stem = f"{stem}.{kind}"
    return clean_name(stem)


def document_from_url(*, knowledge_base: KnowledgeBase, url: str, user: AbstractBaseUser) -> Document:
    """Fetch one web page through the SSRF-safe client and add it like an upload.

    The page is fetched now, in the caller's request (at most ``RAG_URL_TIMEOUT`` seconds and
    ``RAG_MAX_FILE_BYTES``), so a refusal is answered at once; indexing is the usual job.
    Raises ``KnowledgeInputError`` on the ``url`` field with the reason.
    """
    url = (url or "").strip()
    if not url:
        raise KnowledgeInputError("url", "Give the address of a web page, starting with https://.")
    if len(url) > 2000:
        raise KnowledgeInputError("url", "The address is longer than 2,000 characters.")
    if urlsplit(url).scheme.lower() not in {"http", "https"}:
        raise KnowledgeInputError("url", f"{url[:200]}: only http:// and https:// addresses can be fetched.")
    limit = settings.RAG_MAX_FILE_BYTES
    try:
        response = safe_request_sync(
            "GET",
            url,
            timeout=settings.RAG_URL_TIMEOUT,
            max_response_bytes=limit,
            headers={"Accept": "text/html,text/plain,application/pdf;q=0.9,*/*;q=0.5"},
        )
    except BlockedDestination as exc:
        raise KnowledgeInputError("url", f"{url[:200]}: {exc}") from None
    except NetError as exc:
        raise KnowledgeInputError("url", f"{url[:200]}: could not fetch the page. {exc}") from None
    if response.status >= 400:
        raise KnowledgeInputError("url", f"{url[:200]}: the site answered HTTP {response.status}.")
    if response.truncated:
        raise KnowledgeInputError(
            "url", f"{url[:200]}: the page is larger than the {limit / 1048576:.0f} MB limit."
        )
    name = _name_for_url(response.url or url, response.headers.get("content-type", ""))
    try:
        return document_upload(
            knowledge_base=knowledge_base, upload=SimpleUploadedFile(name, response.content), user=user
        )
    except KnowledgeInputError as exc:
        raise KnowledgeInputError("url", exc.message) from None
