"""How ``/v1/chat/completions`` reads ``messages``: the conversation so far and the new turn.

The API is stateless: the client sends the history with every request. Earlier ``user`` and
``assistant`` text is the history; the ``user`` messages after the last ``assistant`` one are the
new turn. ``system``/``developer`` (the agent has its own instructions), ``tool`` messages and
assistant ``tool_calls`` (the agent runs its own tools) and non-text parts are refused.
"""

from __future__ import annotations

from typing import Any

from runtime.channels.openai_errors import OpenAIError


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise OpenAIError(
                    400,
                    f"{where}[{index}]: only text parts ({{'type': 'text', 'text': ...}}) are accepted.",
                    code="invalid_value",
                    param=f"{where}[{index}]",
                )
            texts.append(part["text"])
        return "".join(texts)
    if content is None:
        return ""
    raise OpenAIError(400, f"{where}: content must be text.", code="invalid_value", param=where)


def split_messages(messages: Any) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The conversation so far and the new turn (the user messages after the last assistant one)."""
    if not isinstance(messages, list) or not messages:
        raise OpenAIError(
            400,
            'messages: send a non-empty list, e.g. [{"role": "user", "content": "Hello"}].',
            code="invalid_value",
            param="messages",
        )
    cleaned = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise OpenAIError(400, f"{where}: each message is an object with role and content.", param=where)
        role = message.get("role")
        if role in {"system", "developer"}:
            raise OpenAIError(
                400,
                f"{where}.role: {role} messages are not accepted; the agent has its own instructions. "
                "Send user and assistant messages only.",
                code="invalid_value",
                param=f"{where}.role",
            )
        if role not in {"user", "assistant"}:
            raise OpenAIError(
                400,
                f"{where}.role: use 'user' or 'assistant'; got {role!r}. The agent runs its own tools.",
                code="invalid_value",
                param=f"{where}.role",
            )
        if message.get("tool_calls"):
            raise OpenAIError(
                400,
                f"{where}.tool_calls: the agent makes its own tool calls; remove them.",
                param=f"{where}.tool_calls",
            )
        text = _text_of(message.get("content"), f"{where}.content")
        if role == "user" and not text.strip():
            raise OpenAIError(
                400,
                f"{where}.content: a user message needs some text.",
                code="invalid_value",
                param=f"{where}.content",
            )
        cleaned.append({"role": role, "content": text})
    if cleaned[-1]["role"] != "user":
        raise OpenAIError(
            400, "messages: the last message must be the user's.", code="invalid_value", param="messages"
        )
    start = len(cleaned)
    while start > 0 and cleaned[start - 1]["role"] == "user":
        start -= 1
    return cleaned[:start], cleaned[start:]
