"""Widget visitors: minting and extending visitor tokens, identified visitors, sending messages
and rating answers. Each refusal is a ``ChannelError`` (``runtime.channels.services``); nothing
is written on a refusal.

A visitor is an anonymous session (``ANONYMOUS_SESSION_MODEL``, the machinery the runtime API
already authenticates with ``X-Anonymous-Token`` and ``?anonymous_token=``) whose metadata names
its channel and the origin it was minted from (and, for an identified visitor, the host site's
user id). Its token is short-lived (``WIDGET_VISITOR_TOKEN_TTL_SECONDS``); the widget extends it
while it is still good, and a visitor whose token expired starts afresh as a new visitor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from runtime import access, conf, registry
from runtime.api.permissions import anonymous_session_model
from runtime.attachments import with_attachments
from runtime.channels.admission import VisitorRefused
from runtime.channels.files import widget_files_read
from runtime.channels.identity import ORIGIN_KEY, VISITOR_KEY
from runtime.channels.models import WidgetChannel, WidgetFeedback
from runtime.channels.origins import origin_allowed
from runtime.channels.services import SESSION_KEY, ChannelError
from runtime.models import AgentConversation, AgentRun
from runtime.services import RunInputError, caller_for, run_create

logger = logging.getLogger(__name__)

MAX_WIDGET_MESSAGE_CHARS = 4000
MAX_IDENTITY_SECONDS = 24 * 3600  # how far ahead an identity token's exp may be


def token_ttl() -> timedelta:
    return timedelta(seconds=conf.setting("WIDGET_VISITOR_TOKEN_TTL_SECONDS"))


def _usable_channel(channel: WidgetChannel) -> None:
    if not channel.enabled:
        raise ChannelError(403, "channel_disabled", "This chat is switched off by the site's owner.")
    # Not registry.agent_exists: for a stored agent that builds its whole runtime (tools,
    # knowledge, hand-offs), six queries where two answer "is it published?".
    stored = access.stored_agent(channel.agent_key)
    available = stored.published if stored is not None else registry.is_code_agent(channel.agent_key)
    if not available:
        raise ChannelError(403, "agent_unpublished", "This assistant is not published right now.")


def origin_ok(channel: WidgetChannel, origin: str, own_origin: str = "") -> bool:
    """The browser's ``Origin`` is on the channel's list, or is this server's own (the preview)."""
    return bool(origin) and (origin == own_origin or origin_allowed(origin, channel.allowed_origins))


