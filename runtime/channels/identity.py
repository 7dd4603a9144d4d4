"""Who an anonymous session is, for the parts of the runtime that must not import the HTTP API
(memory, the engine): the session row, and a widget's identified visitor.

The keys live in the session's metadata, written when it was minted (runtime/channels/visitors.py
for our widget, accounts' anonymous-session mint for the general path).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps

from runtime import conf

SESSION_KEY = "widget_channel"  # the widget channel a visitor session belongs to (and a run counted against)
VISITOR_KEY = "visitor"  # an identified visitor's user id on the host site
ORIGIN_KEY = "origin"  # the Origin a session was minted from
SAME_ORIGIN_KEY = "same_origin"  # minted from a page of this server (the Publish page's preview)


def anonymous_session(session_id: Any) -> Any:
    """The anonymous session row (``ANONYMOUS_SESSION_MODEL``), or None."""
    label = conf.get("ANONYMOUS_SESSION_MODEL")
    if not label or not session_id:
        return None
    return apps.get_model(label)._default_manager.filter(pk=session_id).first()


def identified_visitor_key(session_id: Any) -> str:
    """``"<channel id>:<host site's user id>"`` for a widget's identified visitor, else "".

    The host site's user id is only known to be theirs within one widget (each widget has its
    own identity secret), so the widget is part of the key: user 42 of one site is not user 42
    of another. The session is the one the identity token was verified against at mint.
    """
    session = anonymous_session(session_id)
    metadata = (getattr(session, "metadata", None) or {}) if session is not None else {}
    channel, subject = metadata.get(SESSION_KEY), metadata.get(VISITOR_KEY)
    if not channel or not isinstance(subject, str) or not subject:
        return ""
    return f"{channel}:{subject}"
