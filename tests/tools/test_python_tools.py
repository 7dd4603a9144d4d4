"""Registered Python tools: an allow-list by name, and the built-ins people actually use."""

from __future__ import annotations

import asyncio
import re

import pytest

from runtime.tools import ToolRegistry
from runtime.tools.python import (
    UnknownPythonTool,
    get_python_tool,
    list_python_tools,
    python_tool,
    register_python_tool,
    unregister_python_tool,
)


def _call(name: str, arguments: dict):
    tool = get_python_tool(name)
    return asyncio.run(ToolRegistry([tool]).execute(name, arguments))


def test_decorated_function_is_listed_with_its_schema_and_callable_by_name():
    @python_tool(name="shipping_quote", description="Quote shipping for a parcel.")
    def quote(weight_kg: float, express: bool = False) -> dict:
        """Args:
        weight_kg: Parcel weight in kilograms.
        """
        return {"price": round(weight_kg * (9 if express else 4), 2)}

    try:
        listed = {t.name: t for t in list_python_tools()}
        assert listed["shipping_quote"]["description"] == "Quote shipping for a parcel."
        assert listed["shipping_quote"].parameters == {
            "type": "object",
            "properties": {
                "weight_kg": {"type": "number", "description": "Parcel weight in kilograms."},
                "express": {"type": "boolean", "default": False},
            },
            "required": ["weight_kg"],
        }
        assert _call("shipping_quote", {"weight_kg": 2.5, "express": True}) == {"price": 22.5}
        assert "Invalid arguments" in _call("shipping_quote", {"weight_kg": "heavy"})["error"]
    finally:
        unregister_python_tool("shipping_quote")


def test_only_registered_names_resolve_never_import_paths():
    for name in ["os.system", "subprocess:run", "builtins.eval", "runtime.tools.builtin.calculator"]:
        with pytest.raises(UnknownPythonTool, match="no registered Python tool"):
            get_python_tool(name)


def test_a_name_cannot_be_taken_over_by_another_function():
    def first() -> str:
        return "a"

    def second() -> str:
        return "b"

    register_python_tool(first, name="owned_name")
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_python_tool(second, name="owned_name")
        with pytest.raises(ValueError, match="must start with a letter"):
            register_python_tool(second, name="bad name!")
    finally:
        unregister_python_tool("owned_name")


def test_a_caller_cannot_change_the_registered_schema():
    tool = get_python_tool("calculator")
    tool.parameters["properties"]["injected"] = {"type": "string"}
    assert "injected" not in get_python_tool("calculator").parameters["properties"]


def test_builtins_are_offered():
    names = {t.name for t in list_python_tools()}
    assert {"calculator", "current_time", "date_difference"} <= names


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("(17.5 * 3) / 4", 13.125),
        ("2 ** 10", 1024),
        ("-3 + 4 * (2 - 1)", 1),
        ("sqrt(16) + abs(-2)", 6),
        ("round(pi, 3)", 3.142),
        ("7 // 2 + 7 % 2", 4),
        ("max(1, 5, 3)", 5),
    ],
)
def test_calculator_computes(expression, result):
    assert _call("calculator", {"expression": expression})["result"] == result


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("__import__('os').system('id')", "Unsupported"),
        ("().__class__.__bases__", "Unsupported"),
        ("open('/etc/passwd')", "Unsupported"),
        ("x + 1", "Unsupported"),
        ("'a' * 3", "Unsupported"),
        ("[1, 2]", "Unsupported"),
        ("lambda: 1", "Unsupported"),
        ("9 ** 9 ** 9", "too large"),
        ("10 ** 1000 * 10 ** 1000", "too large"),
        ("1 / 0", "Division by zero"),
        ("2 +", "not a valid"),
        ("1" * 400, "longer than"),
        ("sqrt(-1)", "Cannot compute"),
        ("exp(1000)", "Cannot compute"),
    ],
)
def test_calculator_refuses_anything_but_arithmetic(expression, words):
    assert words in _call("calculator", {"expression": expression})["error"]


def test_current_time_in_a_zone_and_a_helpful_error():
    result = _call("current_time", {"timezone": "Europe/Paris"})
    assert result["utc_offset"] in {"+0100", "+0200"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", result["date"])
    assert _call("current_time", {})["timezone"] == "UTC"
    error = _call("current_time", {"timezone": "paris"})["error"]
    assert "Unknown time zone 'paris'" in error and "Europe/Paris" in error


def test_date_difference():
    assert _call("date_difference", {"start": "2025-01-01", "end": "2025-03-01"}) == {
        "start": "2025-01-01",
        "end": "2025-03-01",
        "days": 59,
        "weeks": 8,
    }
    assert "YYYY-MM-DD" in _call("date_difference", {"start": "01/02/2025", "end": "2025-03-01"})["error"]
