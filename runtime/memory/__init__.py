"""Shared memory: what agents remember across turns, conversations and agents.

An entry lives in one scope:

- ``conversation``: one conversation (every agent that takes part in it),
- ``user``: one signed-in user, across their conversations,
- ``system``: one multi-agent system (the entry agent and everything it calls).

The services take the scope's owner explicitly. The tools an agent gets
(:func:`memory_tools`) take it from the run context instead, never from the
model's arguments: a model told by injected text to read "user 7's memory" has
no argument through which to ask for it.
"""

from runtime.memory.services import (
    MAX_KEY_LENGTH,
    MAX_VALUE_CHARS,
    SCOPES,
    MemoryInputError,
    MemoryOwner,
    memory_forget,
    memory_list,
    memory_purge_expired,
    memory_recall,
    memory_remember,
    owner_for_context,
    run_db,
)
from runtime.memory.tools import memory_prompt_block, memory_prompt_block_sync, memory_tools

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_VALUE_CHARS",
    "SCOPES",
    "MemoryInputError",
    "MemoryOwner",
    "memory_forget",
    "memory_list",
    "memory_prompt_block",
    "memory_prompt_block_sync",
    "memory_purge_expired",
    "memory_recall",
    "memory_remember",
    "memory_tools",
    "owner_for_context",
    "run_db",
]
