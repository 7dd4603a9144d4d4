"""Python tools every installation offers: the time, arithmetic, date differences."""

from __future__ import annotations

import ast
import math
import operator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from runtime.tools.base import ToolError
from runtime.tools.python import python_tool

_MAX_EXPRESSION = 300
_MAX_INT_BITS = 4096
_MAX_EXPONENT = 1000

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS: dict[str, Any] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "radians": math.radians,
    "degrees": math.degrees,
}


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        raise ToolError("The result is too large.")
    return value


def _power_too_large(base: Any, exponent: Any) -> bool:
    # Checked before computing: 9 ** 9 ** 9 would otherwise hold the worker for minutes.
    if abs(exponent) > _MAX_EXPONENT:
        return True
    return isinstance(base, int) and abs(base).bit_length() * abs(exponent) > _MAX_INT_BITS


def _evaluate(node: ast.AST) -> Any:
    """Walk the syntax tree allowing only numbers, arithmetic and the named math functions."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and _power_too_large(left, right):
            raise ToolError("The power is too large to compute.")
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
        and len(node.args) <= 5
    ):
        return _check_size(_FUNCTIONS[node.func.id](*[_evaluate(a) for a in node.args]))
    allowed = ", ".join(sorted(_FUNCTIONS))
    raise ToolError(
        f"Unsupported expression element {type(node).__name__}: use numbers, + - * / // % **, "
        f"parentheses, pi, e and the functions {allowed}."
    )


@python_tool(name="calculator")
def calculator(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression exactly, e.g. "(17.5 * 3) / 4" or "sqrt(2) ** 3".

    Args:
        expression: Numbers, + - * / // % **, parentheses, pi, e and functions such as sqrt, log, sin, round.
    """
    if len(expression) > _MAX_EXPRESSION:
        raise ToolError(f"The expression is longer than {_MAX_EXPRESSION} characters.")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolError(f"{expression!r} is not a valid arithmetic expression.") from None
    try:
        result = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError("Division by zero.") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise ToolError(f"Cannot compute {expression!r}: {exc}.") from None
    if isinstance(result, float) and result.is_integer() and abs(result) < 2**53:
        result = int(result)
    return {"expression": expression, "result": result}


@python_tool(name="current_time")
def current_time(timezone: str = "UTC") -> dict[str, Any]:
    """The current date and time in a time zone.

    Args:
        timezone: An IANA time zone name such as "Europe/Paris" or "America/New_York".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        suggestions = sorted(z for z in available_timezones() if timezone.lower() in z.lower())[:5]
        hint = (
            f" Did you mean {', '.join(suggestions)}?" if suggestions else ' Use a name like "Europe/Paris".'
        )
        raise ToolError(f"Unknown time zone {timezone!r}.{hint}") from None
    now = datetime.now(UTC).astimezone(zone)
    return {
        "timezone": timezone,
        "iso": now.isoformat(timespec="seconds"),
        "date": now.date().isoformat(),
        "time": now.strftime("%H:%M:%S"),
        "weekday": now.strftime("%A"),
        "utc_offset": now.strftime("%z"),
    }


@python_tool(name="date_difference")
def date_difference(start: str, end: str) -> dict[str, Any]:
    """The number of days (and whole weeks) from one date to another.

    Args:
        start: The first date, as YYYY-MM-DD.
        end: The second date, as YYYY-MM-DD.
    """
    try:
        first, second = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise ToolError("Dates must be written YYYY-MM-DD, for example 2025-03-31.") from None
    days = (second - first).days
    return {"start": start, "end": end, "days": days, "weeks": days // 7 if days >= 0 else -((-days) // 7)}
