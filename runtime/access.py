"""Who may run, edit and see which agent: the runtime's one seam to the app that stores agents.

The runtime knows code agents only; it must not import the builder. The app that stores
agents in the database (the builder) registers an :class:`AgentAccess` in its
``AppConfig.ready`` (``set_agent_access``), answering from its own access helper
(``builder/access.py``). Without one, every agent is a code agent.

The rules (README, "Who may run what"):

- *Editors* of an agent may run its drafts, choose its model and send any message role.
  Editors are: server code calling the services without a user or an anonymous session;
  superusers; for a stored agent or system, whoever its access helper lets edit it (its owners
  and editors). Code agents have no other editors.
- *Testers* (viewers of a stored agent or system, and every editor) may run its drafts too, with
  the agent's own model and user messages only: the playground for someone it was shared with.
- Everyone else (other users, staff included, and anonymous sessions) may run code agents and
  published stored agents and systems, and nothing else: a never-published one is reported
  exactly like an unknown key, so its existence does not leak.
- The admin shows a staff user the runs, conversations, events and memory of the agents they may
  edit, plus their own runs and conversations; superusers see everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from django.db.models import Q

from runtime import registry

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True)
class StoredAgent:
    """What the runtime needs to know about an agent or system stored by another app."""

    published: bool
    # "owner:<id>": whose agents share user-scope memory (one owner's agents never see another's).
    memory_namespace: str


class AgentAccess(Protocol):
    def stored_agent(self, agent_key: str) -> StoredAgent | None:
        """The stored agent or system with this key, or None (a code agent, or unknown)."""

    def can_edit(self, user: Any, agent_key: str) -> bool:
        """May ``user`` (signed in) edit the stored agent or system ``agent_key``?"""

    def editable_keys(self, user: Any) -> Iterable[Any]:
        """Querysets (or lists) of the agent and system keys ``user`` may edit, for admin filters."""

    def can_test(self, user: Any, agent_key: str) -> bool:
        """May ``user`` (signed in) run the drafts of the stored agent or system ``agent_key``?"""

    def can_own(self, user: Any, agent_key: str) -> bool:
        """Is ``user`` (signed in) an owner of the stored agent or system ``agent_key``?"""


_access: AgentAccess | None = None


def set_agent_access(access: AgentAccess | None) -> None:
    global _access
    _access = access


def _signed_in(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def stored_agent(agent_key: str) -> StoredAgent | None:
    if _access is None or registry.is_code_agent(agent_key):
        return None
    return _access.stored_agent(agent_key)


def may_edit_agent(*, agent_key: str, user: Any = None, anonymous_session_id: Any = None) -> bool:
    """Editors may run drafts, choose the model and send any message role (module docstring)."""
    if not _signed_in(user):
        return anonymous_session_id is None  # server code, not a visitor
    if user.is_superuser:
        return True
    if _access is None or registry.is_code_agent(agent_key):
        return False
    return _access.can_edit(user, agent_key)


def may_test_agent(*, agent_key: str, user: Any = None, anonymous_session_id: Any = None) -> bool:
    """Testers may run drafts (module docstring); every editor is a tester."""
    if not _signed_in(user):
        return anonymous_session_id is None  # server code, not a visitor
    if user.is_superuser:
        return True
    if _access is None or registry.is_code_agent(agent_key):
        return False
    can_test = getattr(_access, "can_test", None)  # an access without testers: editors only
    return bool(can_test(user, agent_key)) if can_test else _access.can_edit(user, agent_key)


def may_manage_channels(*, agent_key: str, user: Any = None) -> bool:
    """Owners manage an agent's channels (web widget, API keys); for a code agent, superusers."""
    if not _signed_in(user):
        return False
    if user.is_superuser:
        return True
    if _access is None or registry.is_code_agent(agent_key):
        return False
    can_own = getattr(_access, "can_own", None)  # an access without owners: its editors
    return bool(can_own(user, agent_key)) if can_own else _access.can_edit(user, agent_key)


def may_run_published(agent_key: str, agent_version: str = "") -> bool:
    """May someone who is not an editor run this key (as pinned)? Code agents: yes."""
    stored = stored_agent(agent_key)
    if stored is None:
        return True
    return stored.published and not agent_version.startswith(("draft:", "system-draft:"))


def memory_namespace(agent_key: str) -> str:
    stored = stored_agent(agent_key)
    return stored.memory_namespace if stored is not None else ""


# -- what the admin shows ---------------------------------------------------------


def _editable_keys_q(user: Any, field: str) -> Q:
    q = Q(pk__in=[])
    if _access is not None:
        for keys in _access.editable_keys(user):
            q |= Q(**{f"{field}__in": keys})
    return q


def editable_agent_keys(user: Any) -> list[str]:
    """The stored agent and system keys ``user`` may edit, as a list (for array lookups)."""
    keys: list[str] = []
    if _access is not None:
        for group in _access.editable_keys(user):
            # rows may be plain keys or one-column dicts (``.values("slug")``)
            keys.extend(str(next(iter(key.values()))) if isinstance(key, dict) else str(key) for key in group)
    return keys


def visible_runs_q(user: Any, prefix: str = "") -> Q | None:
    """Filter for the runs (``prefix`` = path to the run, e.g. ``"run__"``) ``user`` may see; None: all."""
    if user.is_superuser:
        return None
    return Q(**{f"{prefix}user": user}) | _editable_keys_q(user, f"{prefix}agent_key")


def visible_conversations_q(user: Any, prefix: str = "") -> Q | None:
    return visible_runs_q(user, prefix)  # the same fields: user and agent_key


def visible_memory_q(user: Any) -> Q | None:
    if user.is_superuser:
        return None
    return (
        _editable_keys_q(user, "agent_key")
        | _editable_keys_q(user, "system_key")
        | Q(scope="user", namespace=f"owner:{user.pk}")
    )


def may_manage_run(user: Any, run: Any) -> bool:
    """Cancel or retry ``run`` from the admin: superusers, editors of its agent, or its own user."""
    if not getattr(user, "is_staff", False):
        return False
    if user.is_superuser or (run.user_id is not None and run.user_id == user.pk):
        return True
    return may_edit_agent(agent_key=run.agent_key, user=user)
