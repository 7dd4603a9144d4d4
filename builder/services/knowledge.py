"""Which knowledge bases an agent or a system uses, and how (mode, top-k, score threshold)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

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


def _target_of(link: AgentKnowledge | SystemKnowledge) -> Agent | AgentSystem:
    return link.system if isinstance(link, SystemKnowledge) else link.agent


def knowledge_settings_check(*, mode: str, top_k: int, score_threshold: float) -> None:
    """How an attachment is used: the one place its rules live (the builder's form and the REST
    API both reach them through the services below). Raises ``ConfigError`` naming each field."""
    errors: dict[str, str] = {}
    if mode not in MODES:
        errors["mode"] = f"Unknown mode {mode!r}; use one of {', '.join(MODES)}."
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        errors["top_k"] = f"Passages per question must be a whole number from 1 to {MAX_TOP_K}."
    if (
        isinstance(score_threshold, bool)
        or not isinstance(score_threshold, int | float)
        or not 0 <= score_threshold <= 1
    ):
        errors["score_threshold"] = "The minimum similarity must be between 0 (keep every passage) and 1."
    if errors:
        raise ConfigError(errors)


SETTINGS = ("mode", "top_k", "score_threshold")


def settings_text(settings: dict[str, Any]) -> str:
    """``mode auto, top_k 4, score_threshold 0.0``: the names the REST API and export use."""
    return ", ".join(f"{name} {settings[name]}" for name in SETTINGS)


def changes_text(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``top_k 5 → 8``: only the settings that differ ("" when none does)."""
    return ", ".join(
        f"{name} {before[name]} → {after[name]}" for name in SETTINGS if before[name] != after[name]
    )


def _audit(
    user: Any, action: str, target: Agent | AgentSystem, base: KnowledgeBase, detail: str = ""
) -> None:
    """One entry in the audit log of the agent or system, naming the base (its name at the time)."""
    audit_record(actor=user, action=action, obj=target, subject=base.name, detail=detail)


def _refuse_hidden(bases: Iterable[KnowledgeBase], seen: set[Any], *, field: str) -> None:
    """Using a knowledge base needs at least the viewer role on it."""
    hidden = [base.name for base in bases if base.pk not in seen]
    if hidden:
        raise ConfigError(
            {field: f"You cannot see the knowledge base {hidden[0]!r}; ask its owner to share it."}
        )


def _seen(user: Any, bases: Iterable[KnowledgeBase] | None = None) -> set[Any]:
    """Primary keys of the knowledge bases ``user`` may see (of ``bases``, when given)."""
    rows = KnowledgeBase.objects.all()
    if bases is not None:
        rows = rows.filter(pk__in=[base.pk for base in bases])
    return set(visible_to(user, rows).values_list("pk", flat=True))


