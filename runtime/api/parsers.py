"""The API's JSON parser: bad JSON is a 400 naming the place, never a 500.

DRF's ``JSONParser`` turns malformed JSON into a 400, but valid JSON nested
thousands of levels deep, or holding a lone surrogate (``"\\ud800"``) or a NUL,
reached the views and failed there (``RecursionError``, ``UnicodeEncodeError``).
This parser refuses them (``runtime/jsonsafe.py``) and names the field:
``messages[0].content``.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from runtime.jsonsafe import MAX_JSON_DEPTH, find_problem


class SafeJSONParser(JSONParser):
    """``JSONParser`` that also refuses runaway nesting, lone surrogates and NUL characters."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                f"The request body is nested more than {MAX_JSON_DEPTH} levels deep; flatten it."
            ) from None
        problem = find_problem(data)
        if problem is None:
            return data
        if problem.too_deep:
            raise exceptions.ParseError(f"{problem.path or 'The request body'}: {problem.message}")
        raise exceptions.ValidationError({problem.path or "non_field_errors": [problem.message]})
