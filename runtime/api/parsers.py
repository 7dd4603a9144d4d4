"""The API's JSON parser: bad JSON is a 400 naming the place, never a 500.

DRF's ``JSONParser`` turns malformed JSON into a 400, but three kinds of valid
JSON still reached the views and failed there: nesting thousands of levels deep
(``RecursionError`` in the parser or later), a lone UTF-16 surrogate such as
``"\\ud800"`` (Python accepts it, UTF-8 and PostgreSQL cannot hold it), and a NUL
character (PostgreSQL text cannot hold it). This parser refuses all three and
names the field: ``messages[0].content``.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

# Real requests nest a few levels (messages -> content parts -> fields); metadata and params
# get generous room. Deeper is refused before any view code walks it.
MAX_JSON_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return "Remove the NUL character (\\u0000) from this value."
    found = _SURROGATE.search(text)
    if found:
        return (
            f"This text holds a lone surrogate (\\u{ord(found.group()):04x}), which is not a character; "
            "send it as valid UTF-8 (a surrogate must be half of a pair)."
        )
    return None


def _name(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def check_json_value(data: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise ``ValidationError`` (or ``ParseError`` for nesting) naming the first bad value.

    Iterative, so a value nested deeper than the interpreter's recursion limit is
    measured without recursing.
    """
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            problem = _problem(value)
            if problem:
                raise exceptions.ValidationError({path or "non_field_errors": [problem]})
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > max_depth:
            raise exceptions.ParseError(
                f"{path or 'The request body'} is nested more than {max_depth} levels deep; flatten it."
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in reversed(list(items)):
            name = _name(path, key)
            if isinstance(key, str):
                problem = _problem(key)
                if problem:
                    raise exceptions.ValidationError({path or "non_field_errors": [f"A key: {problem}"]})
            stack.append((item, name, depth + 1))


class SafeJSONParser(JSONParser):
    """``JSONParser`` that also refuses runaway nesting, lone surrogates and NUL characters."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                f"The request body is nested more than {MAX_JSON_DEPTH} levels deep; flatten it."
            ) from None
        check_json_value(data)
        return data