def identified_visitor(channel: WidgetChannel, user_token: Any) -> str:
    """The host site's user id in ``user_token`` (an HS256 JWT signed with the channel's identity
    secret, with ``sub`` and an ``exp`` at most a day ahead); raises ChannelError otherwise."""
    import jwt  # heavy: PyJWT with cryptography (~40 modules, ~0.3 s); identified visitors only

    def refuse(why: str) -> ChannelError:
        return ChannelError(
            401,
            "identity_invalid",
            f"The visitor's identity token was refused: {why}",
            fields={"user_token": [why]},
        )

    if not isinstance(user_token, str) or len(user_token) > 4096:
        raise refuse("send the JWT your server signed, as text.")
    try:
        claims = jwt.decode(
            user_token, channel.identity_secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise refuse("it has expired; sign a new one when you render the page.") from None
    except jwt.InvalidTokenError:
        raise refuse("it is not signed with this widget's identity secret (or is not a JWT).") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 200 or "\x00" in subject:
        raise refuse("its sub must be your user's id as text (at most 200 characters).")
    if claims["exp"] - timezone.now().timestamp() > MAX_IDENTITY_SECONDS:
        raise refuse("its exp is more than a day ahead; keep identity tokens short-lived.")
    return subject


def visitor_session_mint(
    *, publishable_key: Any, origin: str, own_origin: str = "", user_token: Any = None
) -> tuple[Any, WidgetChannel]:
    """A new visitor of the channel holding ``publishable_key``, if ``origin`` may embed it.

    With ``user_token`` (identified visitors) the host site's user is the same visitor on every
    device: the session of that user id is found again (its expiry renewed), so their
    conversations follow them. Returns ``(anonymous session, channel)``; nothing is written on a
    refusal.
    """
    if not isinstance(publishable_key, str) or not publishable_key or "\x00" in publishable_key:
        raise ChannelError(
            400, "invalid", "Send the widget's publishable key.", fields={"key": ["Required."]}
        )
    channel = WidgetChannel.objects.filter(publishable_key=publishable_key).first()
    if channel is None:
        raise ChannelError(
            404,
            "unknown_key",
            "No widget has this key; copy the snippet again from the agent's Publish page.",
        )
    if not origin:
        raise ChannelError(
            403, "origin_required", "The widget runs in a web page; this request says no Origin."
        )
    if not origin_ok(channel, origin, own_origin):
        raise ChannelError(
            403,
            "origin_not_allowed",
            f"This website ({origin}) is not allowed to use this chat. "
            "Its owner can add it to the allowed origins on the agent's Publish page.",
        )
    _usable_channel(channel)
    model = anonymous_session_model()
    if model is None:
        raise ChannelError(503, "unavailable", "Visitor sessions are not enabled on this server.")
    if user_token is not None:
        return _identified_session(model, channel, identified_visitor(channel, user_token), origin), channel
    session = model._default_manager.create(
        metadata={SESSION_KEY: str(channel.pk), ORIGIN_KEY: origin},
        expires_at=timezone.now() + token_ttl(),
    )
    return session, channel


def _identified_session(model: Any, channel: WidgetChannel, subject: str, origin: str) -> Any:
    with transaction.atomic():
        # the channel row is the lock: two first mints of one user at once make one session
        WidgetChannel.objects.select_for_update().filter(pk=channel.pk).first()
        session = (
            model._default_manager.filter(
                **{f"metadata__{SESSION_KEY}": str(channel.pk), f"metadata__{VISITOR_KEY}": subject}
            )
            .order_by("created_at")
            .first()
        )
        if session is None:
            return model._default_manager.create(
                metadata={SESSION_KEY: str(channel.pk), ORIGIN_KEY: origin, VISITOR_KEY: subject},
                expires_at=timezone.now() + token_ttl(),
            )
        session.expires_at = timezone.now() + token_ttl()
        session.save(update_fields=["expires_at"])
        return session


def channel_for_session(session: Any) -> WidgetChannel:
    """The channel a visitor token belongs to; other anonymous sessions are refused."""
    channel_id = (getattr(session, "metadata", None) or {}).get(SESSION_KEY)
    channel = WidgetChannel.objects.filter(pk=channel_id).first() if channel_id else None
    if channel is None:
        raise ChannelError(
            403, "not_a_visitor", "This token is not a widget visitor token; mint one with the widget's key."
        )
    return channel


def visitor_session_refresh(*, session: Any) -> Any:
    """A later expiry for a visitor whose token is still good (same visitor, same chats).

    The token itself stays: the widget refreshes on every page load, and a visitor with two tabs
    open would otherwise lose the other tab's token (and with it the conversation). A token that
    expired cannot be refreshed; the widget mints a new visitor.
    """
    channel = channel_for_session(session)
    _usable_channel(channel)
    session.expires_at = timezone.now() + token_ttl()
    session.save(update_fields=["expires_at"])
    return session


def widget_message_send(
    *,
    session: Any,
    channel: WidgetChannel,
    text: Any,
    files: Sequence[Any] = (),
    conversation: AgentConversation | None = None,
    idempotency_key: str | None = None,
) -> AgentRun:
    """Start a run of the channel's agent (published version) with the visitor's message.

    The limits (messages per minute and per day, the agent's budget) are checked by
    ``run_create`` for every anonymous visitor, whatever the entry point
    (``runtime.channels.admission``). Attached ``files`` (uploaded files) are checked against
    the same rules and read first (``runtime.channels.files``); their text follows what the
    visitor typed, which may then be empty. Nothing is written on a refusal.
    """
    _usable_channel(channel)
    if not isinstance(text, str) or not (text.strip() or files):
        raise ChannelError(
            400, "invalid", "Type a message first.", fields={"message": ["Type a message or attach a file."]}
        )
    if len(text) > MAX_WIDGET_MESSAGE_CHARS:
        raise ChannelError(
            400,
            "message_too_long",
            f"Your message is {len(text)} characters; keep it to {MAX_WIDGET_MESSAGE_CHARS}.",
            fields={"message": [f"At most {MAX_WIDGET_MESSAGE_CHARS} characters."]},
        )
    if conversation is not None and conversation.agent_key != channel.agent_key:
        raise ChannelError(404, "not_found", "No such conversation.")
    # A message sent again (same idempotency key: a retry after a lost answer) gets its run back
    # from run_create, as without files; its files are not read (or counted) a second time.
    repeated = (
        bool(idempotency_key)
        and AgentRun.objects.filter(
            caller=caller_for(anonymous_session_id=session.pk), idempotency_key=idempotency_key
        ).exists()
    )
    # read before anything is written: a file that cannot be used leaves nothing behind
    attachments = [] if repeated else widget_files_read(session=session, channel=channel, files=files)
    try:
        run, _ = run_create(
            agent_key=channel.agent_key,
            messages=[{"role": "user", "content": with_attachments(text, attachments)}],
            anonymous_session_id=session.pk,
            conversation=conversation,
            metadata={"channel": "widget"},
            idempotency_key=idempotency_key or None,
        )
    except VisitorRefused as exc:
        raise ChannelError(exc.status, exc.code, exc.message, retry_after=exc.retry_after) from None
    except RunInputError as exc:
        # the policy refused (e.g. unpublished between the check and now): same answer as above
        if exc.code == "unknown_agent":
            raise ChannelError(
                403, "agent_unpublished", "This assistant is not published right now."
            ) from None
        raise ChannelError(400, "invalid", exc.message, fields={exc.field: [exc.message]}) from None
    return run


def widget_feedback_set(
    *, session: Any, channel: WidgetChannel, run: AgentRun, rating: Any
) -> WidgetFeedback:
    """Thumbs up (``"up"``) or down (``"down"``) on one of the visitor's answers."""
    ratings = {"up": 1, "down": -1}
    if rating not in ratings:
        raise ChannelError(400, "invalid", "Rate with up or down.", fields={"rating": ["Use up or down."]})
    if run.anonymous_session_id != session.pk or (run.metadata or {}).get(SESSION_KEY) != str(channel.pk):
        raise ChannelError(404, "not_found", "No such answer.")
    feedback, _ = WidgetFeedback.objects.update_or_create(
        run=run,
        defaults={"channel": channel, "anonymous_session_id": session.pk, "rating": ratings[rating]},
    )
    return feedback
