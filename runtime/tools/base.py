"""``Tool`` and ``ToolRegistry``.

Arguments a model sends are validated against the tool's JSON Schema before
the handler runs; invalid arguments or a handler that raises become an error
result the model can read (``{"error": ...}``), never a crashed run. The one exception
is ``RunFailed`` (a sub-agent that no longer exists): it ends the run as failed.

Tool calls are at-least-once (a run may be retried, a frozen worker may wake up after its
lease was rescued), so inside a run each call has a stable idempotency key,
``<run id>:<tool call id>`` (:func:`idempotency_key`; HTTP tools send it as
``Idempotency-Key``), and the worker checks it still holds the run's lease right before
the handler starts.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from django.db import connections

logger = logging.getLogger(__name__)

_PY_TO_JSON = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}


class ToolError(Exception):
    """An error a tool wants the model to read."""


_idempotency_key: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tool_idempotency_key", default=None
)


def idempotency_key() -> str | None:
    """Inside a tool call of a run: ``<run id>:<tool call id>``, the same on every retry of
    that call, for the tool to pass to the systems it changes; None outside one."""
    return _idempotency_key.get()


def _schema_for(annotation: Any) -> dict[str, Any]:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _schema_for(options[0]) if len(options) == 1 else {"anyOf": [_schema_for(a) for a in options]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(annotation))}
    if origin in (list, tuple, set):
        args = typing.get_args(annotation)
        schema: dict[str, Any] = {"type": "array"}
        if args:
            schema["items"] = _schema_for(args[0])
        return schema
    if origin is dict:
        return {"type": "object"}
    if annotation in _PY_TO_JSON:
        return {"type": _PY_TO_JSON[annotation]}
    return {}


def _param_docs(doc: str) -> tuple[str, dict[str, str]]:
    """Split a docstring into its summary and ``Args:`` / ``:param x:`` descriptions."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary_lines: list[str] = []
    params: dict[str, str] = {}
    in_args = False
    for line in lines:
        stripped = line.strip()
        if stripped.lower() in {"args:", "arguments:", "parameters:"}:
            in_args = True
            continue
        match = re.match(r":param\s+(\w+):\s*(.*)", stripped)
        if match:
            params[match.group(1)] = match.group(2)
            continue
        if in_args:
            match = re.match(r"(\w+)\s*(?:\([^)]*\))?:\s*(.*)", stripped)
            if match:
                params[match.group(1)] = match.group(2)
                continue
            if stripped.lower().endswith(":") or not stripped:
                in_args = False
            continue
        if not params:
            summary_lines.append(stripped)
    return " ".join(line for line in summary_lines if line).strip(), params


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    handler: Callable[..., Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_function(
        cls, func: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """A tool whose JSON Schema comes from ``func``'s type hints and docstring."""
        summary, docs = _param_docs(func.__doc__ or "")
        hints = typing.get_type_hints(func)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for pname, param in inspect.signature(func).parameters.items():
            if pname in {"self", "cls", "ctx"} or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            schema = _schema_for(hints.get(pname, param.annotation))
            if pname in docs:
                schema["description"] = docs[pname]
            if param.default is inspect.Parameter.empty:
                required.append(pname)
            elif param.default is not None and isinstance(param.default, (str, int, float, bool)):
                schema["default"] = param.default
            properties[pname] = schema
        parameters: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            parameters["required"] = required
        return cls(
            name=name or func.__name__,
            description=description or summary or func.__name__.replace("_", " "),
            parameters=parameters,
            handler=func,
        )

    def validate_arguments(self, arguments: dict[str, Any]) -> None:
        jsonschema.validate(arguments, self.parameters)

    async def call(self, arguments: dict[str, Any]) -> Any:
        if self.handler is None:
            raise ToolError(f"The tool {self.name} has no handler.")
        if inspect.iscoroutinefunction(self.handler):
            result = self.handler(**arguments)
        else:
            # A slow sync tool must not block the worker's event loop (heartbeats,
            # cancellation and every other run share it).
            result = await asyncio.to_thread(_call_sync, self.handler, arguments)
        if inspect.isawaitable(result):
            result = await typing.cast(Awaitable[Any], result)
        return result

    def to_openai_format(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def to_anthropic_format(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.parameters}


def _call_sync(handler: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    try:
        return handler(**arguments)
    finally:
        # this thread is not Django's; do not leave a database connection behind
        connections.close_all()


class ToolRegistry:
    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool | Callable[..., Any]) -> Tool:
        if not isinstance(tool, Tool):
            tool = Tool.from_function(tool)
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __iter__(self):
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    async def execute(
        self, name: str, arguments: str | dict[str, Any] | None, *, call_id: str | None = None
    ) -> Any:
        """Run a tool with the model's arguments; problems come back as ``{"error": ...}``.

        Inside a run, ``call_id`` (the model's tool call id) makes the call's idempotency key,
        and a worker that no longer holds the run's lease raises ``LeaseLost`` instead of
        calling the tool.
        """
        tool = self._tools.get(name)
        if tool is None:
            return {
                "error": f"There is no tool named {name!r}. Available tools: {', '.join(self._tools) or 'none'}."
            }
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                return {"error": f"The arguments for {name} are not valid JSON: {exc.msg}."}
        arguments = arguments or {}
        if not isinstance(arguments, dict):
            return {"error": f"The arguments for {name} must be a JSON object."}
        try:
            tool.validate_arguments(arguments)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "arguments"
            return {"error": f"Invalid arguments for {name}: {where}: {exc.message}."}
        # cycle: runtime.interfaces imports runtime.tools
        from runtime.interfaces import RunFailed, current_context

        ctx = current_context()
        key = None
        if ctx is not None:
            await ctx.ensure_lease()
            key = f"{ctx.run_id}:{call_id}" if call_id else None
        token = _idempotency_key.set(key)
        try:
            return await tool.call(arguments)
        except RunFailed:
            raise  # the run cannot go on (a sub-agent that is gone): not the model's to fix
        except ToolError as exc:
            return {"error": str(exc)}
        except Exception as exc:
            logger.exception("Tool %s raised", name)
            return {"error": f"The tool {name} failed: {type(exc).__name__}."}
        finally:
            _idempotency_key.reset(token)

    def to_openai_format(self) -> list[dict[str, Any]]:
        return [tool.to_openai_format() for tool in self._tools.values()]

    def to_anthropic_format(self) -> list[dict[str, Any]]:
        return [tool.to_anthropic_format() for tool in self._tools.values()]
