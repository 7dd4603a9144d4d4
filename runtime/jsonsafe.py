"""JSON a person or program sent, checked for what would fail later instead of now.

Valid JSON can still break a request deep inside: nesting thousands of levels
(``RecursionError``), a lone UTF-16 surrogate such as ``"\\ud800"`` (Python accepts
it; UTF-8 and PostgreSQL cannot hold it) or a NUL character (PostgreSQL text cannot
hold it). :func:`find_problem` names the first such value by its path
(``messages[0].content``); :func:`loads` parses text and raises :class:`UnsafeJSON`
for any of them. The API's parser and the builder's JSON fields both use them.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Real payloads nest a few levels (messages -> content parts -> fields; a tool's JSON Schema a
# few more); deeper is refused before anything walks it recursively.
MAX_JSON_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")


class UnsafeJSON(ValueError):
    def __init__(self, path: str, message: str, *, too_deep: bool = False) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message
        self.too_deep = too_deep


def text_problem(text: str) -> str | None:
    """What is wrong with ``text`` as stored text, or None."""
    if "\x00" in text:
        return "Remove the NUL character (\\u0000) from this value."
    found = _SURROGATE.search(text)
    if found:
        return (
            f"This text holds a lone surrogate (\\u{ord(found.group()):04x}), which is not a character; "
            "a surrogate must be one half of a pair."
        )
    return None


def _name(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def find_problem(data: Any, *, max_depth: int = MAX_JSON_DEPTH) -> UnsafeJSON | None:
    """The first value of ``data`` that cannot be stored, or that nests too deep; None if all is well.

    Iterative, so a value nested deeper than the interpreter's recursion limit is measured
    without recursing.
    """
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                return UnsafeJSON(path, problem)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > max_depth:
            return UnsafeJSON(
                path, f"This value is nested more than {max_depth} levels deep; flatten it.", too_deep=True
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in reversed(list(items)):
            if isinstance(key, str):
                problem = text_problem(key)
                if problem:
                    return UnsafeJSON(path, f"A key: {problem}")
            stack.append((item, _name(path, key), depth + 1))
    return None


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` that raises :class:`UnsafeJSON` for runaway nesting and unstorable text.

    Malformed JSON still raises ``json.JSONDecodeError`` as before.
    """
    try:
        data = json.loads(text, **kwargs)
    except RecursionError:
        raise UnsafeJSON(
            "", f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep; flatten it.", too_deep=True
        ) from None
    problem = find_problem(data)
    if problem:
        raise problem
    return data
