"""Writes on widget channels and their visitors. The builder's Publish page, the admin and the
widget API all call these; each refusal is a :class:`ChannelError` with an HTTP status, a stable
code and a message for a person.

A visitor is an anonymous session (``ANONYMOUS_SESSION_MODEL``, the same machinery the runtime
API already authenticates with ``X-Anonymous-Token`` and ``?anonymous_token=``) whose metadata
names its channel and the origin it was minted from. Its token is short-lived
(``WIDGET_VISITOR_TOKEN_TTL_SECONDS``); the widget extends it while it is still good, and a
visitor whose token expired starts afresh as a new visitor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from runtime import access, registry
from runtime.api.permissions import anonymous_session_model
from runtime.channels.models import (
    WidgetChannel,
    WidgetFeedback,
    WidgetPosition,
    new_identity_secret,
    new_publishable_key,
)
from runtime.channels.origins import origin_allowed, parse_origins
from runtime.models import AgentConversation, AgentRun
from runtime.services import RunInputError, run_create

DEFAULT_TOKEN_TTL_SECONDS = 3600
MAX_WIDGET_MESSAGE_CHARS = 4000
MAX_QUESTIONS = 4
MAX_QUESTION_CHARS = 120
MAX_GREETING_CHARS = 500
MAX_TITLE_CHARS = 80
MAX_DAILY_MESSAGES = 10_000
COLOUR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
SESSION_KEY = "widget_channel"  # in the anonymous session's metadata
VISITOR_KEY = "visitor"  # an identified visitor's user id on the host site, in the same metadata
MAX_IDENTITY_SECONDS = 24 * 3600  # how far ahead an identity token's exp may be


@dataclass
class ChannelError(Exception):
    """A refusal: ``status`` for HTTP, ``code`` for clients to branch on, ``message`` for people."""

    status: int
    code: str
    message: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.message


def token_ttl() -> timedelta:
    return timedelta(
        seconds=int(getattr(settings, "WIDGET_VISITOR_TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL_SECONDS))
    )


# -- settings ---------------------------------------------------------------------------------

EDITABLE = (
    "allowed_origins",
    "title",
    "colour",
    "position",
    "greeting",
    "suggested_questions",
    "show_sources",
    "messages_per_visitor_per_day",
)


def widget_settings_clean(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The channel settings in ``data`` (only the keys present), cleaned, and errors per field."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}

    def text(name: str, limit: int, *, required: bool = False) -> None:
        value = data[name]
        if not isinstance(value, str):
            errors[name] = ["Must be text."]
            return
        value = value.strip()
        if "\x00" in value:
            errors[name] = ["Remove the NUL character."]
        elif required and not value:
            errors[name] = ["Required."]
        elif len(value) > limit:
            errors[name] = [f"{len(value)} characters; shorten it to {limit} or fewer."]
        else:
            cleaned[name] = value

    if "allowed_origins" in data:
        origins, problems = parse_origins(data["allowed_origins"] or [])
        if problems:
            errors["allowed_origins"] = problems
        else:
            cleaned["allowed_origins"] = origins
    if "title" in data:
        text("title", MAX_TITLE_CHARS, required=True)
    if "greeting" in data:
        text("greeting", MAX_GREETING_CHARS)
    if "colour" in data:
        value = data["colour"].strip() if isinstance(data["colour"], str) else ""
        if not COLOUR_RE.match(value):
            errors["colour"] = [f"{data['colour']!r} is not a colour; use a hex value like #2563eb."]
        else:
            if len(value) == 4:
                value = "#" + "".join(ch * 2 for ch in value[1:])
            cleaned["colour"] = value.lower()
    if "position" in data:
        if data["position"] not in WidgetPosition.values:
            errors["position"] = [f"Use one of {', '.join(WidgetPosition.values)}."]
        else:
            cleaned["position"] = data["position"]
    if "suggested_questions" in data:
        raw = data["suggested_questions"] or []
        if isinstance(raw, str):
            raw = raw.splitlines()
        if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
            errors["suggested_questions"] = ["Suggested questions must be a list of texts."]
        else:
            questions = [q.strip() for q in raw if q.strip()]
            if len(questions) > MAX_QUESTIONS:
                errors["suggested_questions"] = [
                    f"{len(questions)} questions: keep at most {MAX_QUESTIONS}, one per line."
                ]
            elif any(len(q) > MAX_QUESTION_CHARS for q in questions):
                errors["suggested_questions"] = [
                    f"Keep each question to {MAX_QUESTION_CHARS} characters or fewer."
                ]
            elif any("\x00" in q for q in questions):
                errors["suggested_questions"] = ["A question contains a NUL character; remove it."]
            else:
                cleaned["suggested_questions"] = questions
    if "show_sources" in data:
        cleaned["show_sources"] = bool(data["show_sources"])
    if "messages_per_visitor_per_day" in data:
        value = data["messages_per_visitor_per_day"]
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if isinstance(value, bool) or not 1 <= number <= MAX_DAILY_MESSAGES:
            errors["messages_per_visitor_per_day"] = [f"Use a whole number from 1 to {MAX_DAILY_MESSAGES}."]
        else:
            cleaned["messages_per_visitor_per_day"] = number
    unknown = set(data) - set(EDITABLE)
    for name in sorted(unknown):
        errors[name] = ["Not a widget setting."]
    return cleaned, errors


def _require_owner(*, agent_key: str, user: Any) -> None:
    # Owners manage channels. runtime.access answers "may edit" today (editors are owners).
    if user is None or not getattr(user, "is_authenticated", False):
        raise ChannelError(403, "permission_denied", "Sign in as an owner of this agent.")
    if not access.may_edit_agent(agent_key=agent_key, user=user):
        raise ChannelError(404, "not_found", "No such agent, or you may not manage it.")


def _settings_or_error(values: dict[str, Any]) -> dict[str, Any]:
    cleaned, errors = widget_settings_clean(values)
    if errors:
        raise ChannelError(422, "invalid", "Some settings need fixing.", fields=errors)
    return cleaned


def widget_channel_create(*, agent_key: str, user: Any, **values: Any) -> WidgetChannel:
    """The widget channel of a published agent, managed by ``user`` (an owner)."""
    _require_owner(agent_key=agent_key, user=user)
    if not registry.agent_exists(agent_key):
        raise ChannelError(404, "not_found", f"No agent is registered with the key {agent_key!r}.")
    stored = access.stored_agent(agent_key)
    if stored is not None and not stored.published:
        raise ChannelError(
            409, "agent_unpublished", "Publish the agent first: a widget runs only its published version."
        )
    cleaned = _settings_or_error(values)
    try:
        with transaction.atomic():
            return WidgetChannel.objects.create(agent_key=agent_key, created_by=user, **cleaned)
    except IntegrityError:
        raise ChannelError(409, "exists", "This agent already has a widget; edit it instead.") from None


def widget_channel_update(*, channel: WidgetChannel, user: Any, **values: Any) -> WidgetChannel:
    _require_owner(agent_key=channel.agent_key, user=user)
    cleaned = _settings_or_error(values)
    for name, value in cleaned.items():
        setattr(channel, name, value)
    channel.save(update_fields=[*cleaned, "updated_at"])
    return channel


def widget_channel_set_enabled(*, channel: WidgetChannel, user: Any, enabled: bool) -> WidgetChannel:
    """Turn the widget on or off. Off ends every visitor token of the channel at once."""
    _require_owner(agent_key=channel.agent_key, user=user)
    with transaction.atomic():
        channel.enabled = enabled
        channel.save(update_fields=["enabled", "updated_at"])
        if not enabled:
            _expire_visitors(channel)
    return channel


def widget_channel_rotate_key(*, channel: WidgetChannel, user: Any) -> WidgetChannel:
    """A new publishable key: pages with the old snippet stop minting; visitors already chatting
    keep their token until it expires (they cannot refresh it: refresh checks the channel, not the key)."""
    _require_owner(agent_key=channel.agent_key, user=user)
    channel.publishable_key = new_publishable_key()
    channel.save(update_fields=["publishable_key", "updated_at"])
    return channel


def widget_channel_rotate_identity_secret(*, channel: WidgetChannel, user: Any) -> WidgetChannel:
    """A new secret for identified visitors: tokens the host signed with the old one are refused."""
    _require_owner(agent_key=channel.agent_key, user=user)
    channel.identity_secret = new_identity_secret()
    channel.save(update_fields=["identity_secret", "updated_at"])
    return channel


def _expire_visitors(channel: WidgetChannel) -> int:
    model = anonymous_session_model()
    if model is None:
        return 0
    now = timezone.now()
    return model._default_manager.filter(
        **{f"metadata__{SESSION_KEY}": str(channel.pk)}, expires_at__gt=now
    ).update(expires_at=now)


# -- visitors ---------------------------------------------------------------------------------


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
    import jwt

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
        metadata={SESSION_KEY: str(channel.pk), "origin": origin},
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
                metadata={SESSION_KEY: str(channel.pk), "origin": origin, VISITOR_KEY: subject},
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


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def widget_message_send(
    *,
    session: Any,
    channel: WidgetChannel,
    text: Any,
    conversation: AgentConversation | None = None,
    idempotency_key: str | None = None,
) -> AgentRun:
    """Start a run of the channel's agent (published version) with the visitor's message.

    Serialised per visitor (the session row is locked) so the daily limit holds under
    concurrent sends. Nothing is written on a refusal.
    """
    _usable_channel(channel)
    if not isinstance(text, str) or not text.strip():
        raise ChannelError(400, "invalid", "Type a message first.", fields={"message": ["Required."]})
    if len(text) > MAX_WIDGET_MESSAGE_CHARS:
        raise ChannelError(
            400,
            "message_too_long",
            f"Your message is {len(text)} characters; keep it to {MAX_WIDGET_MESSAGE_CHARS}.",
            fields={"message": [f"At most {MAX_WIDGET_MESSAGE_CHARS} characters."]},
        )
    if conversation is not None and conversation.agent_key != channel.agent_key:
        raise ChannelError(404, "not_found", "No such conversation.")
    model = type(session)
    now = timezone.now()
    with transaction.atomic():
        model._default_manager.select_for_update().filter(pk=session.pk).first()
        if idempotency_key:
            existing = AgentRun.objects.filter(
                caller=f"anon:{session.pk}", idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                return existing
        sent_today = AgentRun.objects.filter(
            anonymous_session_id=session.pk,
            created_at__gte=_day_start(now),
            **{f"metadata__{SESSION_KEY}": str(channel.pk)},
        ).count()
        if sent_today >= channel.messages_per_visitor_per_day:
            tomorrow = _day_start(now) + timedelta(days=1)
            raise ChannelError(
                429,
                "daily_limit",
                f"You have sent {channel.messages_per_visitor_per_day} messages today, the most this chat "
                "allows; come back tomorrow.",
                retry_after=max(1, int((tomorrow - now).total_seconds())),
            )
        try:
            run, _ = run_create(
                agent_key=channel.agent_key,
                messages=[{"role": "user", "content": text.strip()}],
                anonymous_session_id=session.pk,
                conversation=conversation,
                metadata={"channel": "widget", SESSION_KEY: str(channel.pk)},
                idempotency_key=idempotency_key or None,
            )
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
