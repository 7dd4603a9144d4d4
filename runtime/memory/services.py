"""Memory services: entries owned by one scope, written and read by key.

Each service takes the scope's owner explicitly (:class:`MemoryOwner`); the
run-bound helpers (:func:`owner_for_context`) derive owners from server-side
run state only, never from anything a model or an API caller chose.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from runtime.access import memory_namespace
from runtime.channels.identity import identified_visitor_key
from runtime.models import AgentConversation, MemoryEntry, MemoryScope

if TYPE_CHECKING:
    from datetime import datetime

    from runtime.interfaces import RunContext

MAX_KEY_LENGTH = 200
MAX_VALUE_CHARS = 8_000
SCOPES = tuple(MemoryScope.values)


class MemoryInputError(ValueError):
    """Bad input to a memory service; ``field`` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class MemoryOwner:
    """Who owns a scope: exactly one of the three ids, matching ``scope``."""

    scope: str
    conversation_id: Any = None
    user_id: int | None = None
    system_key: str | None = None
    # user scope: whose agents share it (``runtime.access.memory_namespace``; "" for code agents)
    namespace: str = ""
    # user scope of a web widget's identified visitor (no account): "<channel id>:<their user id>"
    visitor: str = ""

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise MemoryInputError(
                "scope", f"Unknown memory scope {self.scope!r}; use one of {', '.join(SCOPES)}."
            )
        needed = {
            "conversation": self.conversation_id,
            "user": self.user_id or self.visitor or None,
            "system": self.system_key,
        }[self.scope]
        if needed in (None, ""):
            what = {"conversation": "a conversation", "user": "a signed-in user", "system": "a system key"}
            raise MemoryInputError(
                "scope", f"{self.scope} memory needs {what[self.scope]}, and none was given."
            )

    def filter(self) -> Q:
        # The fields that do not belong to the scope are NULL by construction, so
        # filtering on all three keeps scopes from ever overlapping.
        return Q(
            scope=self.scope,
            conversation_id=self.conversation_id if self.scope == "conversation" else None,
            user_id=self.user_id if self.scope == "user" else None,
            visitor=self.visitor if self.scope == "user" else "",
            namespace=self.namespace if self.scope == "user" else "",
            system_key=self.system_key if self.scope == "system" else None,
        )

    def fields(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "conversation_id": self.conversation_id if self.scope == "conversation" else None,
            "user_id": self.user_id if self.scope == "user" else None,
            "visitor": self.visitor if self.scope == "user" else "",
            "namespace": self.namespace if self.scope == "user" else "",
            "system_key": self.system_key if self.scope == "system" else None,
        }


def _live() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


