"""How database-defined agents reach the runtime: the resolver ``BuilderConfig.ready`` registers.

``resolve(agent_key, run)`` loads the definition from the database on every
call (no per-process cache, so an edit is never served stale) and returns a
``ToolCallingAgent.from_config(...)``. Which definition:

- ``run.agent_version`` = ``version:<uuid>``: that published version;
  ``draft:<agent uuid>@<n>``: exactly draft revision n (the playground);
- a run with no pin: the published version (or, never published, the latest
  draft); the resolver then records that pin on the run, so retries and the
  run history name exactly what executed;
- ``agent_key`` naming a system runs the system's entry agent. Its pin is
  ``system:<uuid>`` (the member versions pinned at publish) or
  ``system-draft:<uuid>`` (members' current drafts: the system playground).
  Child runs of a system use the pins of the root run; every member searches
  the system's knowledge bases as well as its own (a base both attach is
  searched once).
- a run of a member pinned to its system (after a hand-off, the system's next
  turns go to the member holding the conversation) runs as that system's member.
- a child run of a draft test uses the sub-agent's current draft.

Run metadata is never consulted: API callers write it. ``agent_version`` is
set only by builder services and this resolver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from builder.models import (
    Agent,
    AgentDraft,
    AgentDraftRevision,
    AgentKnowledge,
    AgentSystem,
    AgentVersion,
    SystemKnowledge,
    ToolDefinition,
    ToolKind,
)
from builder.schema import AgentConfig, parse_config
from rag.agents import search_knowledge_tool, with_knowledge
from runtime.agents import ToolCallingAgent
from runtime.memory import memory_tools
from runtime.multi_agent import AgentTool, hand_back_tool, register_agent_tools
from runtime.tools import Tool, ToolError, ToolRegistry
from runtime.tools.http import HttpToolSpec, HttpToolSpecError, build_http_tool
from runtime.tools.python import get_python_tool

if TYPE_CHECKING:
    from runtime.interfaces import AgentRuntime
    from runtime.models import AgentRun

logger = logging.getLogger(__name__)
MAX_PARENT_DEPTH = 20


@dataclass
class Definition:
    agent: Agent
    config: dict[str, Any]
    pin: str
    # the system this agent runs in (its entry agent or a member), whose knowledge bases it shares
    system: AgentSystem | None = None


def _root(run: AgentRun) -> AgentRun:
    root, hops = run, 0
    while root.parent_run_id and hops < MAX_PARENT_DEPTH:
        root = root.parent_run
        hops += 1
    return root


def _draft_pin(agent: Agent) -> tuple[dict[str, Any], str]:
    draft = agent.draft
    return draft.config, f"draft:{agent.public_id}@{draft.revision}"


def _default(agent: Agent) -> tuple[dict[str, Any], str]:
    if agent.published_version is not None:
        return agent.published_version.config, agent.published_version.pin
    return _draft_pin(agent)


def _from_pin(agent: Agent, pin: str) -> tuple[dict[str, Any], str] | None:
    kind, _, ref = pin.partition(":")
    if kind == "version":
        version = AgentVersion.objects.filter(public_id=ref, agent=agent).first()
        return (version.config, pin) if version else None
    if kind == "draft":
        agent_id, _, revision = ref.partition("@")
        if agent_id != str(agent.public_id) or not revision.isdigit():
            return None
        row = AgentDraftRevision.objects.filter(agent=agent, revision=int(revision)).first()
        return (row.config, pin) if row else None
    return None


def _agents() -> Any:
    return Agent.objects.select_related("draft", "published_version", "owner")


def find_definition(agent_key: str, run: AgentRun | None) -> Definition | None:
    system = AgentSystem.objects.select_related("entry_agent").filter(slug=agent_key).first()
    if system is not None:
        return _system_entry(system, run)
    agent = _agents().filter(slug=agent_key).first()
    if agent is None:
        return None
    if run is None:
        config, pin = _default(agent)
        return Definition(agent, config, pin)
    if run.agent_version:
        system = _system_of_pin(run.agent_version)
        if system is not None:
            # After a hand-off, the system's next runs go to the member holding the conversation,
            # still pinned to the system: it runs as a member (the system's pins and knowledge).
            return _system_member(system, run, agent)
        found = _from_pin(agent, run.agent_version)
        if found is None:
            logger.warning("Run %s pins %r, which %s does not have", run.pk, run.agent_version, agent_key)
            return None
        return Definition(agent, *found)
    root = _root(run) if run.parent_run_id else run
    root_system = AgentSystem.objects.filter(slug=root.agent_key).first() if root is not run else None
    if root_system is not None:
        return _system_member(root_system, root, agent)
    if root is not run and root.agent_version.startswith("draft:"):
        config, pin = _draft_pin(agent)
    else:
        config, pin = _default(agent)
    return Definition(agent, config, pin)


def _system_of_pin(pin: str) -> AgentSystem | None:
    kind, _, ref = pin.partition(":")
    if kind not in ("system", "system-draft"):
        return None
    try:
        return AgentSystem.objects.filter(public_id=ref).first()
    except (ValueError, ValidationError):
        return None


def _system_entry(system: AgentSystem, run: AgentRun | None) -> Definition:
    entry = _agents().get(pk=system.entry_agent_id)
    if run is not None and run.agent_version == f"system-draft:{system.public_id}":
        config, _ = _draft_pin(entry)
        return Definition(entry, config, run.agent_version, system)
    pinned = system.published_pins.get(entry.slug)
    found = _from_pin(entry, pinned) if pinned else None
    config = found[0] if found else _default(entry)[0]
    return Definition(entry, config, f"system:{system.public_id}", system)


def _system_member(system: AgentSystem, root: AgentRun, agent: Agent) -> Definition:
    if root.agent_version == f"system-draft:{system.public_id}":
        config, pin = _draft_pin(agent)
    else:
        pinned = system.published_pins.get(agent.slug)
        found = _from_pin(agent, pinned) if pinned else None
        config, pin = found if found else _default(agent)
    return Definition(agent, config, pin, system)


def _tools(agent: Agent, config: AgentConfig) -> list[Any]:
    tools: list[Any] = []
    if config.http_tools:
        stored = ToolDefinition.objects.filter(
            owner=agent.owner_id, kind=ToolKind.HTTP, name__in=config.http_tools
        )
        for tool in stored:
            try:
                spec = HttpToolSpec.from_dict(
                    {**tool.spec, "name": tool.name, "description": tool.description}
                )
                tools.append(build_http_tool(spec, tool.secrets or {}))
            except (HttpToolSpecError, TypeError, ValueError, AttributeError, KeyError) as exc:
                # A spec saved before a rule tightened (or edited in the database) fails this tool
                # only: the run goes on, and a call to it reads what is wrong.
                logger.warning("Agent %s: HTTP tool %r has an invalid spec: %s", agent.slug, tool.name, exc)
                tools.append(_broken_tool(tool.name, tool.description, exc))
    if config.python_tools:
        for name in config.python_tools:
            try:
                tools.append(get_python_tool(name))
            except LookupError:
                logger.warning(
                    "Agent %s lists Python tool %r, which is no longer registered", agent.slug, name
                )
    if config.sub_agents:
        registry = ToolRegistry()
        register_agent_tools(
            registry,
            [
                AgentTool(
                    agent_key=link.agent_key,
                    invocation_mode=link.mode,
                    context_mode=link.context,
                    description=link.description or "",
                )
                for link in config.sub_agents
            ],
        )
        tools.extend(registry)
    if _is_handoff_target(agent):
        tools.append(hand_back_tool())
    if config.memory.enabled:
        tools.extend(memory_tools(scopes=(config.memory.scope,)))
    return tools


def _broken_tool(name: str, description: str, problem: Exception) -> Any:
    """A stand-in for a tool whose stored spec no longer validates: calling it explains why."""

    async def handler(**_arguments: Any) -> Any:
        raise ToolError(
            f"The tool {name} cannot run: its saved settings are invalid ({problem}). "
            "Ask an editor to fix it on the Tools page."
        )

    return Tool(name=name, description=description or name, handler=handler)


def _is_handoff_target(agent: Agent) -> bool:
    """Some agent hands conversations off to this one, so it needs ``hand_back`` to return them."""
    link = [{"agent_key": agent.slug, "mode": "handoff"}]
    return (
        AgentDraft.objects.filter(config__sub_agents__contains=link).exists()
        or AgentVersion.objects.filter(config__sub_agents__contains=link).exists()
    )


def build_runtime(agent_key: str, definition: Definition) -> AgentRuntime:
    config = parse_config(definition.config, self_key=definition.agent.slug)
    tools = _tools(definition.agent, config)
    knowledge = _knowledge(definition.agent, definition.system)
    if knowledge.tool_ids:
        tools.append(
            search_knowledge_tool(
                knowledge_base_ids=knowledge.tool_ids, top_k=knowledge.top_k, thresholds=knowledge.thresholds
            )
        )
    prompt = config.system_prompt
    settings = {
        k: v
        for k, v in (("temperature", config.temperature), ("max_tokens", config.max_tokens))
        if v is not None
    }
    runtime = ToolCallingAgent.from_config(
        key=agent_key,
        system_prompt=prompt,
        tools=tools,
        model=config.model or None,
        model_settings=settings,
        name=definition.agent.name,
        description=definition.agent.description,
        # what the agent remembered is in its prompt, not only behind the recall tool
        memory_scopes=(config.memory.scope,) if config.memory.enabled else (),
    )
    if knowledge.auto_ids:
        # passages retrieved for each user message go into the prompt, and are cited
        return with_knowledge(
            runtime,
            knowledge_base_ids=knowledge.auto_ids,
            top_k=knowledge.top_k,
            thresholds=knowledge.thresholds,
        )
    return runtime


@dataclass
class KnowledgeUse:
    auto_ids: list[int]
    tool_ids: list[int]
    top_k: int
    # minimum vector similarity per knowledge base (0: keep every passage)
    thresholds: dict[int, float]


def _knowledge(agent: Agent, system: AgentSystem | None) -> KnowledgeUse:
    """The agent's own knowledge bases and, run in a system, the system's.

    A base attached to both is searched once: in every mode either attachment asks for, with the
    larger top-k and the lower threshold. One question retrieves the largest top-k of all the
    attachments, across all their bases."""
    fields = ("knowledge_base_id", "mode", "top_k", "score_threshold")
    links = list(AgentKnowledge.objects.filter(agent=agent).values_list(*fields))
    if system is not None:
        links += SystemKnowledge.objects.filter(system=system).values_list(*fields)
    modes: dict[int, set[str]] = {}
    thresholds: dict[int, float] = {}
    for pk, mode, _top_k, threshold in links:
        modes.setdefault(pk, set()).update(("auto", "tool") if mode == "both" else (mode,))
        thresholds[pk] = min(threshold, thresholds.get(pk, threshold))
    return KnowledgeUse(
        auto_ids=sorted(pk for pk, used in modes.items() if "auto" in used),
        tool_ids=sorted(pk for pk, used in modes.items() if "tool" in used),
        top_k=max((link[2] for link in links), default=4),
        thresholds=thresholds,
    )


def agent_key_exists(agent_key: str) -> bool:
    """One query: would ``resolve(agent_key, None)`` find an agent or system? (Builds nothing.)"""
    agents = Agent.objects.filter(slug=agent_key).order_by().values("slug")
    return agents.union(AgentSystem.objects.filter(slug=agent_key).order_by().values("slug")).exists()


def resolve(agent_key: str, run: AgentRun | None) -> AgentRuntime | None:
    """The registry's resolver: a fresh runtime for ``agent_key`` as ``run`` pins it, or None.
    The runtime carries ``pin`` (the ``agent_version`` to record for an unpinned run)."""
    definition = find_definition(agent_key, run)
    if definition is None:
        return None
    runtime = build_runtime(agent_key, definition)
    # What this run executes; the runtime records it on its own run row (registry.get_runtime).
    runtime.pin = definition.pin
    return runtime
