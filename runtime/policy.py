"""What a caller may ask of a run: which agent, which model, which message roles.

``run_create`` applies these to every entry point (the API, anonymous sessions, the
playground, the admin's retry); who counts as an editor is decided in ``runtime.access``.
Each refusal is a ``RunInputError`` naming the field to fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime import access, registry
from runtime.llm import list_models, parse_model
from runtime.llm.errors import LLMError
from runtime.models import AgentMessage
from runtime.services import RunInputError

if TYPE_CHECKING:
    from runtime.models import AgentConversation


def unknown_agent(agent_key: str) -> RunInputError:
    return RunInputError(
        "agent_key", f"No agent is registered with the key {agent_key!r}.", code="unknown_agent"
    )


def check_agent(*, agent_key: str, agent_version: str, editor: bool) -> None:
    """Non-editors run published agents only; a draft is reported like an unknown key (no leak)."""
    if not editor and not access.may_run_published(agent_key, agent_version):
        raise unknown_agent(agent_key)


def offered_model_id(model: str) -> str | None:
    """``model`` as the id the models endpoint lists it under, or None if the server does not offer it."""
    try:
        provider, name = parse_model(model)
    except LLMError:
        return None
    wanted = "demo" if provider == "demo" else f"{provider}:{name}"
    offered = {entry["id"] for entry in list_models()["models"]}
    return wanted if wanted in offered else None


def check_model(*, model: str, agent_key: str, editor: bool) -> None:
    if not model:
        return
    opted_in = registry.is_code_agent(agent_key) and getattr(
        registry.get_runtime(agent_key), "allow_model_override", False
    )
    if not (editor or opted_in):
        raise RunInputError(
            "model",
            "Only people who may edit this agent may choose its model; leave model out to use the agent's own.",
        )
    if offered_model_id(model) is None:
        raise RunInputError(
            "model",
            f"This server does not offer the model {model!r}; use an id from GET /api/agents/models/.",
        )


def _pending_tool_calls(conversation: AgentConversation | None) -> set[str]:
    """Ids of the tool calls the conversation's last assistant message made that have no result yet."""
    if conversation is None or conversation.pk is None:
        return set()
    last = (
        AgentMessage.objects.filter(conversation=conversation, role="assistant")
        .order_by("-seq")
        .values("seq", "tool_calls")
        .first()
    )
    if not last or not last["tool_calls"]:
        return set()
    asked = {str(call.get("id")) for call in last["tool_calls"] if isinstance(call, dict) and call.get("id")}
    answered = AgentMessage.objects.filter(
        conversation=conversation, role="tool", seq__gt=last["seq"], tool_call_id__in=asked
    ).values_list("tool_call_id", flat=True)
    return asked - set(answered)


def check_public_messages(messages: list[dict[str, Any]], conversation: AgentConversation | None) -> None:
    """Callers who may not edit the agent send ``user`` messages, and ``tool`` results only in
    reply to the conversation's pending tool calls; never ``system`` text or assistant tool calls."""
    pending: set[str] | None = None
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message["role"]
        if message.get("tool_calls"):
            raise RunInputError(f"{where}.tool_calls", "Only the agent makes tool calls; remove tool_calls.")
        if role == "user":
            continue
        if role != "tool":
            raise RunInputError(
                f"{where}.role", f"Send messages with role 'user'; the role {role!r} is not accepted here."
            )
        if pending is None:
            pending = _pending_tool_calls(conversation)
        call_id = message.get("tool_call_id") or ""
        if call_id not in pending:
            raise RunInputError(
                f"{where}.tool_call_id",
                "A tool result must answer a tool call this conversation is waiting for; "
                f"{call_id!r} is not one.",
            )
        pending.discard(call_id)
