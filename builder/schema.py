"""The agent configuration schema, written once.

Forms, import/export, the admin and the runtime adapter all go through
:func:`parse_config`, so a rule (a prompt length, a known model, a sub-agent
mode) lives in exactly one place. Errors are collected per field so a form can
show each message next to the field it concerns.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

# Bumped when the stored/exported shape changes; older files are refused with a
# message that says what to do (there is only one format so far).
CONFIG_FORMAT = 1

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
TOOL_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")
MAX_PROMPT = 20_000
INVOCATION_MODES = ("delegate", "handoff")
CONTEXT_MODES = ("full", "summary", "message_only")
MEMORY_SCOPES = ("conversation", "user", "system")


class ConfigError(ValueError):
    """Invalid configuration; ``errors`` maps a field name to a message that says the fix."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Known:
    """What the configuration may refer to; ``None`` skips that check (e.g. stored versions)."""

    models: frozenset[str] | None = None
    http_tools: frozenset[str] | None = None
    python_tools: frozenset[str] | None = None
    agents: frozenset[str] | None = None


@dataclass
class SubAgentLink:
    agent_key: str
    mode: str = "delegate"
    context: str = "full"
    description: str = ""


@dataclass
class MemorySettings:
    enabled: bool = False
    scope: str = "conversation"


@dataclass
class AgentConfig:
    system_prompt: str = "You are a helpful assistant."
    model: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    http_tools: list[str] = field(default_factory=list)
    python_tools: list[str] = field(default_factory=list)
    sub_agents: list[SubAgentLink] = field(default_factory=list)
    memory: MemorySettings = field(default_factory=MemorySettings)
    # What a person sees before the first message (playground, widget); never sent to the model.
    opening_message: str = ""
    suggested_questions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = set(AgentConfig.__dataclass_fields__)


def _number(value: Any, name: str, errors: dict[str, str], *, kind: type, low: float, high: float) -> Any:
    if value in (None, ""):
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        errors[name] = f"Enter a {'whole ' if kind is int else ''}number between {low:g} and {high:g}."
        return None
    if isinstance(value, bool) or not low <= number <= high:
        errors[name] = f"Enter a {'whole ' if kind is int else ''}number between {low:g} and {high:g}."
        return None
    return number


def _names(
    value: Any, name: str, errors: dict[str, str], known: frozenset[str] | None, what: str
) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[name] = f"Give a list of {what} names."
        return []
    unknown = [v for v in value if known is not None and v not in known]
    if unknown:
        errors[name] = f"Unknown {what}: {', '.join(unknown)}. Pick from the list."
    return list(dict.fromkeys(value))