def visible_knowledge_bases(user: Any, public_ids: Iterable[Any]) -> dict[Any, KnowledgeBase]:
    """The bases of ``public_ids`` that ``user`` may see (the rule for attaching one), by public
    id: one that does not exist and one hidden from ``user`` are both simply absent."""
    rows = visible_to(user, KnowledgeBase.objects.filter(public_id__in=list(public_ids)))
    return {base.public_id: base for base in rows}


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
    used in ``mode`` with ``top_k`` passages at least ``score_threshold`` similar (the builder's
    form: one setting for every base ticked on it).

    ``user`` must be able to see every base attached: a base they cannot see is refused, and
    bases already attached that they cannot see stay attached, untouched (they were not on the
    form). The caller checked that ``user`` may edit ``target``."""
    knowledge_settings_check(mode=mode, top_k=top_k, score_threshold=score_threshold)
    wanted = {base.pk: base for base in knowledge_bases}
    seen = _seen(user)
    _refuse_hidden(wanted.values(), seen, field="knowledge_bases")
    model, owner = _links(target)
    links = model.objects.filter(**owner)
    dropped = links.filter(knowledge_base_id__in=seen).exclude(knowledge_base_id__in=wanted)
    for link in dropped.select_related("knowledge_base").order_by("knowledge_base__name"):
        _audit(user, AuditAction.KNOWLEDGE_DETACHED, target, link.knowledge_base)
    dropped.delete()
    present = {
        row["knowledge_base_id"]: row
        for row in links.filter(knowledge_base_id__in=wanted).values("knowledge_base_id", *SETTINGS)
    }
    settings = {"mode": mode, "top_k": top_k, "score_threshold": float(score_threshold)}
    links.filter(knowledge_base_id__in=wanted).update(**settings)
    model.objects.bulk_create(
        [model(knowledge_base=base, **owner, **settings) for pk, base in wanted.items() if pk not in present]
    )
    for pk, base in sorted(wanted.items(), key=lambda item: item[1].name):
        if pk not in present:
            _audit(user, AuditAction.KNOWLEDGE_ATTACHED, target, base, settings_text(settings))
        elif changed := changes_text(present[pk], settings):
            _audit(user, AuditAction.KNOWLEDGE_CHANGED, target, base, changed)
    return list(wanted.values())


# One attachment at a time (the REST API): the same rules as ``knowledge_attach``. The caller
# checked that ``user`` may edit the attachment's agent or system.


def _already(knowledge_base: KnowledgeBase, target: Agent | AgentSystem) -> ConfigError:
    return ConfigError(
        {
            "knowledge_base": f"{knowledge_base.name!r} is already attached to {target.name!r}; "
            "change how it is used instead of attaching it again."
        }
    )


@transaction.atomic
def knowledge_link_add(
    *,
    target: Agent | AgentSystem,
    user: Any,
    knowledge_base: KnowledgeBase,
    mode: str = "auto",
    top_k: int = 4,
    score_threshold: float = 0.0,
) -> AgentKnowledge | SystemKnowledge:
    """Attach one more knowledge base to an agent or a system; the others stay as they are.
    A base already attached is refused (``knowledge_base``): change it instead."""
    knowledge_settings_check(mode=mode, top_k=top_k, score_threshold=score_threshold)
    _refuse_hidden([knowledge_base], _seen(user, [knowledge_base]), field="knowledge_base")
    model, owner = _links(target)
    if model.objects.filter(**owner, knowledge_base=knowledge_base).exists():
        raise _already(knowledge_base, target)
    settings = {"mode": mode, "top_k": top_k, "score_threshold": float(score_threshold)}
    try:
        with transaction.atomic():  # a savepoint: two requests attaching the same base at once
            link = model.objects.create(knowledge_base=knowledge_base, **owner, **settings)
    except IntegrityError:
        raise _already(knowledge_base, target) from None
    _audit(user, AuditAction.KNOWLEDGE_ATTACHED, target, knowledge_base, settings_text(settings))
    return link


@transaction.atomic
def knowledge_link_update(
    *,
    link: AgentKnowledge | SystemKnowledge,
    user: Any,
    mode: str | None = None,
    top_k: int | None = None,
    score_threshold: float | None = None,
) -> AgentKnowledge | SystemKnowledge:
    """Change how one attachment is used; a setting left as None keeps its value."""
    settings = {
        "mode": link.mode if mode is None else mode,
        "top_k": link.top_k if top_k is None else top_k,
        "score_threshold": link.score_threshold if score_threshold is None else score_threshold,
    }
    knowledge_settings_check(**settings)
    _refuse_hidden([link.knowledge_base], _seen(user, [link.knowledge_base]), field="knowledge_base")
    settings["score_threshold"] = float(settings["score_threshold"])
    changed = changes_text({name: getattr(link, name) for name in SETTINGS}, settings)
    if not changed:
        return link  # nothing to save, nothing to record
    for name, value in settings.items():
        setattr(link, name, value)
    link.save(update_fields=list(settings))
    _audit(user, AuditAction.KNOWLEDGE_CHANGED, _target_of(link), link.knowledge_base, changed)
    return link


@transaction.atomic
def knowledge_link_remove(*, link: AgentKnowledge | SystemKnowledge, user: Any) -> None:
    """Detach one knowledge base (the base and its documents stay)."""
    _refuse_hidden([link.knowledge_base], _seen(user, [link.knowledge_base]), field="knowledge_base")
    _audit(user, AuditAction.KNOWLEDGE_DETACHED, _target_of(link), link.knowledge_base)
    link.delete()


def knowledge_links(target: Agent | AgentSystem) -> list[Any]:
    model, owner = _links(target)
    return list(model.objects.filter(**owner).select_related("knowledge_base"))


def knowledge_link_count(target: Agent | AgentSystem) -> int:
    """How many knowledge bases ``target`` uses, whoever may see them."""
    model, owner = _links(target)
    return model.objects.filter(**owner).count()


def visible_knowledge_links(target: Agent | AgentSystem, user: Any) -> QuerySet:
    """The attachments of ``target`` whose base ``user`` may see (the others are not theirs to
    read or change), by base name."""
    model, owner = _links(target)
    bases = visible_to(user, KnowledgeBase.objects.all())
    return model.objects.filter(**owner, knowledge_base__in=bases).select_related("knowledge_base")


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
    link = SystemKnowledge.objects.create(system=system, knowledge_base=base, mode="auto")
    settings = {name: getattr(link, name) for name in SETTINGS}
    _audit(user, AuditAction.KNOWLEDGE_ATTACHED, system, base, settings_text(settings))
    return base


@transaction.atomic
def knowledge_base_remove(*, knowledge_base: KnowledgeBase, user: Any) -> None:
    """Delete a knowledge base (rag's service) and record who did it in the builder's audit log."""
    audit_record(actor=user, action=AuditAction.DELETED, obj=knowledge_base)
    knowledge_base_delete(knowledge_base=knowledge_base)
