"""Registered Python functions: the allow-list behind database-defined Python tools.

Code registers a function under a name (``@python_tool(name=...)``, usually in
an ``AppConfig.ready()`` import); the database stores only that name. Nothing
read from the database is ever imported or executed: a name that is not in
this registry is simply unknown.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.tools.base import Tool

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_registry: dict[str, Tool] = {}
_lock = threading.Lock()
_builtins_loaded = False


class UnknownPythonTool(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"There is no registered Python tool named {name!r}. "
            f"Registered: {', '.join(sorted(_registry)) or 'none'}."
        )
        self.name = name


def register_python_tool(
    func: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> Tool:
    """Add ``func`` to the allow-list; its JSON Schema comes from type hints and docstring."""
    tool = Tool.from_function(func, name=name, description=description)
    if not _NAME.match(tool.name):
        raise ValueError(
            f"Python tool name {tool.name!r} must start with a letter and use only letters, digits, _ or - "
            "(at most 64 characters)."
        )
    tool.metadata = {**tool.metadata, "kind": "python"}
    with _lock:
        existing = _registry.get(tool.name)
        if existing is not None and _qualname(existing.handler) != _qualname(func):
            raise ValueError(
                f"The Python tool name {tool.name!r} is already registered by {_qualname(existing.handler)}."
            )
        _registry[tool.name] = tool
    return tool


def python_tool(
    func: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
) -> Any:
    """Decorator form: ``@python_tool`` or ``@python_tool(name="lookup_order", description=...)``."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        register_python_tool(f, name=name, description=description)
        return f

    return decorate(func) if func is not None else decorate


def _qualname(func: Any) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _ensure_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        # cycle: builtin imports this module to register its tools (on first use, by design)
        from runtime.tools import builtin  # noqa: F401


def get_python_tool(name: str) -> Tool:
    """A fresh Tool for a registered name; raises UnknownPythonTool otherwise."""
    _ensure_builtins()
    tool = _registry.get(name)
    if tool is None:
        raise UnknownPythonTool(name)
    # A copy, so a caller that edits metadata or description cannot change the registry.
    return Tool(
        name=tool.name,
        description=tool.description,
        parameters=copy.deepcopy(tool.parameters),
        handler=tool.handler,
        metadata=dict(tool.metadata),
    )


@dataclass(frozen=True)
class PythonToolInfo:
    """One catalogue entry; reads as attributes (``info.name``) or as a mapping (``info["name"]``)."""

    name: str
    description: str
    parameters: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        if key not in ("name", "description", "parameters"):
            raise KeyError(key)
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


def list_python_tools() -> list[PythonToolInfo]:
    """What the builder offers: name, description and parameters schema of each tool, by name."""
    _ensure_builtins()
    return [
        PythonToolInfo(name=t.name, description=t.description, parameters=copy.deepcopy(t.parameters))
        for t in sorted(_registry.values(), key=lambda t: t.name)
    ]


def unregister_python_tool(name: str) -> None:
    """For tests that register throwaway tools."""
    with _lock:
        _registry.pop(name, None)
