"""Hand-off state: which agent holds a conversation, and how it gives it back.

After a ``HANDOFF`` agent tool ran, ``AgentConversation.active_agent_key`` names
the agent holding the conversation; :func:`resolve_active_agent` routes new user
messages to it until it calls ``hand_back``. Every change is one conditional
UPDATE, so two runs racing on the same conversation cannot both win.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.interfaces import current_context
from runtime.memory import run_db
from runtime.models import AgentConversation
from runtime.registry import agent_exists
from runtime.tools import Tool, ToolRegistry

if TYPE_CHECKING:
    from runtime.interfaces import RunContext


def conversation_handoff(*, conversation_id: Any, to_agent_key: str) -> None:
    """Give the conversation to ``to_agent_key``: later user messages are routed to it."""
    AgentConversation.objects.filter(pk=conversation_id).update(active_agent_key=to_agent_key)


def conversation_hand_back(*, conversation_id: Any, from_agent_key: str) -> bool:
    """Return the conversation to its entry agent; only the agent holding it may (True if it did)."""
    updated = AgentConversation.objects.filter(pk=conversation_id, active_agent_key=from_agent_key).update(
        active_agent_key=""
    )
    return updated > 0


def resolve_active_agent(conversation: AgentConversation | None, requested_key: str) -> str:
    """The agent that should answer a new user message in ``conversation``.

    After a hand-off the conversation's ``active_agent_key`` holds it; a message
    addressed to the conversation's entry agent (or to the holder) goes there.
    A message addressed explicitly to some other agent goes where it was sent.
    A holder that no longer exists gives the conversation back.
    """
    if conversation is None or not conversation.active_agent_key:
        return requested_key
    active = conversation.active_agent_key
    if requested_key not in (conversation.agent_key, active):
        return requested_key
    if not agent_exists(active):
        conversation_hand_back(conversation_id=conversation.pk, from_agent_key=active)
        conversation.active_agent_key = ""
        return requested_key
    return active


def hand_back_tool(ctx: RunContext | None = None) -> Tool:
    """``hand_back``: the agent holding a conversation returns it to the entry agent.

    Without ``ctx`` the tool uses the run it is called in (agents built as data).
    """

    async def hand_back(reason: str = "") -> dict[str, Any]:
        run = ctx or current_context()
        if run is None or not run.conversation_id:
            return {"error": "There is no conversation to hand back."}
        done = await run_db(
            run, conversation_hand_back, conversation_id=run.conversation_id, from_agent_key=run.agent_key
        )
        if not done:
            return {
                "error": f"{run.agent_key} does not hold this conversation, so there is nothing to hand back."
            }
        return {
            "handed_back": True,
            "reason": reason,
            "note": "The next user message goes to the entry agent. Finish your answer.",
        }

    return Tool(
        name="hand_back",
        description="Give the conversation back to the agent that handed it to you, when your part is done "
        "or the user needs something outside your speciality.",
        parameters={
            "type": "object",
            "properties": {"reason": {"type": "string", "maxLength": 500}},
            "additionalProperties": False,
        },
        handler=hand_back,
        metadata={"kind": "hand_back"},
    )


def register_hand_back_tool(registry: ToolRegistry, ctx: RunContext | None = None) -> None:
    """Offer ``hand_back`` to an agent that may hold a conversation after a hand-off."""
    if ctx is None or ctx.conversation_id:
        registry.register(hand_back_tool(ctx))


def handoff_result(ctx: RunContext) -> dict[str, Any] | None:
    """Set when a hand-off tool ran in this run: ``{"agent_key", "content"}``.

    The sub-agent's answer has already been shown to the user (an
    ``assistant.message`` on this run), so the calling agent should end its turn
    with that content instead of generating another answer.
    """
    return getattr(ctx, "_handoff_result", None)


def set_handoff_result(ctx: RunContext, *, agent_key: str, content: str) -> None:
    ctx._handoff_result = {"agent_key": agent_key, "content": content}  # type: ignore[attr-defined]
