"""Which knowledge bases an agent or a system uses, and how (mode, top-k, score threshold)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from builder.access import visible_to
from builder.models import Agent, AgentKnowledge, AgentSystem, AuditAction, SystemKnowledge
from builder.schema import ConfigError
from builder.services.sharing import audit_record
from rag.models import KnowledgeBase
from rag.services import document_upload, knowledge_base_create, knowledge_base_delete

MODES = ("auto", "tool", "both")
MAX_TOP_K = 20


def _links(target: Agent | AgentSystem) -> Any:
    if isinstance(target, AgentSystem):
        return SystemKnowledge, {"system": target}
    return AgentKnowledge, {"agent": target}


def _check_settings(*, mode: str, top_k: int, score_threshold: float) -> None:
    errors: dict[str, str] = {}
    if mode not in MODES:
        errors["mode"] = f"Unknown mode {mode!r}; use one of {', '.join(MODES)}."
    if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        errors["top_k"] = f"Passages per question must be a whole number from 1 to {MAX_TOP_K}."
    if not isinstance(score_threshold, int | float) or not 0 <= score_threshold <= 1:
        errors["score_threshold"] = "The minimum similarity must be between 0 (keep every passage) and 1."
    if errors:
        raise ConfigError(errors)


@transaction.atomic
def knowledge_attach(
    *,
    target: Agent | AgentSystem,
    user: Any,
    knowledge_bases: Iterable[KnowledgeBase],
    mode: str = "auto",
    top_k: int = 4,
    score_threshold: float = 0.0,
) -> list[KnowledgeBase]:
    """Attach exactly ``knowledge_bases`` (of those ``user`` may see) to an agent or a system, each
    used in ``mode`` with ``top_k`` passages at least ``score_threshold`` similar.

    ``user`` must be able to see every base attached: a base they cannot see is refused, and
    bases already attached that they cannot see stay attached, untouched (they were not on the
    form). The caller checked that ``user`` may edit ``target``."""
    _check_settings(mode=mode, top_k=top_k, score_threshold=score_threshold)
    wanted = {base.pk: base for base in knowledge_bases}
    seen = set(visible_to(user, KnowledgeBase.objects.all()).values_list("pk", flat=True))
    hidden = [base.name for pk, base in wanted.items() if pk not in seen]
    if hidden:
        raise ConfigError(
            {
                "knowledge_bases": f"You cannot see the knowledge base {hidden[0]!r}; ask its owner to share it."
            }
        )
    model, owner = _links(target)
    links = model.objects.filter(**owner)
    links.filter(knowledge_base_id__in=seen).exclude(knowledge_base_id__in=wanted).delete()
    present = set(links.values_list("knowledge_base_id", flat=True))
    settings = {"mode": mode, "top_k": top_k, "score_threshold": float(score_threshold)}
    links.filter(knowledge_base_id__in=wanted).update(**settings)
    model.objects.bulk_create(
        [model(knowledge_base=base, **owner, **settings) for pk, base in wanted.items() if pk not in present]
    )
    return list(wanted.values())


def knowledge_links(target: Agent | AgentSystem) -> list[Any]:
    model, owner = _links(target)
    return list(model.objects.filter(**owner).select_related("knowledge_base"))


SHARED_TEXT_NAME = "Shared knowledge.txt"


@transaction.atomic
def system_knowledge_from_text(
    *, system: AgentSystem, user: Any, snippets: list[str]
) -> KnowledgeBase | None:
    """Short shared texts (what a system's old "knowledge" box held, as export files still may)
    become a knowledge base owned by ``user``, named after the system, with one pasted document,
    queued for indexing and attached to the system (automatic mode). None when there is no text."""
    snippets = [str(s).strip() for s in snippets if str(s).strip()]
    if not snippets:
        return None
    base = knowledge_base_create(owner=user, name=system.name[:200])
    text = "\n---\n".join(snippets)
    document_upload(
        knowledge_base=base, upload=SimpleUploadedFile(SHARED_TEXT_NAME, text.encode()), user=user
    )
    SystemKnowledge.objects.create(system=system, knowledge_base=base, mode="auto")
    return base


@transaction.atomic
def knowledge_base_remove(*, knowledge_base: KnowledgeBase, user: Any) -> None:
    """Delete a knowledge base (rag's service) and record who did it in the builder's audit log."""
    audit_record(actor=user, action=AuditAction.DELETED, obj=knowledge_base)
    knowledge_base_delete(knowledge_base=knowledge_base)
