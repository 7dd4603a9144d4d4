"""``POST runs/`` as a multipart form: what a chat widget sends when the visitor attaches files.

The agent-frontend widget sends ``agent_key`` and ``conversation_id`` as plain fields,
``messages``, ``metadata`` (and ``params``) as JSON text, and each attachment as a ``files``
part. This turns that form into the JSON body the serializer reads. An attached file must be
UTF-8 text: its contents are appended to the last user message, so the model reads it and the
conversation shows it after a reload. Anything else is refused with a message naming
``files``; nothing is stored, since the run has not been created yet.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import QueryDict
from django.template.defaultfilters import filesizeformat
from rest_framework import exceptions

JSON_FIELDS = ("messages", "metadata", "params")
MAX_FILES = 5
MAX_FILE_BYTES = 100 * 1024


def run_request_data(data: Any, files: Any) -> Any:
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
    uploads = files.getlist("files") if files is not None else []
    if uploads:
        plain["messages"] = _with_attachments(plain.get("messages"), uploads)
    return plain


def _with_attachments(messages: Any, uploads: list[Any]) -> Any:
    if len(uploads) > MAX_FILES:
        raise exceptions.ValidationError({"files": [f"Attach at most {MAX_FILES} files to one message."]})
    users = (
        [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if isinstance(messages, list)
        else []
    )
    if not users or not isinstance(users[-1].get("content"), str):
        raise exceptions.ValidationError({"files": ["Attach files to a user message with text content."]})
    parts = []
    for upload in uploads:
        name = upload.name or "file"
        if upload.size > MAX_FILE_BYTES:
            raise exceptions.ValidationError(
                {
                    "files": [
                        f"{name} is {filesizeformat(upload.size)}; attach text files of at most "
                        f"{filesizeformat(MAX_FILE_BYTES)}."
                    ]
                }
            )
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.ValidationError(
                {
                    "files": [
                        f"{name} is not a text file; only UTF-8 text files (.txt, .md, .csv, .json...) "
                        "can be attached here. Paste what matters into the message instead."
                    ]
                }
            ) from None
        if "\x00" in text:
            raise exceptions.ValidationError({"files": [f"{name} holds a NUL character; attach plain text."]})
        parts.append(f"--- Attached file: {name} ---\n{text}")
    last = users[-1]
    last["content"] = "\n\n".join([last["content"], *parts])
    return messages
