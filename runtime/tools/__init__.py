"""Tools an agent can call: a name, a description, a JSON Schema and a handler."""

from runtime.tools.base import Tool, ToolError, ToolRegistry, idempotency_key

__all__ = ["Tool", "ToolError", "ToolRegistry", "idempotency_key"]
