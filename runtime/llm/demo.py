"""The offline demo model: no key, no network, the same answer for the same input.

It exists so the product works on a fresh machine and so tool loops can be shown
without a key. It says plainly that it is a demo. Behaviour:

- when the last user message names one of the offered tools (``get_weather`` or
  ``get weather``), it calls that tool, filling required string parameters from the text
  after the tool's name (or the whole message) and numbers from digits in the message;
- after a tool result it summarises the result;
- otherwise it echoes the message back.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from runtime.llm.base import Chunk, LLMClient, Message, tool_content

DEMO_NOTICE = "(Demo model — add an API key to use a real model.)"

# words that commonly join a tool's name to its argument: "get_weather for Paris"
_JOINERS = {"for", "in", "of", "on", "about", "with", "to", "at", "the", "please", "me"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _tool_name(tool: dict[str, Any]) -> str:
    return str((tool.get("function") or tool).get("name", ""))


def _tool_schema(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or tool
    return function.get("parameters") or function.get("input_schema") or {}


def _find_tool(text: str, tools: list[dict[str, Any]]) -> tuple[dict[str, Any], str] | None:
    """The offered tool named in ``text`` (longest name first) and the text after it."""
    lowered = text.lower()
    for tool in sorted(tools, key=lambda t: -len(_tool_name(t))):
        name = _tool_name(tool)
        if not name:
            continue
        for form in {name.lower(), name.lower().replace("_", " "), name.lower().replace("-", " ")}:
            match = re.search(r"(?<![\w])" + re.escape(form) + r"(?![\w])", lowered)
            if match:
                return tool, text[match.end() :]
    return None


def _argument_text(rest: str, whole: str) -> str:
    words = re.sub(r"[^\w\s'.,-]", " ", rest).replace(",", " ").split()
    # "get_weather say for Paris": what follows a joining word near the start is the value
    lowered = [w.lower() for w in words[:3]]
    for position in range(len(lowered) - 1, -1, -1):
        if lowered[position] in _JOINERS:
            words = words[position + 1 :]
            break
    while words and words[0].lower() in _JOINERS:
        words.pop(0)
    while words and words[-1].lower().strip(".?!") in {"please", "thanks", "now", "today"}:
        words.pop()
    value = " ".join(words).strip(" .?!")
    return value or whole.strip()


def _arguments(tool: dict[str, Any], rest: str, whole: str) -> dict[str, Any]:
    schema = _tool_schema(tool)
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    numbers = re.findall(r"-?\d+(?:\.\d+)?", whole)
    arguments: dict[str, Any] = {}
    text_used = False
    for name, prop in properties.items():
        kind = prop.get("type")
        if kind in ("integer", "number"):
            if numbers:
                raw = numbers.pop(0)
                arguments[name] = int(float(raw)) if kind == "integer" else float(raw)
            elif name in required:
                arguments[name] = 0
        elif kind == "boolean":
            if name in required:
                arguments[name] = True
        elif "enum" in prop and prop["enum"]:
            if name in required:
                arguments[name] = prop["enum"][0]
        elif kind in ("string", None):
            if required and name not in required:
                continue
            # the first string gets the words after the tool's name; any others, the message
            arguments[name] = whole.strip() if text_used else _argument_text(rest, whole)
            text_used = True
    return arguments


def _tool_name_for(messages: list[Message], tool_call_id: str) -> str:
    for message in reversed(messages):
        for call in message.get("tool_calls") or []:
            if call.get("id") == tool_call_id:
                return call.get("function", {}).get("name", "tool")
    return "tool"


def _tokens(text: str) -> list[str]:
    """Words with their trailing space, so the deltas join back into the exact reply."""
    return re.findall(r"\S+\s*|\s+", text)


def demo_reply(
    messages: list[Message], tools: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """``(text, tool_calls)`` for a conversation; pure, so the same input gives the same output."""
    last = messages[-1] if messages else {"role": "user", "content": ""}
    if last.get("role") == "tool":
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            name = _tool_name_for(messages, str(message.get("tool_call_id", "")))
            results.append(f"{name} tool returned: {_text(tool_content(message.get('content')))}")
        summary = "; ".join(reversed(results))
        return f"{DEMO_NOTICE} The {summary}", []
    user_text = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    if tools:
        found = _find_tool(user_text, tools)
        if found is not None:
            tool, rest = found
            arguments = _arguments(tool, rest, user_text)
            call_id = f"call_demo_{len(messages)}_{_tool_name(tool)}"
            return "", [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": _tool_name(tool), "arguments": json.dumps(arguments)},
                }
            ]
    if not user_text.strip():
        return f"{DEMO_NOTICE} Send a message and I will echo it back.", []
    reply = f'{DEMO_NOTICE} You said: "{user_text.strip()}"'
    if tools:
        names = ", ".join(_tool_name(t) for t in tools)
        reply += f" Mention a tool by name to see it called (available: {names})."
    return reply, []


def _count_tokens(messages: list[Message]) -> int:
    return sum(len(_text(m.get("content")).split()) + 3 for m in messages)


class DemoClient(LLMClient):
    provider = "demo"

    async def _stream_once(
        self,
        messages: list[Message],
        *,
        model: str,
        tools: list[dict[str, Any]] | None,
        stream: bool,
        temperature: float | None,
        max_tokens: int | None,
        timeout: float,
    ) -> AsyncIterator[Chunk]:
        text, tool_calls = demo_reply(messages, tools)
        tokens = _tokens(text)
        if max_tokens is not None:
            tokens = tokens[:max_tokens]
        if stream:
            for token in tokens:
                yield Chunk(text=token)
                # a real yield to the loop between tokens, so deltas arrive as a stream,
                # without a timer: the whole reply still takes a few milliseconds
                await asyncio.sleep(0)
        else:
            yield Chunk(text="".join(tokens))
        for index, call in enumerate(tool_calls):
            yield Chunk(
                tool_call={
                    "index": index,
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": call["function"]["arguments"],
                }
            )
        yield Chunk(
            prompt_tokens=_count_tokens(messages),
            completion_tokens=len(tokens) + len(tool_calls),
            finish_reason="tool_calls" if tool_calls else "stop",
            model="demo",
        )
