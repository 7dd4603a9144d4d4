"""Ingestion as a job of the runtime: the code agent ``rag.ingest`` ingests one document per run.

So ingestion gets what every run has: a durable queue, leases and heartbeats, retries
with backoff, rescue of a run whose worker died (kill -9), cancellation and an event
log. The run carries the document's public id in its metadata; the job works only
if the document names this run as its ingestion run (``Document.ingest_run_id``), so
a run someone else creates with the same metadata does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from django.db import close_old_connections, connection

from rag.embeddings import EmbeddingError
from rag.extract import ExtractionError
from rag.ingest import ingest_document, mark_failed, mark_retrying
from runtime.interfaces import AgentRuntime, RunContext, RunResult
from runtime.models import AgentRun
from runtime.registry import register_runtime

INGEST_AGENT_KEY = "rag.ingest"
logger = logging.getLogger(__name__)


def _max_attempts(run_id: str) -> int:
    return AgentRun.objects.filter(pk=run_id).values_list("max_attempts", flat=True).first() or 1


def ingest_for_run(
    *, document_id: str, run_id: str, attempt: int = 1, should_stop: Callable[[], bool] = lambda: False
) -> dict:
    """The job's work: ingest, and turn failures into the document's readable reason.

    A failure the user must fix (extraction, a refused embedding request) fails the
    document at once; anything else is raised for the runtime to retry, and fails
    the document on the last attempt.
    """
    try:
        return ingest_document(document_id=document_id, run_id=run_id, should_stop=should_stop)
    except ExtractionError as exc:
        mark_failed(document_id=document_id, run_id=run_id, reason=str(exc))
        return {"document": document_id, "outcome": "failed", "reason": str(exc)}
    except EmbeddingError as exc:
        if not exc.retryable or attempt >= _max_attempts(run_id):
            mark_failed(document_id=document_id, run_id=run_id, reason=f"Embedding failed: {exc}")
            return {"document": document_id, "outcome": "failed", "reason": str(exc)}
        mark_retrying(
            document_id=document_id, run_id=run_id, reason=f"Attempt {attempt} failed ({exc}); retrying."
        )
        raise
    except Exception as exc:
        logger.exception("Ingesting document %s failed", document_id)
        reason = f"An unexpected error stopped indexing ({type(exc).__name__})."
        if attempt >= _max_attempts(run_id):
            mark_failed(document_id=document_id, run_id=run_id, reason=reason)
        else:
            mark_retrying(document_id=document_id, run_id=run_id, reason=f"{reason} Retrying.")
        raise


def _in_thread(document_id: str, ctx: RunContext) -> dict:
    close_old_connections()
    try:
        return ingest_for_run(
            document_id=document_id, run_id=ctx.run_id, attempt=ctx.attempt, should_stop=ctx.cancelled
        )
    finally:
        connection.close()


class IngestJob(AgentRuntime):
    """Indexes one uploaded knowledge document (extract, chunk, embed, store)."""

    @property
    def key(self) -> str:
        return INGEST_AGENT_KEY

    async def run(self, ctx: RunContext) -> RunResult:
        document_id = str(ctx.metadata.get("rag_document") or "")
        result = await asyncio.to_thread(_in_thread, document_id, ctx)
        return RunResult(final_output=result)


def register() -> None:
    register_runtime(IngestJob())