def parse_config(data: Any, *, known: Known | None = None, self_key: str = "") -> AgentConfig:
    """Validate ``data`` (a stored or imported dict) into an :class:`AgentConfig` or raise ConfigError."""
    known = known or Known()
    if not isinstance(data, dict):
        raise ConfigError({"config": "The configuration must be a mapping of fields."})
    errors: dict[str, str] = {}
    extra = sorted(set(data) - _FIELDS - {"format"})
    if extra:
        errors["config"] = f"Unknown field(s): {', '.join(extra)}. Remove them."

    prompt = data.get("system_prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        errors["system_prompt"] = "Write a system prompt: tell the agent who it is and what it should do."
        prompt = ""
    elif len(prompt) > MAX_PROMPT:
        errors["system_prompt"] = (
            f"The prompt is {len(prompt)} characters; shorten it to {MAX_PROMPT} or fewer."
        )
    elif "\x00" in prompt:
        errors["system_prompt"] = "The prompt contains a NUL character; remove it."

    model = data.get("model") or ""
    if not isinstance(model, str):
        errors["model"] = "Pick a model from the list."
        model = ""
    elif model and known.models is not None and model not in known.models:
        errors["model"] = f"Unknown model {model!r}. Pick one of the models the configured providers offer."

    temperature = _number(data.get("temperature"), "temperature", errors, kind=float, low=0, high=2)
    max_tokens = _number(data.get("max_tokens"), "max_tokens", errors, kind=int, low=1, high=200_000)
    http_tools = _names(data.get("http_tools"), "http_tools", errors, known.http_tools, "HTTP tool")
    python_tools = _names(data.get("python_tools"), "python_tools", errors, known.python_tools, "Python tool")

    sub_agents: list[SubAgentLink] = []
    raw_links = data.get("sub_agents") or []
    if not isinstance(raw_links, list):
        errors["sub_agents"] = "Give a list of sub-agents."
        raw_links = []
    for index, raw in enumerate(raw_links, start=1):
        if isinstance(raw, str):
            raw = {"agent_key": raw}
        if not isinstance(raw, dict) or not isinstance(raw.get("agent_key"), str):
            errors["sub_agents"] = f"Sub-agent {index} needs an agent_key."
            continue
        link = SubAgentLink(
            agent_key=raw["agent_key"],
            mode=str(raw.get("mode") or "delegate"),
            context=str(raw.get("context") or "full"),
            description=str(raw.get("description") or ""),
        )
        if link.agent_key == self_key and self_key:
            errors["sub_agents"] = "An agent cannot be its own sub-agent."
        elif known.agents is not None and link.agent_key not in known.agents:
            errors["sub_agents"] = f"Unknown agent {link.agent_key!r}; pick one of your agents."
        elif link.mode not in INVOCATION_MODES:
            errors["sub_agents"] = f"Mode for {link.agent_key} must be one of {', '.join(INVOCATION_MODES)}."
        elif link.context not in CONTEXT_MODES:
            errors["sub_agents"] = f"Context for {link.agent_key} must be one of {', '.join(CONTEXT_MODES)}."
        sub_agents.append(link)

    raw_memory = data.get("memory") or {}
    memory = MemorySettings()
    if not isinstance(raw_memory, dict):
        errors["memory"] = "Memory settings must be a mapping with 'enabled' and 'scope'."
    else:
        memory = MemorySettings(
            enabled=bool(raw_memory.get("enabled", False)),
            scope=str(raw_memory.get("scope") or "conversation"),
        )
        if memory.scope not in MEMORY_SCOPES:
            errors["memory"] = f"Memory scope must be one of {', '.join(MEMORY_SCOPES)}."

    opening, questions = _experience(data, errors)

    if errors:
        raise ConfigError(errors)
    return AgentConfig(
        opening_message=opening,
        suggested_questions=questions,
        system_prompt=prompt,
        model=model,
        temperature=temperature,
        max_tokens=max_tokens,
        http_tools=http_tools,
        python_tools=python_tools,
        sub_agents=sub_agents,
        memory=memory,
    )


MAX_OPENING = 1000
MAX_QUESTIONS = 6
MAX_QUESTION = 200


def _experience(data: dict[str, Any], errors: dict[str, str]) -> tuple[str, list[str]]:
    """The opening message and the suggested questions shown before the first message."""
    opening = data.get("opening_message") or ""
    if not isinstance(opening, str):
        errors["opening_message"] = "The opening message must be text."
        opening = ""
    elif len(opening) > MAX_OPENING:
        errors["opening_message"] = (
            f"The opening message is {len(opening)} characters; shorten it to {MAX_OPENING} or fewer."
        )
    elif "\x00" in opening:
        errors["opening_message"] = "The opening message contains a NUL character; remove it."
    raw = data.get("suggested_questions") or []
    if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
        errors["suggested_questions"] = "Suggested questions must be a list of texts."
        return opening.strip(), []
    questions = [q.strip() for q in raw if q.strip()]
    if len(questions) > MAX_QUESTIONS:
        errors["suggested_questions"] = (
            f"{len(questions)} questions: keep the {MAX_QUESTIONS} most useful, one per line."
        )
    elif any(len(q) > MAX_QUESTION for q in questions):
        errors["suggested_questions"] = f"Keep each question to {MAX_QUESTION} characters or fewer."
    elif any("\x00" in q for q in questions):
        errors["suggested_questions"] = "A question contains a NUL character; remove it."
    return opening.strip(), questions


def validate_slug(slug: Any) -> str | None:
    """A message if ``slug`` is not a usable agent key, else None."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        return "Use 3-64 lowercase letters, digits and hyphens, starting and ending with a letter or digit."
    return None
