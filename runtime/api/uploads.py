"""``POST runs/`` as a multipart form: what a chat widget sends when the visitor attaches files.

The agent-frontend widget sends ``agent_key`` and ``conversation_id`` as plain fields,
``messages``, ``metadata`` (and ``params``) as JSON text, and each attachment as a ``files``
part. :func:`run_request_data` turns that form into the JSON body the serializer reads;
:func:`attach_files` then reads the files (``runtime.attachments``: documents too when the
``rag`` app has registered its reader) and adds their text to the last user message, so the
model reads it and the conversation shows it after a reload. A file that cannot be used is a
400 naming ``files``, the file and the reason; nothing is stored, since the run has not been
created yet.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import QueryDict
from rest_framework import exceptions

from runtime.attachments import AttachmentRefused, read_attachments, with_attachments

JSON_FIELDS = ("messages", "metadata", "params")


def run_request_data(data: Any) -> Any:
    """The request's data as the run serializer expects it (JSON bodies pass through)."""
    if not isinstance(data, QueryDict):
        return data
    plain: dict[str, Any] = {key: data.get(key) for key in data if key != "files"}
    for name in JSON_FIELDS:
        if isinstance(plain.get(name), str):
            try:
                plain[name] = json.loads(plain[name])
            except ValueError:
                raise exceptions.ValidationError(
                    {name: [f"In a multipart form, send {name} as JSON text."]}
                ) from None
    return plain


def attach_files(messages: list[dict[str, Any]], files: Any) -> list[dict[str, Any]]:
    """``messages`` with the text of the request's ``files`` added to the last user message."""
    uploads = files.getlist("files") if files is not None else []
    if not uploads:
        return messages
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users or not isinstance(users[-1].get("content"), str):
        raise exceptions.ValidationError({"files": ["Attach files to a user message with text content."]})
    try:
        attachments = read_attachments(uploads)
    except AttachmentRefused as exc:
        raise exceptions.ValidationError({"files": exc.messages}) from None
    last = users[-1]
    last["content"] = with_attachments(last["content"], attachments)
    return messages
