"""Writes on runs and conversations. Views, the API, admin actions and commands all call these."""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from runtime import conf, registry
from runtime.access import may_edit_agent, may_test_agent
from runtime.bus import get_bus
from runtime.engine.queue import get_queue
from runtime.events import append_events
from runtime.messages import RESERVE_SQL, numbered_insert
from runtime.models import TERMINAL_STATUSES, AgentConversation, AgentRun, RunStatus
from runtime.multi_agent import resolve_active_agent

logger = logging.getLogger(__name__)

MESSAGE_ROLES = {"user", "assistant", "system", "tool"}
MAX_MESSAGES = 500
MAX_MESSAGE_CHARS = 200_000


@dataclass
class RunInputError(ValueError):
    """Bad input for a run; ``field`` names what to fix."""

    field: str
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RunAlreadyFinished(Exception):
    def __init__(self, run: AgentRun) -> None:
        super().__init__(f"This run already finished with status {run.status!r}; there is nothing to cancel.")
        self.run = run


def caller_for(*, user=None, anonymous_session_id=None) -> str:
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    if anonymous_session_id:
        return f"anon:{anonymous_session_id}"
    return "system"


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise RunInputError("messages", 'Send a non-empty list, e.g. [{"role": "user", "content": "Hello"}].')
    if len(messages) > MAX_MESSAGES:
        raise RunInputError("messages", f"At most {MAX_MESSAGES} messages per run.")
    cleaned = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RunInputError(where, 'Each message must be an object with "role" and "content".')
        role = message.get("role")
        if role not in MESSAGE_ROLES:
            raise RunInputError(
                f"{where}.role", f"Use one of {', '.join(sorted(MESSAGE_ROLES))}; got {role!r}."
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise RunInputError(f"{where}.content", "Content must be text (or a list of content parts).")
        if isinstance(content, str) and len(content) > MAX_MESSAGE_CHARS:
            raise RunInputError(f"{where}.content", f"At most {MAX_MESSAGE_CHARS} characters.")
        if isinstance(content, str) and "\x00" in content:
            raise RunInputError(
                f"{where}.content", "Remove the NUL character (\\u0000); text cannot hold it."
            )
        if role == "user" and not content:
            raise RunInputError(f"{where}.content", "A user message needs some content.")
        for key in ("name", "tool_call_id"):
            value = message.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > 200):
                raise RunInputError(f"{where}.{key}", "Use text of at most 200 characters.")
        tool_calls = message.get("tool_calls")
        if tool_calls is not None and (
            not isinstance(tool_calls, list) or not all(isinstance(call, dict) for call in tool_calls)
        ):
            raise RunInputError(f"{where}.tool_calls", "Tool calls must be a list of objects.")
        cleaned.append(
            {
                k: v
                for k, v in message.items()
                if k in {"role", "content", "tool_calls", "tool_call_id", "name"}
            }
        )
    return cleaned


def conversation_create(
    *, agent_key: str, user=None, anonymous_session_id=None, title: str = "", metadata: dict | None = None
) -> AgentConversation:
    if not registry.agent_exists(agent_key):
        raise RunInputError(
            "agent_key", f"No agent is registered with the key {agent_key!r}.", code="unknown_agent"
        )
    from runtime import policy  # cycle: runtime.policy imports this module

    tester = may_test_agent(agent_key=agent_key, user=user, anonymous_session_id=anonymous_session_id)
    policy.check_agent(agent_key=agent_key, agent_version="", editor=tester)
    return AgentConversation.objects.create(
        agent_key=agent_key,
        user=user if getattr(user, "is_authenticated", False) else None,
        anonymous_session_id=anonymous_session_id,
        title=title[:300],
        metadata=metadata or {},
    )


