"""Writes on widget channels: create, settings, on/off, new keys. The builder's Publish page and
the admin call these; each refusal is a :class:`ChannelError` with an HTTP status, a stable code
and a message for a person. What visitors do is in ``runtime.channels.visitors``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from runtime import access, conf, registry
from runtime.api.permissions import anonymous_session_model
from runtime.channels.caps import run_caps_clean
from runtime.channels.caps import whole_number as _whole
from runtime.channels.identity import SESSION_KEY
from runtime.channels.models import (
    WidgetChannel,
    WidgetPosition,
    new_identity_secret,
    new_publishable_key,
)
from runtime.channels.origins import parse_origins

MAX_QUESTIONS = 4
MAX_QUESTION_CHARS = 120
MAX_GREETING_CHARS = 500
MAX_TITLE_CHARS = 80
MAX_DAILY_MESSAGES = 10_000
COLOUR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


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
    "requests_per_minute_per_visitor",
    "max_steps_per_run",
    "max_tokens_per_run",
    "max_seconds_per_run",
    "attachments_enabled",
    "attachment_max_files",
    "attachment_max_mb",
)
MAX_PER_MINUTE = 600
MB = 1024 * 1024


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
    if "requests_per_minute_per_visitor" in data:
        number = _whole(data["requests_per_minute_per_visitor"])
        if number is None or not 1 <= number <= MAX_PER_MINUTE:
            errors["requests_per_minute_per_visitor"] = [f"Use a whole number from 1 to {MAX_PER_MINUTE}."]
        else:
            cleaned["requests_per_minute_per_visitor"] = number
    caps, cap_errors = run_caps_clean(data, whose="this widget's")
    cleaned.update(caps)
    errors.update(cap_errors)
    files, file_errors = attachment_settings_clean(data)
    cleaned.update(files)
    errors.update(file_errors)
    unknown = set(data) - set(EDITABLE)
    for name in sorted(unknown):
        errors[name] = ["Not a widget setting."]
    return cleaned, errors


def _server_mb() -> Decimal:
    # rounded down: a cap saved at the server's limit never exceeds it
    return (Decimal(conf.setting("AGENT_ATTACHMENT_MAX_BYTES")) / MB).quantize(
        Decimal("0.01"), rounding=ROUND_DOWN
    )


def attachment_settings_clean(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The attachment settings in ``data`` (only the keys present), cleaned, and errors per field.
    Blank (or None) caps mean the server's own."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if "attachments_enabled" in data:
        cleaned["attachments_enabled"] = bool(data["attachments_enabled"])
    if "attachment_max_files" in data:
        value = data["attachment_max_files"]
        most = conf.setting("AGENT_ATTACHMENT_MAX_FILES")
        if value is None or (isinstance(value, str) and not value.strip()):
            cleaned["attachment_max_files"] = None
        elif (number := _whole(value)) is None or not 1 <= number <= most:
            errors["attachment_max_files"] = [
                f"Use a whole number from 1 to {most} (the server's limit), or leave it blank for "
                "the server's limit."
            ]
        else:
            cleaned["attachment_max_files"] = number
    if "attachment_max_mb" in data:
        value = data["attachment_max_mb"]
        most = _server_mb()
        if value is None or (isinstance(value, str) and not value.strip()):
            cleaned["attachment_max_mb"] = None
        else:
            try:
                size = Decimal(str(value).strip())
            except InvalidOperation:
                size = Decimal(-1)
            if isinstance(value, bool) or not size.is_finite() or not Decimal("0.01") <= size <= most:
                errors["attachment_max_mb"] = [
                    f"Use a size in MB from 0.01 to {most.normalize():f} (the server's limit), or "
                    "leave it blank for the server's limit."
                ]
            else:
                cleaned["attachment_max_mb"] = size.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return cleaned, errors


def _require_owner(*, agent_key: str, user: Any) -> None:
    # Owners manage channels (an editor may change the draft, not what the public reaches).
    if user is None or not getattr(user, "is_authenticated", False):
        raise ChannelError(403, "permission_denied", "Sign in as an owner of this agent.")
    if not access.may_manage_channels(agent_key=agent_key, user=user):
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
