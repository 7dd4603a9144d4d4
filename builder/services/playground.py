"""The playground: send a turn to a draft, a version or a system, and read turns back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction

from builder.models import Agent, AgentSystem
from builder.schema import ConfigError
from runtime.attachments import (
    AttachedFile,
    Attachment,
    AttachmentRefused,
    read_attachments,
    split_attachments,
    with_attachments,
)
from runtime.models import AgentConversation, AgentEvent, AgentMessage, AgentRun
from runtime.services import RunInputError, caller_for, conversation_create, run_create

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

MAX_MESSAGE = 20_000


def playground_pin(
    *, agent: Agent | None = None, system: AgentSystem | None = None, target: str = "draft"
) -> str:
    """What the run will execute: ``draft`` (the saved draft now), a version number, or a system mode."""
    if system is not None:
        return f"system:{system.public_id}" if target == "published" else f"system-draft:{system.public_id}"
    assert agent is not None
    if target in ("", "draft"):
        return f"draft:{agent.public_id}@{agent.draft.revision}"
    version = agent.versions.filter(number=int(target)).first() if target.isdigit() else None
    if version is None:
        raise ConfigError(
            {"target": f"Version {target} does not exist; pick the draft or a published version."}
        )
    return version.pin


def playground_send(
    *,
    user: AbstractBaseUser,
    text: str,
    agent: Agent | None = None,
    system: AgentSystem | None = None,
    target: str = "draft",
    conversation: AgentConversation | None = None,
    replace_last: bool = False,
    idempotency_key: str | None = None,
    files: Sequence[Any] = (),
) -> AgentRun:
    """Start one playground turn. ``replace_last`` drops the last user message and what followed
    (retry or edit of the last message) before sending ``text``; the files attached to the
    dropped message go with the new one unless ``files`` are sent. A send repeated with the same
    ``idempotency_key`` (a double click, a retried request) returns the run the first one started.

    Attached ``files`` are read first (``runtime.attachments``: type sniffed, text extracted in a
    contained child process, caps checked), outside any transaction; a file that cannot be used
    raises ``ConfigError`` on ``files`` and nothing is written."""
    if idempotency_key:
        existing = AgentRun.objects.filter(
            caller=caller_for(user=user), idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return existing
    text = (text or "").strip()
    if not text and not files and not replace_last:
        raise ConfigError({"message": "Type a message first."})
    if len(text) > MAX_MESSAGE:
        raise ConfigError({"message": f"Keep the message under {MAX_MESSAGE} characters."})
    pin = playground_pin(agent=agent, system=system, target=target)
    try:
        attachments = read_attachments(files)
    except AttachmentRefused as exc:
        raise ConfigError({"files": " ".join(exc.messages)}) from None
    return _playground_start(
        user=user,
        text=text,
        key=system.slug if system is not None else agent.slug,  # type: ignore[union-attr]
        pin=pin,
        target=target,
        conversation=conversation,
        replace_last=replace_last,
        idempotency_key=idempotency_key,
        attachments=attachments,
    )


@transaction.atomic
def _playground_start(
    *,
    user: AbstractBaseUser,
    text: str,
    key: str,
    pin: str,
    target: str,
    conversation: AgentConversation | None,
    replace_last: bool,
    idempotency_key: str | None,
    attachments: list[Attachment],
) -> AgentRun:
    blocks: list[Attachment] | str = attachments
    try:
        if conversation is None:
            title = text or ", ".join(a.name for a in attachments)
            conversation = conversation_create(
                agent_key=key, user=user, title=title[:80], metadata={"playground": True, "target": target}
            )
        elif replace_last:
            last = conversation.messages.filter(role="user").order_by("-seq").first()
            if last is not None:
                if not attachments:
                    blocks = split_attachments(last.content).blocks
                AgentMessage.objects.filter(conversation=conversation, seq__gte=last.seq).delete()
        content = with_attachments(text, blocks)
        if not content:
            raise ConfigError({"message": "Type a message first."})
        run, _ = run_create(
            agent_key=key,
            messages=[{"role": "user", "content": content}],
            user=user,
            conversation=conversation,
            agent_version=pin,
            metadata={"source": "playground"},
            idempotency_key=idempotency_key,
        )
    except RunInputError as exc:
        raise ConfigError({"message": str(exc)}) from None
    return run


@dataclass
class Turn:
    run: AgentRun
    user_text: str
    replies: list[dict[str, Any]] = field(default_factory=list)
    # passages the answer was given (the run's ``retrieval`` events), each linking to its place
    citations: list[dict[str, Any]] = field(default_factory=list)
    # documents that were still being indexed when the knowledge was searched
    indexing: int = 0
    # sub-agents that could not answer (gone, failed): shown in the turn, never hidden in the steps
    failed_steps: list[dict[str, str]] = field(default_factory=list)
    # the owner's view only (builder/owner_view.py): tool calls, retrievals, errors, and feedback
    steps: list[dict[str, Any]] = field(default_factory=list)
    feedback: int = 0
    # files attached to the user's message (their text is in the message the model read)
    attachments: list[AttachedFile] = field(default_factory=list)


def _citations(run_ids: list[Any]) -> dict[Any, tuple[list[dict[str, Any]], int]]:
    found: dict[Any, tuple[list[dict[str, Any]], int]] = {}
    events = list(
        AgentEvent.objects.filter(run_id__in=run_ids, event_type="retrieval")
        .order_by("seq")
        .values_list("run_id", "attempt", "payload")
    )
    # a retried run searched again: only its last attempt's searches gave the answer
    last_attempt = {run_id: attempt for run_id, attempt, _ in events}
    for run_id, attempt, payload in events:
        if attempt != last_attempt[run_id]:
            continue
        citations, pending = found.get(run_id, ([], 0))
        payload = payload or {}
        found[run_id] = (
            citations + list(payload.get("citations") or []),
            max(pending, int(payload.get("pending_documents") or 0)),
        )
    return found


def _failed_children(run_ids: list[Any]) -> dict[Any, list[dict[str, str]]]:
    failed: dict[Any, list[dict[str, str]]] = {}
    rows = AgentRun.objects.filter(parent_run_id__in=run_ids, status__in=["failed", "timed_out"])
    for parent_id, key, error in rows.order_by("created_at").values_list(
        "parent_run_id", "agent_key", "error"
    ):
        message = (error or {}).get("message") or "It failed."
        failed.setdefault(parent_id, []).append({"agent_key": key, "message": message})
    return failed


def playground_turns(*, conversation: AgentConversation) -> list[Turn]:
    """The conversation as turns: what the user said, what each agent answered, usage per run."""
    runs = list(conversation.runs.filter(parent_run__isnull=True).order_by("created_at"))
    messages = list(conversation.messages.filter(role__in=["user", "assistant"]).order_by("seq"))
    by_run: dict[Any, list[AgentMessage]] = {}
    for message in messages:
        by_run.setdefault(message.run_id, []).append(message)
    failed = _failed_children([run.pk for run in runs])
    turns = []
    citations = _citations([run.pk for run in runs])
    for run in runs:
        rows = by_run.get(run.pk, [])
        user_text = next((m.content for m in rows if m.role == "user"), None)
        if user_text is None:
            continue  # replaced by a retry or an edit of the last message
        replies = [
            {"content": m.content, "agent_key": m.agent_key}
            for m in rows
            if m.role == "assistant" and isinstance(m.content, str) and m.content
        ]
        cited, indexing = citations.get(run.pk, ([], 0))
        said = split_attachments(user_text)
        turns.append(
            Turn(
                run=run,
                user_text=said.text,
                attachments=said.files,
                replies=replies,
                citations=cited,
                indexing=indexing,
                failed_steps=failed.get(run.pk, []),
            )
        )
    return turns


def turn_for_run(*, run: AgentRun) -> Turn:
    rows = list(run.messages.filter(role__in=["user", "assistant"]).order_by("seq"))
    user_text = next((m.content for m in rows if m.role == "user"), "")
    replies = [
        {"content": m.content, "agent_key": m.agent_key} for m in rows if m.role == "assistant" and m.content
    ]
    cited, indexing = _citations([run.pk]).get(run.pk, ([], 0))
    said = split_attachments(user_text)
    return Turn(
        run=run,
        user_text=said.text,
        attachments=said.files,
        replies=replies,
        citations=cited,
        indexing=indexing,
        failed_steps=_failed_children([run.pk]).get(run.pk, []),
    )
