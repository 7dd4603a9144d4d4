"""Import and export of agents (and systems) as readable YAML.

Export writes the draft configuration and identity; secrets never leave the
database (tools are referred to by name, knowledge bases by public id and name,
never their documents). Import is two steps: :func:`import_plan` validates the
whole file and says what would be created or changed, then :func:`import_apply`
does it in one transaction, so a bad file saves nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml
from django.db import transaction

from builder.access import perms_for
from builder.models import Agent, AgentSystem
from builder.schema import CONFIG_FORMAT, ConfigError, Known, parse_config, validate_slug
from builder.services.agents import agent_create, agent_update_draft
from builder.services.knowledge import (
    SETTINGS,
    changes_text,
    knowledge_link_add,
    knowledge_link_update,
    knowledge_links,
    knowledge_settings_check,
    settings_text,
    system_knowledge_from_text,
    visible_knowledge_bases,
    visible_knowledge_links,
)
from builder.services.systems import system_save
from rag.models import KnowledgeBase
from runtime.jsonsafe import text_problem

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

MAX_IMPORT_BYTES = 512 * 1024
# An exported file has a few hundred nodes and no aliases; these leave room for hand-written
# YAML and refuse an alias bomb ("billion laughs") before anything expands it.
MAX_IMPORT_NODES = 50_000
MAX_IMPORT_DEPTH = 64


class _TooBig(Exception):
    pass


def _check_expanded(root: yaml.Node) -> None:
    """Refuse ``root`` if it would hold too many values (or nest too deep) once aliases expand.

    An alias is the same node object in the composed graph, so each node's expanded size is
    computed once (memoised by identity), iteratively (deep nesting cannot recurse), and
    nothing is expanded. A scalar holding a character no database text can (a NUL, a lone
    surrogate such as an escaped ``\\ud800``) is refused here too, with its line.
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            problem = text_problem(node.value)
            if problem:
                raise ConfigError({"file": f"Line {node.start_mark.line + 1}: {problem}"})
            sizes[id(node)], depths[id(node)] = 1, 1
            continue
        children = (
            [child for pair in node.value for child in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if not children_done:
            open_nodes.add(id(node))
            stack.append((node, True))
            for child in children:
                if id(child) in open_nodes:
                    raise _TooBig  # an alias to its own ancestor: infinitely large
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        open_nodes.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        depths[id(node)] = 1 + max((depths[id(child)] for child in children), default=0)
        if sizes[id(node)] > MAX_IMPORT_NODES or depths[id(node)] > MAX_IMPORT_DEPTH:
            raise _TooBig


class _ImportLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a document too large or deep once its aliases expand."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expanded(node)
        return super().construct_document(node)


def _knowledge_data(target: Agent | AgentSystem, user: AbstractBaseUser) -> dict[str, Any]:
    """``{"knowledge_bases": [...]}``: the bases of ``target`` that ``user`` may see, by reference
    (public id and name) with how each is used; nothing when there is none (files of agents
    without knowledge stay as they were). Bases hidden from ``user`` are left out, name and all."""
    links = visible_knowledge_links(target, user).order_by("knowledge_base__name", "pk")
    refs = [
        {
            "id": str(link.knowledge_base.public_id),
            "name": link.knowledge_base.name,
            **{name: getattr(link, name) for name in SETTINGS},
        }
        for link in links
    ]
    return {"knowledge_bases": refs} if refs else {}


def _agent_data(agent: Agent, user: AbstractBaseUser) -> dict[str, Any]:
    return {
        "slug": agent.slug,
        "name": agent.name,
        "description": agent.description,
        "icon": agent.icon,
        "config": agent.draft.config,
        **_knowledge_data(agent, user),
    }


def export_agent(*, agent: Agent, user: AbstractBaseUser) -> str:
    """``agent``'s file as ``user`` (who may see it) downloads it."""
    return _dump({"format": CONFIG_FORMAT, "kind": "agent", "agents": [_agent_data(agent, user)]})


def export_system(*, system: AgentSystem, user: AbstractBaseUser) -> str:
    """``system``'s file, its members' agents included, as ``user`` (who may see it) downloads it."""
    members = system.members.select_related("agent__draft")
    agents = {system.entry_agent.slug: system.entry_agent}
    agents.update({m.agent.slug: m.agent for m in members})
    data = {
        "format": CONFIG_FORMAT,
        "kind": "system",
        "agents": [_agent_data(a, user) for a in agents.values()],
        "system": {
            "slug": system.slug,
            "name": system.name,
            "description": system.description,
            "entry_agent": system.entry_agent.slug,
            "members": [{"agent": m.agent.slug, "role": m.role} for m in members],
            **_knowledge_data(system, user),
        },
    }
    return _dump(data)


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


@dataclass
class PlanItem:
    action: str  # "create" | "update"
    kind: str  # "agent" | "system"
    slug: str
    name: str
    changes: list[str] = field(default_factory=list)
    # knowledge bases: what will be attached or changed, in words, and those left out and why
    knowledge: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # the bases to attach, each with its settings (what ``import_apply`` does)
    links: list[tuple[KnowledgeBase, dict[str, Any]]] = field(default_factory=list, repr=False)


SKIPPED = (
    "knowledge base {name!r} is not attached: there is no knowledge base with the id {id} here "
    "that you can see; ask its owner to share it, then attach it on the Knowledge page"
)


def _knowledge_refs(raw: Any, where: str) -> list[tuple[uuid.UUID, str, dict[str, Any]]]:
    """The file's ``knowledge_bases`` list checked: (public id, name, settings) each; a bad value is
    a ConfigError naming its place, as everywhere in the file. Absent (older files): none."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(
            {
                "file": f"{where}.knowledge_bases must be a list of knowledge bases (id, name, mode, top_k, score_threshold)."
            }
        )
    refs: list[tuple[uuid.UUID, str, dict[str, Any]]] = []
    for index, ref in enumerate(raw, start=1):
        at = f"{where}.knowledge_bases[{index}]"
        if not isinstance(ref, dict):
            raise ConfigError(
                {"file": f"{at} must be a mapping with id, name, mode, top_k and score_threshold."}
            )
        if ref.get("id") is None:
            raise ConfigError(
                {"file": f"{at}.id is missing: the knowledge base's id; export the file again."}
            )
        try:
            public_id = uuid.UUID(str(ref["id"]))
        except ValueError:
            raise ConfigError(
                {"file": f"{at}.id: {ref.get('id')!r} is not a knowledge base id; export the file again."}
            ) from None
        name = ref.get("name", "")
        if not isinstance(name, str):
            raise ConfigError({"file": f"{at}.name must be a text."})
        if any(public_id == seen for seen, _name, _settings in refs):
            raise ConfigError({"file": f"{at}.id: the knowledge base {name or public_id!s} is listed twice."})
        settings = {"mode": ref.get("mode", "auto"), "top_k": ref.get("top_k", 4)}
        settings["score_threshold"] = ref.get("score_threshold", 0.0)
        try:
            knowledge_settings_check(**settings)
        except ConfigError as exc:
            raise ConfigError(
                {"file": "; ".join(f"{at}.{key}: {message}" for key, message in exc.errors.items())}
            ) from None
        settings["score_threshold"] = float(settings["score_threshold"])
        refs.append((public_id, name[:200], settings))
    return refs


def _plan_knowledge(
    user: AbstractBaseUser, item: PlanItem, raw: Any, where: str, existing: Agent | AgentSystem | None
) -> None:
    """Fill ``item``'s knowledge: each base of the file ``user`` may see (the builder's rule for
    attaching, matched by public id) is attached, or its settings changed; the others are skipped
    with the reason (a base that does not exist and one hidden from ``user`` read the same, so a
    file cannot probe for ids). Import never detaches a base the file does not list."""
    refs = _knowledge_refs(raw, where)
    if not refs:
        return
    bases = visible_knowledge_bases(user, [public_id for public_id, _name, _settings in refs])
    current = {}
    if existing is not None:
        current = {link.knowledge_base_id: link for link in knowledge_links(existing)}
    for public_id, name, settings in refs:
        base = bases.get(public_id)
        if base is None:
            item.skipped.append(SKIPPED.format(name=name or "(no name)", id=public_id))
            continue
        link = current.get(base.pk)
        if link is None:
            item.knowledge.append(f"attach knowledge base {base.name} ({settings_text(settings)})")
        else:
            # the words the audit log will use for the same change
            changed = changes_text({name: getattr(link, name) for name in SETTINGS}, settings)
            if not changed:
                continue
            item.knowledge.append(f"knowledge base {base.name}: {changed}")
        item.links.append((base, settings))


@dataclass
class ImportPlan:
    items: list[PlanItem]
    data: dict[str, Any]


def _load(text: str) -> dict[str, Any]:
    if len(text.encode()) > MAX_IMPORT_BYTES:
        raise ConfigError({"file": f"The file is larger than {MAX_IMPORT_BYTES // 1024} KB."})
    try:
        data = yaml.load(text, Loader=_ImportLoader)  # noqa: S506 - a SafeLoader subclass
    except (_TooBig, RecursionError):
        raise ConfigError(
            {
                "file": f"The file expands to more than {MAX_IMPORT_NODES:,} values or nests deeper than "
                f"{MAX_IMPORT_DEPTH} levels (anchors and aliases count once per use); "
                "export it again from this builder."
            }
        ) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ConfigError({"file": f"This is not valid YAML or JSON{at}."}) from None
    if not isinstance(data, dict):
        raise ConfigError({"file": "The file must contain a mapping with 'format', 'kind' and 'agents'."})
    fmt = data.get("format")
    if fmt is None:
        raise ConfigError({"file": "The file has no 'format' field; export it again from this builder."})
    if fmt != CONFIG_FORMAT:
        raise ConfigError(
            {
                "file": f"This file uses format {fmt!r}; this builder reads format {CONFIG_FORMAT}. Export it again."
            }
        )
    if data.get("kind") not in ("agent", "system"):
        raise ConfigError({"file": "'kind' must be 'agent' or 'system'."})
    if not isinstance(data.get("agents"), list) or not data["agents"]:
        raise ConfigError({"file": "The file lists no agents under 'agents'."})
    return data


def import_plan(*, user: AbstractBaseUser, text: str, known: Known) -> ImportPlan:
    """Validate everything and describe what would happen; raises ConfigError naming the place."""
    data = _load(text)
    items: list[PlanItem] = []
    slugs = {a.get("slug") for a in data["agents"] if isinstance(a, dict)}
    agent_known = Known(
        models=known.models,
        http_tools=known.http_tools,
        python_tools=known.python_tools,
        agents=(known.agents or frozenset()) | frozenset(s for s in slugs if isinstance(s, str)),
    )
    for index, raw in enumerate(data["agents"], start=1):
        where = f"agents[{index}]"
        if not isinstance(raw, dict):
            raise ConfigError({"file": f"{where} must be a mapping."})
        missing = [k for k in ("slug", "name", "config") if k not in raw]
        if missing:
            raise ConfigError({"file": f"{where} is missing {', '.join(missing)}."})
        slug = raw["slug"]
        problem = validate_slug(slug)
        if problem:
            raise ConfigError({"file": f"{where}.slug: {problem}"})
        try:
            parse_config(raw["config"], known=agent_known, self_key=slug)
        except ConfigError as exc:
            raise ConfigError(
                {"file": f"{where} ({slug}): " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items())}
            ) from None
        existing = Agent.objects.select_related("draft").filter(slug=slug).first()
        if existing is None:
            item = PlanItem("create", "agent", slug, str(raw["name"]))
        elif not perms_for(user, existing).edit:
            raise ConfigError(
                {
                    "file": f"{where}: the key {slug!r} belongs to someone else's agent you may not edit; "
                    "rename it in the file, or ask its owner for the editor role."
                }
            )
        else:
            changed = [k for k, v in raw["config"].items() if existing.draft.config.get(k) != v]
            changed += [
                k for k in ("name", "description", "icon") if k in raw and getattr(existing, k) != raw[k]
            ]
            item = PlanItem("update", "agent", slug, str(raw["name"]), changed)
        _plan_knowledge(user, item, raw.get("knowledge_bases"), f"{where} ({slug})", existing)
        if item.action == "update" and not (item.changes or item.knowledge):
            item.changes = ["nothing"]
        items.append(item)
    if data["kind"] == "system":
        items.append(_plan_system(user, data.get("system"), slugs))
    return ImportPlan(items=items, data=data)


def _plan_system(user: AbstractBaseUser, raw: Any, agent_slugs: set[Any]) -> PlanItem:
    if not isinstance(raw, dict):
        raise ConfigError({"file": "A system file needs a 'system' mapping."})
    missing = [k for k in ("slug", "name", "entry_agent") if k not in raw]
    if missing:
        raise ConfigError({"file": f"system is missing {', '.join(missing)}."})
    problem = validate_slug(raw["slug"])
    if problem:
        raise ConfigError({"file": f"system.slug: {problem}"})
    if raw["entry_agent"] not in agent_slugs:
        raise ConfigError(
            {"file": f"system.entry_agent {raw['entry_agent']!r} is not one of the file's agents."}
        )
    for member in raw.get("members") or []:
        if not isinstance(member, dict) or member.get("agent") not in agent_slugs:
            raise ConfigError({"file": f"system member {member!r} must name one of the file's agents."})
    knowledge = raw.get("knowledge") or []
    if not isinstance(knowledge, list) or not all(isinstance(k, str) for k in knowledge):
        raise ConfigError({"file": "system.knowledge, if present, must be a list of texts."})
    existing = AgentSystem.objects.filter(slug=raw["slug"]).first()
    if existing and not perms_for(user, existing).edit:
        raise ConfigError(
            {
                "file": f"the system key {raw['slug']!r} belongs to someone else's system you may not edit; "
                "rename it in the file, or ask its owner for the editor role."
            }
        )
    item = PlanItem("update" if existing else "create", "system", raw["slug"], str(raw["name"]))
    if any(k.strip() for k in knowledge):
        # files exported before knowledge bases replaced the system's text box
        item.changes.append(f"shared knowledge (becomes a new knowledge base named {raw['name']})")
    _plan_knowledge(user, item, raw.get("knowledge_bases"), "system", existing)
    return item


def _attach_planned(target: Agent | AgentSystem, item: PlanItem, user: AbstractBaseUser) -> None:
    """Attach or change what the plan says, through the builder's services (their access rule
    again, and one audit entry each)."""
    current = {link.knowledge_base_id: link for link in knowledge_links(target)}
    for base, settings in item.links:
        link = current.get(base.pk)
        if link is None:
            knowledge_link_add(target=target, user=user, knowledge_base=base, **settings)
        else:
            knowledge_link_update(link=link, user=user, **settings)


@transaction.atomic
def import_apply(*, user: AbstractBaseUser, text: str, known: Known) -> list[PlanItem]:
    plan = import_plan(user=user, text=text, known=known)
    by_slug = {a["slug"]: a for a in plan.data["agents"]}
    # Create every agent first with a neutral config so sub-agent references between them resolve.
    for item in plan.items:
        if item.kind == "agent" and item.action == "create":
            raw = by_slug[item.slug]
            agent_create(
                owner=user,
                slug=item.slug,
                name=raw["name"],
                description=raw.get("description", ""),
                icon=raw.get("icon", ""),
            )
    for item in plan.items:
        if item.kind != "agent":
            continue
        raw = by_slug[item.slug]
        agent = Agent.objects.select_related("draft").get(slug=item.slug)
        agent_update_draft(
            agent=agent,
            user=user,
            config=raw["config"],
            name=raw["name"],
            description=raw.get("description", ""),
            icon=raw.get("icon") or agent.icon,
        )
        _attach_planned(agent, item, user)
    if plan.data["kind"] == "system":
        raw = plan.data["system"]
        system = system_save(
            owner=user,
            system=AgentSystem.objects.filter(slug=raw["slug"]).first(),
            slug=raw["slug"],
            name=raw["name"],
            description=raw.get("description", ""),
            entry_agent=Agent.objects.get(slug=raw["entry_agent"]),
            members={m["agent"]: m.get("role", "") for m in raw.get("members") or []},
        )

        system_knowledge_from_text(system=system, user=user, snippets=raw.get("knowledge") or [])
        _attach_planned(system, next(item for item in plan.items if item.kind == "system"), user)
    return plan.items
