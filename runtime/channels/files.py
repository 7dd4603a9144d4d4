"""Files a widget visitor attaches to a message: the owner's choice, and reading them.

Off by default (``WidgetChannel.attachments_enabled``): a public page's visitors are strangers,
and each file costs a parse. An owner who turns it on may set a channel's own most files per
message and largest file (MB); these only tighten the server's ``AGENT_ATTACHMENT_MAX_FILES`` /
``AGENT_ATTACHMENT_MAX_BYTES`` (checked when saved, and again when used, since the server's caps
may be lowered later).

Reading goes through the same seam as the run API and the playground
(``runtime.attachments.read_attachments``: type sniffed from the content, text extracted in a
contained child process when ``rag`` registered its reader). Before any file is read, the
visitor must be one the channel would admit now (origin, messages per minute and per day, the
agent's budget: ``visitor_admission_check``), so a refused visitor costs no parse. A refusal is
a :class:`ChannelError` whose ``fields["files"]`` names each file and the reason; nothing is
written, since the run is created only after every file was read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from runtime.attachments import Attachment, AttachmentRefused, clean_name, read_attachments
from runtime.attachments import limits as server_limits
from runtime.channels.admission import VisitorRefused, visitor_admission_check
from runtime.channels.models import WidgetChannel
from runtime.channels.services import MB, ChannelError

# room in a message's multipart body for its text and fields, beside the files themselves
FORM_BYTES = 256 * 1024


def attachment_limits(channel: WidgetChannel) -> dict[str, Any] | None:
    """What the channel's visitors may attach now (the server's caps, tightened by the
    channel's), or None when attachments are off."""
    if not channel.attachments_enabled:
        return None
    max_bytes = int(channel.attachment_max_mb * MB) if channel.attachment_max_mb else None
    return server_limits(max_files=channel.attachment_max_files, max_bytes=max_bytes)


def widget_body_check(channel: WidgetChannel, *, content_type: str, content_length: str | None) -> None:
    """Refuse (413) a multipart message body declared larger than the channel takes, before it is
    read: its files at their limits and the form, or, when attachments are off, the server's cap
    for a body without files (so a refused file is still named when its body is small). The
    server's own cap (``UPLOAD_MAX_BYTES``, config/limits.py) still holds for undeclared bodies."""
    if not (content_type or "").lower().startswith("multipart/form-data"):
        return
    limits = attachment_limits(channel)
    cap = (
        int(settings.REQUEST_MAX_BYTES)
        if limits is None
        else limits["max_files"] * limits["max_bytes"] + FORM_BYTES
    )
    try:
        length = int(content_length or 0)
    except ValueError:
        length = 0
    if length > cap:
        message = (
            "This chat does not take files; paste the text you need into your message."
            if limits is None
            else f"Your message and its files are {length / MB:.1f} MB; this chat takes at most "
            f"{limits['max_files']} files of {limits['max_size']} each."
        )
        raise ChannelError(413, "request_too_large", message, fields={"files": [message]})


def widget_files_read(*, session: Any, channel: WidgetChannel, files: Sequence[Any]) -> list[Attachment]:
    """The text of the files a visitor attached, or a ``ChannelError`` naming each bad file."""
    if not files:
        return []
    names = ", ".join(clean_name(getattr(upload, "name", "")) for upload in files)
    limits = attachment_limits(channel)
    if limits is None:
        message = f"This chat does not take files ({names}); paste the text you need into your message."
        raise ChannelError(403, "attachments_disabled", message, fields={"files": [message]})
    try:
        visitor_admission_check(anonymous_session_id=session.pk, agent_key=channel.agent_key)
    except VisitorRefused as exc:
        raise ChannelError(exc.status, exc.code, exc.message, retry_after=exc.retry_after) from None
    try:
        return read_attachments(files, max_files=limits["max_files"], max_bytes=limits["max_bytes"])
    except AttachmentRefused as exc:
        raise ChannelError(
            400, "invalid_files", " ".join(exc.messages), fields={"files": exc.messages}
        ) from None