async def run_db(ctx: RunContext | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ORM code from a run: on the worker's database executor when the run has one
    (its connections are checked and recycled there), else through ``sync_to_async``."""
    env = getattr(ctx, "_env", None)
    if env is not None and hasattr(env, "db"):
        return await env.db(fn, *args, **kwargs)
    return await sync_to_async(fn)(*args, **kwargs)


def _clean_key(key: Any) -> str:
    if not isinstance(key, str) or not key.strip():
        raise MemoryInputError(
            "key", "A memory key must be a non-empty string, such as 'preferred_language'."
        )
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH:
        raise MemoryInputError(
            "key", f"A memory key may have at most {MAX_KEY_LENGTH} characters; use a shorter key."
        )
    return key


def _check_value(value: Any) -> None:
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError):
        raise MemoryInputError(
            "value", "A memory value must be JSON (text, numbers, lists or objects)."
        ) from None
    if len(encoded) > MAX_VALUE_CHARS:
        raise MemoryInputError(
            "value", f"A memory value may be at most {MAX_VALUE_CHARS} characters of JSON; shorten it."
        )


def memory_remember(
    *,
    owner: MemoryOwner,
    key: str,
    value: Any,
    agent_key: str = "",
    ttl_seconds: int | None = None,
    expires_at: datetime | None = None,
) -> MemoryEntry:
    """Create or replace the entry ``key`` in ``owner``'s scope (one entry per key per scope)."""
    key = _clean_key(key)
    _check_value(value)
    if ttl_seconds is not None:
        if ttl_seconds <= 0:
            raise MemoryInputError(
                "ttl_seconds", "ttl_seconds must be positive; leave it out to keep the entry."
            )
        expires_at = timezone.now() + timedelta(seconds=ttl_seconds)
    defaults = {"value": value, "agent_key": agent_key, "expires_at": expires_at}
    # Two writers racing on a new key: the loser's INSERT hits the unique
    # constraint (NULLs are not distinct), so it retries as an UPDATE.
    for attempt in range(2):
        try:
            with transaction.atomic():
                entry, _ = MemoryEntry.objects.update_or_create(**owner.fields(), key=key, defaults=defaults)
            return entry
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def memory_recall(*, owner: MemoryOwner, key: str) -> MemoryEntry | None:
    """The live entry ``key`` in ``owner``'s scope; expired entries are never returned."""
    return MemoryEntry.objects.filter(owner.filter(), _live(), key=_clean_key(key)).first()


def memory_forget(*, owner: MemoryOwner, key: str) -> bool:
    """Delete ``key`` from ``owner``'s scope; True when something was deleted."""
    deleted, _ = MemoryEntry.objects.filter(owner.filter(), key=_clean_key(key)).delete()
    return deleted > 0


def memory_list(*, owners: list[MemoryOwner], limit: int = 200) -> list[MemoryEntry]:
    """Live entries of the given scopes, most recently updated first."""
    if not owners:
        return []
    scope_q = Q()
    for owner in owners:
        scope_q |= owner.filter()
    return list(MemoryEntry.objects.filter(scope_q, _live()).order_by("-updated_at")[:limit])


def memory_purge_expired() -> int:
    """Delete expired entries (reads already ignore them; this only reclaims space)."""
    deleted, _ = MemoryEntry.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


# -- scopes of a run -----------------------------------------------------------


def _system_key_for(ctx: RunContext) -> str:
    """The multi-agent system a run belongs to, from server-side state only.

    Run metadata comes from API callers, so it is never trusted here. The system
    is the entry agent of the call chain; an agent that took a conversation over
    by hand-off keeps the system of the conversation's entry agent.
    """
    if ctx.depth == 0 and ctx.conversation_id:
        row = (
            AgentConversation.objects.filter(pk=ctx.conversation_id)
            .values("agent_key", "active_agent_key")
            .first()
        )
        if row and row["active_agent_key"] == ctx.agent_key and row["agent_key"]:
            return row["agent_key"]
    return ctx.call_chain[0] if ctx.call_chain else ctx.agent_key


def owner_for_context(ctx: RunContext, scope: str, *, system_key: str | None = None) -> MemoryOwner:
    """The owner of ``scope`` for this run; raises MemoryInputError when the run has none (anonymous user)."""
    if scope == "conversation":
        return MemoryOwner(scope=scope, conversation_id=ctx.conversation_id)
    if scope == "user":
        # One owner's agents never see what a user told another owner's agents.
        if ctx.user_id:
            return MemoryOwner(scope=scope, user_id=ctx.user_id, namespace=memory_namespace(ctx.agent_key))
        # A web widget's identified visitor (the host site signed their id) has user memory across
        # devices, keyed by the widget and that id; an anonymous visitor has none.
        visitor = identified_visitor_key(ctx.anonymous_session_id)
        namespace = memory_namespace(ctx.agent_key) if visitor else ""
        return MemoryOwner(scope=scope, visitor=visitor, namespace=namespace)
    if scope == "system":
        return MemoryOwner(scope=scope, system_key=system_key or _system_key_for(ctx))
    return MemoryOwner(scope=scope)  # raises the unknown-scope error


def owners_for_context(ctx: RunContext, scopes: tuple[str, ...], system_key: str | None) -> list[MemoryOwner]:
    owners = []
    for scope in scopes:
        try:
            owners.append(owner_for_context(ctx, scope, system_key=system_key))
        except MemoryInputError:
            continue  # e.g. no user memory for an anonymous widget visitor
    return owners