def run_create(
    *,
    agent_key: str,
    messages: Any,
    user=None,
    anonymous_session_id=None,
    conversation: AgentConversation | None = None,
    params: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    model: str = "",
    agent_version: str = "",
    parent_run: AgentRun | None = None,
    max_attempts: int | None = None,
    channel_caller: str = "",
    history: Any = None,
) -> tuple[AgentRun, bool]:
    """Validate, store the user's messages, create the run and enqueue it atomically.

    Returns ``(run, created)``; ``created`` is False when the caller already sent
    this idempotency key and the first run is returned instead.

    ``channel_caller`` names a caller that is neither a user nor an anonymous session (an API
    key: ``"apikey:<id>"``, runtime/channels/); such a caller is never an editor. ``history``
    (with no ``conversation``) is the earlier turns a stateless client sends with each request
    (the OpenAI-compatible endpoint): user and assistant text only, stored in the new
    conversation before ``messages`` and given to the agent as part of this run's input.

    A top-level run of an anonymous session is admitted by its agent's web-widget channel, whose
    limits apply (``runtime.channels.admission``); a refusal is a ``VisitorRefused``.
    """
    caller = channel_caller or caller_for(user=user, anonymous_session_id=anonymous_session_id)
    if idempotency_key:
        existing = AgentRun.objects.filter(caller=caller, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    if not isinstance(agent_key, str) or not agent_key:
        raise RunInputError("agent_key", "Give the key of the agent to run.")
    if not registry.agent_exists(agent_key):
        raise RunInputError(
            "agent_key", f"No agent is registered with the key {agent_key!r}.", code="unknown_agent"
        )
    cleaned = validate_messages(messages)
    earlier = _validate_history(history, conversation)
    if len(earlier) + len(cleaned) > MAX_MESSAGES:
        raise RunInputError("messages", f"At most {MAX_MESSAGES} messages per run.")
    if parent_run is None:
        # Who may run what, with which model and which message roles: runtime/access.py, README.
        from runtime import policy  # cycle: runtime.policy imports this module

        # a channel's caller (an API key, a widget visitor) is never an editor or a tester
        editor = not channel_caller and may_edit_agent(
            agent_key=agent_key, user=user, anonymous_session_id=anonymous_session_id
        )
        # viewers of a stored agent may run its drafts (the playground); model and roles stay editors'
        tester = editor or (
            not channel_caller
            and may_test_agent(agent_key=agent_key, user=user, anonymous_session_id=anonymous_session_id)
        )
        policy.check_agent(agent_key=agent_key, agent_version=agent_version or "", editor=tester)
        policy.check_model(model=model or "", agent_key=agent_key, editor=editor)
        if not editor:
            policy.check_public_messages(cleaned, conversation)
    if params is not None and not isinstance(params, dict):
        raise RunInputError("params", "Params must be a JSON object.")
    if metadata is not None and not isinstance(metadata, dict):
        raise RunInputError("metadata", "Metadata must be a JSON object.")
    if conversation is not None and conversation.agent_key != agent_key and not conversation.active_agent_key:
        raise RunInputError(
            "conversation_id",
            f"This conversation belongs to the agent {conversation.agent_key!r}, not {agent_key!r}.",
        )
    requested_key = agent_key
    if conversation is not None:
        # After a hand-off, the specialist holding the conversation answers.
        agent_key = resolve_active_agent(conversation, agent_key)
    owner = user if getattr(user, "is_authenticated", False) else None
    metadata = dict(metadata or {})
    admission: Any = contextlib.nullcontext(None)
    if anonymous_session_id and owner is None and parent_run is None and not channel_caller:
        # Anonymous visitors run agents only through a widget channel, within its limits,
        # whichever entry point they came in by (runtime/channels/admission.py).
        from runtime.channels.admission import visitor_admission  # cycle: it imports this module

        admission = visitor_admission(
            anonymous_session_id=anonymous_session_id, agent_key=requested_key, metadata=metadata
        )
    with admission as admitted:
        run, created = _create_run(
            agent_key=agent_key,
            conversation=conversation,
            parent_run=parent_run,
            owner=owner,
            anonymous_session_id=anonymous_session_id,
            messages=[*earlier, *cleaned],
            params=params,
            metadata=metadata,
            model=model,
            agent_version=agent_version,
            caller=caller,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
            recheck_idempotency=admitted is not None,
        )
        if admitted is not None:
            admitted(run, created)
    return run, created


def _create_run(
    *,
    agent_key: str,
    conversation: AgentConversation | None,
    parent_run: AgentRun | None,
    owner: Any,
    anonymous_session_id: Any,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None,
    metadata: dict[str, Any],
    model: str,
    agent_version: str,
    caller: str,
    idempotency_key: str | None,
    max_attempts: int | None,
    recheck_idempotency: bool = False,
) -> tuple[AgentRun, bool]:
    if idempotency_key and recheck_idempotency:
        # again under the visitor's lock: the first check ran before it was taken
        existing = AgentRun.objects.filter(caller=caller, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    new_conversation = conversation is None
    if new_conversation:
        conversation = AgentConversation(
            agent_key=agent_key,
            user=owner,
            anonymous_session_id=anonymous_session_id,
            title=_title_from(messages),
        )
    run = AgentRun(
        agent_key=agent_key,
        conversation=conversation,
        parent_run=parent_run,
        user=owner,
        anonymous_session_id=anonymous_session_id,
        input={"messages": messages, "params": params or {}},
        metadata=metadata,
        model=model or "",
        agent_version=agent_version or "",
        caller=caller,
        idempotency_key=idempotency_key or None,
        max_attempts=max_attempts or conf.get("MAX_RETRIES") + 1,
        available_at=timezone.now(),
    )
    # Inside a caller's transaction a savepoint keeps a failed insert from breaking it.
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with guard:
            _insert_run(conversation, run, messages, new_conversation=new_conversation)
    except IntegrityError:
        # Two requests raced with the same idempotency key: the other one won.
        if idempotency_key:
            existing = AgentRun.objects.filter(caller=caller, idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing, False
        raise
    return run, True


def _validate_history(history: Any, conversation: AgentConversation | None) -> list[dict[str, Any]]:
    if not history:
        return []
    if conversation is not None:
        raise RunInputError("history", "Earlier turns can only start a new conversation.")
    cleaned = validate_messages(history)
    for index, message in enumerate(cleaned):
        if message["role"] not in {"user", "assistant"} or message.get("tool_calls"):
            raise RunInputError(
                f"messages[{index}].role", "Earlier turns may be user or assistant text only."
            )
    return cleaned


def _insert_run(
    conversation: AgentConversation, run: AgentRun, messages: list[dict[str, Any]], *, new_conversation: bool
) -> None:
    """Conversation (if new), run, messages and enqueue in one statement: atomic without BEGIN/COMMIT.

    This is the hot path of ``POST runs/``; one round trip instead of seven.
    """
    count = len(messages)
    if new_conversation:
        conversation.last_message_seq = count
        insert_conversation, base_params = _model_insert(conversation)
        seq_base = f"{insert_conversation} RETURNING 0 AS base"
    else:
        seq_base, base_params = RESERVE_SQL, [count, str(conversation.pk), count]
    insert_run, run_params = _model_insert(run)
    insert_messages, message_params = numbered_insert(conversation.pk, run.pk, messages)
    queue = get_queue()
    enqueue = queue.enqueue_sql(run)
    select, select_params = enqueue or ("1", [])
    sql = (
        f"WITH seq_base AS ({seq_base}), new_run AS ({insert_run}), new_messages AS ({insert_messages}) "
        f"SELECT {select}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*base_params, *run_params, *message_params, *select_params])
        if enqueue is None:
            queue.enqueue(cursor, run)
    for obj in (conversation, run):
        obj._state.adding = False
        obj._state.db = connection.alias


def _model_insert(obj: Any) -> tuple[str, list[Any]]:
    """An INSERT of every column of ``obj``, with Django's own value preparation (not run)."""
    sql, fields = _insert_template(type(obj))
    return sql, [field.get_db_prep_save(field.pre_save(obj, True), connection=connection) for field in fields]


@functools.cache
def _insert_template(model: type) -> tuple[str, tuple[Any, ...]]:
    # Built once per model: Django's insert compiler spent ~0.25 ms per row on this text.
    opts = model._meta
    fields = tuple(f for f in opts.local_concrete_fields if not f.generated and f is not opts.auto_field)
    if any(f.has_db_default() for f in fields):
        raise ImproperlyConfigured(
            f"{model.__name__} has a db_default; its insert needs DEFAULT, not a value."
        )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES ({placeholders})", fields  # noqa: S608


def _title_from(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        if message["role"] == "user" and isinstance(message.get("content"), str):
            text = " ".join(message["content"].split())
            return text[:77] + "..." if len(text) > 80 else text
    return ""


def run_cancel(*, run: AgentRun) -> AgentRun:
    """Cancel a run: a queued one never starts; a running one stops within one heartbeat."""
    with transaction.atomic():
        locked = AgentRun.objects.select_for_update().get(pk=run.pk)
        if locked.status in TERMINAL_STATUSES:
            raise RunAlreadyFinished(locked)
        now = timezone.now()
        with connection.cursor() as cursor:
            if locked.status == RunStatus.QUEUED:
                AgentRun.objects.filter(pk=run.pk).update(
                    status=RunStatus.CANCELLED, cancel_requested_at=now, finished_at=now
                )
                append_events(
                    str(run.pk),
                    [("run.cancelled", {"reason": "cancelled before it started"})],
                    attempt=locked.attempt,
                    lease_token=None,
                    cursor=cursor,
                )
            else:
                AgentRun.objects.filter(pk=run.pk).update(cancel_requested_at=now)
                get_bus().notify_cancel(cursor, str(run.pk))
        # Sub-agents of a cancelled run are cancelled with it.
        for child in AgentRun.objects.filter(
            parent_run=run, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
        ):
            with contextlib.suppress(RunAlreadyFinished):
                run_cancel(run=child)
    run.refresh_from_db()
    return run


def run_retry(*, run: AgentRun, user=None) -> AgentRun:
    """Start a new run with the same input (the admin's and the playground's "retry")."""
    if not run.is_terminal:
        raise RunInputError("run", "Only a finished run can be retried; cancel it first.")
    new_run, _ = run_create(
        agent_key=run.agent_key,
        messages=run.input.get("messages", []),
        user=user or run.user,
        anonymous_session_id=run.anonymous_session_id,
        conversation=run.conversation,
        params=run.input.get("params") or {},
        metadata={**run.metadata, "retry_of": str(run.pk)},
        model=run.model,
        agent_version=run.agent_version,
        # a run an API key started is retried as that key's: never as an editor's
        channel_caller=run.caller if run.caller.startswith("apikey:") else "",
    )
    return new_run
