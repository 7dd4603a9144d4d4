"""Writes. Every service is keyword-only and atomic; field problems raise ``ConfigError``."""

from builder.services.agents import (
    agent_create,
    agent_delete,
    agent_duplicate,
    agent_publish,
    agent_restore_version,
    agent_update_draft,
    version_diff,
)

__all__ = [
    "agent_create",
    "agent_delete",
    "agent_duplicate",
    "agent_publish",
    "agent_restore_version",
    "agent_update_draft",
    "version_diff",
]
