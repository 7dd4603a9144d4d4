"""Starter templates: a working agent (or a small team of agents) in one click.

Every template leaves the model blank, so it runs on the site's default model (the offline demo
model on a fresh install) at once; the user picks a real model in the editor later. Keys are
derived from the names and made free (see :func:`free_key`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction

from builder.models import Agent, AgentSystem, ToolDefinition
from builder.schema import ConfigError, Known
from builder.selectors import known_for

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

MAX_KEY = 64


def key_from_name(name: str) -> str:
    """The agent key a name suggests: ``"Support Bot (EU)"`` -> ``"support-bot-eu"``.
    builder.js derives the same key live while the name is typed; keep the two in step."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:MAX_KEY].strip("-")
    if len(key) < 3:
        key = f"agent-{key}".strip("-") if key else "agent"
    return key


def _taken(prefix: str) -> set[str]:
    from builder.services.agents import code_agent_keys  # cycle: builder.services.agents imports this module

    taken = set(Agent.objects.filter(slug__startswith=prefix).values_list("slug", flat=True))
    taken |= set(AgentSystem.objects.filter(slug__startswith=prefix).values_list("slug", flat=True))
    return taken | {key for key in code_agent_keys() if key.startswith(prefix)}


def free_key(base: str) -> str:
    """``base`` if no agent, system or code-registered agent holds it, else ``base-2``, ``base-3``…"""
    taken = _taken(base[: MAX_KEY - 4])
    if base not in taken:
        return base
    stem = base[: MAX_KEY - 4].rstrip("-")
    for number in range(2, 10_000):
        candidate = f"{stem}-{number}"
        if candidate not in taken:
            return candidate
    raise ConfigError({"slug": "Every variant of this key is taken; type another."})


@dataclass(frozen=True)
class Template:
    id: str
    name: str
    icon: str
    summary: str
    prompt: str
    python_tools: tuple[str, ...] = ()
    http_tool: dict[str, Any] | None = None
    specialists: tuple[tuple[str, str, str], ...] = field(default=())  # (name, icon, prompt)
    opening: str = ""
    questions: tuple[str, ...] = ()


TEMPLATES: tuple[Template, ...] = (
    Template(
        id="support",
        name="Support assistant",
        icon="🎧",
        summary="Answers customers politely, asks for what it needs, hands over to a person when unsure.",
        prompt=(
            "You are a friendly support assistant for our company.\n"
            "- Answer briefly and politely, in the customer's language.\n"
            "- Ask one question at a time when you need details (order number, e-mail).\n"
            "- Never invent policies, prices or dates. If you do not know, say so and offer to "
            "hand the conversation to a person.\n"
            "- Never ask for passwords or card numbers."
        ),
        opening="Hi! How can I help you today?",
        questions=("Where is my order?", "How do I return something?"),
    ),
    Template(
        id="faq",
        name="FAQ assistant",
        icon="📚",
        summary="Answers only from the knowledge you paste into its instructions; says so when it does not know.",
        prompt=(
            "You answer questions using ONLY the knowledge below.\n"
            'If the answer is not in the knowledge, say: "I don\'t know that yet" and suggest '
            "contacting us. Never guess. Quote the relevant part when it helps.\n\n"
            "## Knowledge\n"
            "Opening hours: Monday to Friday, 9:00-17:00.\n"
            "Returns: within 30 days with the receipt.\n"
            "(Replace these lines with your own questions and answers.)"
        ),
        opening="Ask me anything about our opening hours and returns.",
        questions=("When are you open?", "Can I return an item?"),
    ),
    Template(
        id="researcher",
        name="Researcher",
        icon="🔎",
        summary="Looks things up on Wikipedia with an HTTP tool and answers with sources.",
        prompt=(
            "You research questions. Use the wikipedia_search tool to find relevant articles, "
            "then answer in a few sentences and list the article titles you used as sources. "
            "If the search finds nothing useful, say so."
        ),
        python_tools=("current_time",),
        http_tool={
            "name": "wikipedia_search",
            "description": "Search English Wikipedia; returns article titles and snippets for a query.",
            "spec": {
                "method": "GET",
                "url": "https://en.wikipedia.org/w/api.php",
                "headers": {},
                "query_template": {
                    "action": "query",
                    "list": "search",
                    "srsearch": "{query}",
                    "format": "json",
                    "srlimit": "5",
                },
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string", "description": "What to search for"}},
                    "required": ["query"],
                },
            },
        },
    ),
    Template(
        id="router",
        name="Front desk router",
        icon="🧭",
        summary="Routes each question to one of two specialists (billing, technical) and replies with their answer.",
        prompt=(
            "You are the front desk. Do not answer questions yourself: pass billing questions "
            "(invoices, refunds, prices) to the billing specialist and technical questions "
            "(errors, setup, how-to) to the technical specialist, then give the customer their "
            "answer in your own words. Ask a short question if you cannot tell which it is."
        ),
        specialists=(
            (
                "Billing specialist",
                "💳",
                "You answer billing questions: invoices, refunds, prices, payment methods. "
                "Be precise; never promise refunds you cannot confirm.",
            ),
            (
                "Technical specialist",
                "🛠️",
                "You answer technical questions: errors, setup and how-to. Give numbered steps.",
            ),
        ),
    ),
)
TEMPLATES_BY_ID = {t.id: t for t in TEMPLATES}


def _http_tool(owner: AbstractBaseUser, definition: dict[str, Any]) -> str:
    """The user's tool of that name: reused when it exists, created otherwise."""
    from builder.services.tools import _runtime_check, tool_save  # cycle: via builder.services

    name = definition["name"]
    if not ToolDefinition.objects.filter(owner=owner, name=name).exists():
        _runtime_check({**definition["spec"], "name": name, "description": definition["description"]})
        tool_save(
            owner=owner,
            name=name,
            description=definition["description"],
            spec=definition["spec"],
            secrets=None,
        )
    return name


@transaction.atomic
def agent_from_template(*, owner: AbstractBaseUser, template_id: str, known: Known | None = None) -> Agent:
    """Create the template's agent (and its tool or specialists); returns the agent to open."""
    from builder.services.agents import agent_create  # cycle: builder.services.agents imports this module

    template = TEMPLATES_BY_ID.get(template_id)
    if template is None:
        raise ConfigError({"template": "Unknown template; pick one from the list."})
    config: dict[str, Any] = {
        "system_prompt": template.prompt,
        "python_tools": list(template.python_tools),
        "opening_message": template.opening,
        "suggested_questions": list(template.questions),
    }
    if template.http_tool:
        config["http_tools"] = [_http_tool(owner, template.http_tool)]
    sub_agents = []
    for name, icon, prompt in template.specialists:
        specialist = agent_create(
            owner=owner,
            slug=free_key(key_from_name(name)),
            name=name,
            icon=icon,
            description=f"Specialist of {template.name}.",
            config={"system_prompt": prompt},
        )
        sub_agents.append({"agent_key": specialist.slug, "mode": "delegate", "context": "full"})
    config["sub_agents"] = sub_agents
    # ``known`` was read before the tool and the specialists existed: check against the fresh list
    if known is not None and (template.http_tool or sub_agents):
        known = known_for(owner)
    return agent_create(
        owner=owner,
        slug=free_key(key_from_name(template.name)),
        name=template.name,
        icon=template.icon,
        description=template.summary,
        config=config,
        known=known,
    )
