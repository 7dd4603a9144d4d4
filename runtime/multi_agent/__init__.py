"""Agents as tools: delegation and hand-off between agents.

    from runtime.multi_agent import AgentTool, InvocationMode, ContextMode, register_agent_tools

An :class:`AgentTool` wraps another agent as a tool. Calling it runs the other
agent as a child run (own row, own events, ``parent_run`` set) through
``runtime.engine.children.invoke_child``:

- ``DELEGATE``: the sub-agent's answer comes back to the caller as the tool result.
- ``HANDOFF``: the sub-agent answers the user itself and takes the conversation
  over; later user messages go to it (``resolve_active_agent``) until it calls
  its ``hand_back`` tool.

What the sub-agent sees is set by the context mode: the whole conversation
(``FULL``), a summary written by the model (``SUMMARY``) or only the message the
caller wrote (``MESSAGE_ONLY``). A depth limit (``AGENT_MAX_DEPTH``) and a cycle
check on the call chain stop A→B→A loops with an error result the model can read.
"""

from runtime.multi_agent.agent_tools import (
    AgentTool,
    ContextMode,
    InvocationMode,
    build_child_input,
    max_depth,
    register_agent_tools,
    summarise_conversation,
)
from runtime.multi_agent.handoff import (
    conversation_hand_back,
    conversation_handoff,
    hand_back_tool,
    handoff_result,
    register_hand_back_tool,
    resolve_active_agent,
)

__all__ = [
    "AgentTool",
    "ContextMode",
    "InvocationMode",
    "build_child_input",
    "conversation_hand_back",
    "conversation_handoff",
    "hand_back_tool",
    "handoff_result",
    "max_depth",
    "register_agent_tools",
    "register_hand_back_tool",
    "resolve_active_agent",
    "summarise_conversation",
]
