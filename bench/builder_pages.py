"""Every builder page and the admin's run pages at scale: 1,000 agents, 100 systems, 10,000 runs,
100,000 events (one run with 5,000 token deltas), next to the same pages with a handful of rows.

Each page is one a staff user opens: the agent list and editor, the playground with an open
conversation, versions and their diff, tools, systems, import, memory, model settings, knowledge,
the publish page and API keys, the owner's view (conversations, a transcript, usage), the sharing
panel and teams; and in the admin the run list (also filtered by agent, status and date), the run
page of the run with 5,000 deltas, the event list, the conversation list and the page of a
conversation of 20 turns. The measuring user
is a superuser, so every list holds every row of its kind (the agent list 1,000 agents, the run
list 10,000 runs), except where a page is about one object (that object is the superuser's own
agent, "support", with 200 published versions, 1,000 memory entries, 2,000 conversations, 10
colleagues and 2 teams sharing it, 200 audit rows; the knowledge base has 500 documents).

Server time is measured in-process through Django's test client (the full middleware stack and
template rendering, no network), p50 of ``REPEATS`` requests after three warm-ups. Query counts
are taken once with a few rows of every kind and once at full size; they must be equal.
Target: p50 at most 50 ms on each page, query count independent of the number of rows. The CPU
column is this process's CPU time per request: on a shared, loaded machine the wall time mostly
measures the wait for a core, the CPU time what the page costs.
``BENCH_PAGES=substring`` measures only the pages whose name contains it.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

from bench.common import cpu_p50, dedicated_database, page_p50, setup_django

AGENTS = 1_000
SYSTEMS = 100
RUNS = 10_000
EVENTS = 100_000
DELTAS = 5_000  # token deltas of the one run whose admin page is measured
VERSIONS = 200  # of the measured agent
MEMORY = 1_000  # entries of the measured agent
CONVERSATIONS = 2_000  # of the measured agent (part of the 10,000 runs)
TOOLS = 200
KNOWLEDGE_BASES = 50
DOCUMENTS = 500  # in the measured knowledge base
TURNS = 20  # of the open playground conversation (fixed: a conversation is shown whole)
OWNERS = 10
REPEATS = 30
TARGET_MS = 50.0
# the few rows the query counts are first taken with
SMALL = {
    "agents": 20,
    "systems": 2,
    "runs": 20,
    "events": 200,
    "deltas": 50,
    "versions": 3,
    "memory": 5,
    "conversations": 5,
    "tools": 3,
    "knowledge_bases": 2,
    "documents": 3,
}
FULL = {
    "agents": AGENTS,
    "systems": SYSTEMS,
    "runs": RUNS,
    "events": EVENTS,
    "deltas": DELTAS,
    "versions": VERSIONS,
    "memory": MEMORY,
    "conversations": CONVERSATIONS,
    "tools": TOOLS,
    "knowledge_bases": KNOWLEDGE_BASES,
    "documents": DOCUMENTS,
}
CONFIG = {"system_prompt": "You help customers with their orders.", "model": "demo"}


class World:
    """What the pages are about, and how many rows of each kind exist so far."""

    def __init__(self, admin, owners: list) -> None:
        self.admin, self.owners = admin, owners
        self.count = dict.fromkeys(FULL, 0)


def _setup(world: World) -> None:
    """The objects the pages show, made through the services, as a person would."""
    from django.contrib.auth.models import Group

    from builder.models import ToolDefinition
    from builder.services import agent_create, agent_publish, agent_update_draft
    from builder.services.knowledge import knowledge_attach
    from builder.services.sharing import share_add
    from builder.services.systems import system_save
    from rag.services import knowledge_base_create
    from runtime.channels.api_keys import api_key_create
    from runtime.channels.services import widget_channel_create

    admin = world.admin
    agent = agent_create(owner=admin, slug="support", name="Support", config=CONFIG)
    agent_publish(agent=agent, user=admin)
    agent_update_draft(
        agent=agent,
        user=admin,
        config={**CONFIG, "system_prompt": "You help customers with their orders and returns, kindly."},
    )
    agent_publish(agent=agent, user=admin, note="kinder")
    agent_update_draft(agent=agent, user=admin, config={**CONFIG, "temperature": 0.3})
    helper = agent_create(owner=admin, slug="returns", name="Returns", config=CONFIG)
    world.agent, world.helper = agent, helper
    world.system = system_save(
        owner=admin,
        slug="desk",
        name="Help desk",
        entry_agent=agent,
        members={"support": "answers first", "returns": "handles returns"},
    )
    world.tool = ToolDefinition.objects.create(
        owner=admin,
        name="order_status",
        description="Look up an order",
        spec={
            "method": "GET",
            "url": "https://api.example.com/orders/{order_id}",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string", "description": "The order number"}},
                "required": ["order_id"],
            },
        },
    )
    world.base = knowledge_base_create(owner=admin, name="Help centre")
    knowledge_attach(target=agent, user=admin, knowledge_bases=[world.base])
    widget_channel_create(agent_key="support", user=admin, allowed_origins=["https://shop.example.com"])
    api_key_create(name="shop backend", agent_keys=["support"], user=admin)
    # collaborators: 10 people and 2 teams share the agent
    for i, person in enumerate(world.owners):
        share_add(obj=agent, actor=admin, role=("viewer", "editor")[i % 2], user=person)
    for i in range(2):
        share_add(obj=agent, actor=admin, role="viewer", group=Group.objects.create(name=f"team {i}"))
    world.playground = _playground_conversation(admin)


def _playground_conversation(admin):
    """The admin's playground conversation with ``TURNS`` finished turns."""
    from runtime.models import AgentConversation, AgentEvent, AgentMessage, AgentRun

    conversation = AgentConversation.objects.create(
        agent_key="support", user=admin, title="Where is my order?", metadata={"playground": True}
    )
    runs = AgentRun.objects.bulk_create(
        AgentRun(
            conversation=conversation,
            agent_key="support",
            user=admin,
            status="succeeded",
            agent_version="draft:support@3",
            caller=f"user:{admin.pk}",
            prompt_tokens=120,
            completion_tokens=40,
        )
        for _ in range(TURNS)
    )
    AgentMessage.objects.bulk_create(
        AgentMessage(
            conversation=conversation,
            run=run,
            seq=2 * i + (role == "assistant") + 1,
            role=role,
            content=f"Order {i} ships **today**; track it with the link in your email."
            if role == "assistant"
            else f"Where is order {i}?",
            agent_key="support" if role == "assistant" else "",
        )
        for i, run in enumerate(runs)
        for role in ("user", "assistant")
    )
    AgentEvent.objects.bulk_create(
        AgentEvent(run=run, seq=1, event_type="retrieval", payload={"citations": [], "pending_documents": 0})
        for run in runs
    )
    conversation.last_message_seq = 2 * TURNS
    conversation.save(update_fields=["last_message_seq"])
    return conversation


def _grow(world: World, target: dict[str, int]) -> None:
    """Add rows until each kind reaches ``target``."""
    from django.utils import timezone

    from bench.builder_owner_view import _fill as fill_conversations
    from builder.models import (
        Agent,
        AgentDraft,
        AgentDraftRevision,
        AgentSystem,
        AgentVersion,
        AuditEntry,
        SystemMember,
        ToolDefinition,
    )
    from rag.models import Document, KnowledgeBase
    from runtime.models import AgentConversation, AgentEvent, AgentRun, MemoryEntry

    admin, owners, count = world.admin, world.owners, world.count
    now = timezone.now()

    def more(kind: str) -> range:
        start, stop = count[kind], target[kind]
        count[kind] = stop
        return range(start, stop)

    made = Agent.objects.bulk_create(
        Agent(slug=f"agent-{i}", name=f"Agent {i}", description="A benchmark agent", owner=owners[i % OWNERS])
        for i in more("agents")
    )
    AgentDraft.objects.bulk_create(AgentDraft(agent=a, config=CONFIG) for a in made)
    AgentDraftRevision.objects.bulk_create(
        AgentDraftRevision(agent=a, revision=1, config=CONFIG) for a in made
    )
    agents = list(Agent.objects.exclude(slug__in=["support", "returns"]).order_by("pk"))
    systems = AgentSystem.objects.bulk_create(
        AgentSystem(slug=f"system-{i}", name=f"System {i}", owner=owners[i % OWNERS], entry_agent=agents[i])
        for i in more("systems")
    )
    SystemMember.objects.bulk_create(
        SystemMember(system=s, agent=agents[(j * 37 + k) % len(agents)], role="specialist")
        for j, s in enumerate(systems)
        for k in range(10)
    )
    # the measured agent's history: published versions (the newest is live), memory, audit rows
    versions = AgentVersion.objects.bulk_create(
        AgentVersion(
            agent=world.agent,
            number=n + 3,
            config={**CONFIG, "system_prompt": f"You help customers with their orders (take {n})."},
            name="Support",
            note=f"take {n}",
            published_by=admin,
        )
        for n in more("versions")
    )
    if versions:
        Agent.objects.filter(pk=world.agent.pk).update(published_version=versions[-1])
    MemoryEntry.objects.bulk_create(
        MemoryEntry(
            scope="system",
            system_key="support",
            agent_key="support",
            key=f"customer-{i}-language",
            value={"language": "Dutch", "since": i},
        )
        for i in more("memory")
    )
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor=admin,
            actor_name="admin",
            action="published",
            target_kind="agent",
            target_id=world.agent.public_id,
            target_name="Support",
            detail=f"version {v.number}",
        )
        for v in versions
    )
    ToolDefinition.objects.bulk_create(
        ToolDefinition(
            owner=owners[i % OWNERS],
            name=f"tool_{i}",
            description="A benchmark tool",
            spec={"method": "GET", "url": "https://api.example.com/x", "parameters": {"type": "object"}},
        )
        for i in more("tools")
    )
    KnowledgeBase.objects.bulk_create(
        KnowledgeBase(owner=owners[i % OWNERS], name=f"Base {i}", embedding_model="local")
        for i in more("knowledge_bases")
    )
    Document.objects.bulk_create(
        Document(
            knowledge_base=world.base,
            name=f"faq-{i}.md",
            file=f"rag/x/{i}.md",
            kind="md",
            size=2_000,
            sha256=hashlib.sha256(str(i).encode()).hexdigest(),
            status="ready",
            chunk_count=6,
            ready_at=now,
        )
        for i in more("documents")
    )
    # the measured agent's conversations (a run and two messages each), then the other runs
    new = more("conversations")
    fill_conversations(admin, "support", new.start, len(new))
    count["runs"] += len(new)
    runs = AgentRun.objects.bulk_create(
        (
            AgentRun(
                agent_key=agents[i % len(agents)].slug,
                user=owners[i % OWNERS],
                status="failed" if i % 40 == 0 else "succeeded",
                agent_version="draft:x@1",
                caller=f"user:{owners[i % OWNERS].pk}",
                prompt_tokens=100,
                completion_tokens=20,
                cost_usd="0.0010",
                next_seq=10,
            )
            for i in more("runs")
        ),
        batch_size=2_000,
    )
    # one run streamed 5,000 deltas; the other events come 10 a run
    if not hasattr(world, "big_run"):
        world.big_run = AgentRun.objects.create(
            agent_key="support", user=admin, status="succeeded", caller=f"user:{admin.pk}", attempt=1
        )
        AgentEvent.objects.create(run=world.big_run, seq=0, event_type="run.started", attempt=1)
    deltas = more("deltas")
    AgentEvent.objects.bulk_create(
        (
            AgentEvent(
                run=world.big_run,
                seq=i + 1,
                event_type="assistant.delta",
                payload={"delta": f"w{i} "},
                attempt=1,
            )
            for i in deltas
        ),
        batch_size=5_000,
    )
    AgentRun.objects.filter(pk=world.big_run.pk).update(next_seq=deltas.stop + 1)
    # the other events, about 10 a run: a run.started, then deltas
    wanted = max(target["events"] - count["events"] - len(deltas), 0)
    count["events"] = target["events"]
    AgentEvent.objects.bulk_create(
        (
            AgentEvent(
                run=runs[j % len(runs)],
                seq=j // len(runs),
                event_type="assistant.delta" if j >= len(runs) else "run.started",
                payload={"delta": "ok "} if j >= len(runs) else {},
                attempt=1,
            )
            for j in range(wanted)
        ),
        batch_size=5_000,
    )
    world.some_conversation = (
        AgentConversation.objects.filter(agent_key="support", user=None).order_by("-updated_at").first()
    )


def _pages(world: World) -> dict[str, tuple[str, str]]:
    """page name -> (who, url); who is "admin" (the superuser) throughout."""
    agent, system, tool, base = world.agent, world.system, world.tool, world.base
    a = f"/agents/{agent.public_id}"
    since = (world.now - timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    return {
        "admin index (yardstick)": "/admin/",
        "agent list": "/",
        "agent list, search": "/?q=agent-5",
        "new agent (templates)": "/agents/new/",
        "agent editor": f"{a}/",
        "playground (editor, 20-turn conversation open)": f"{a}/?conversation={world.playground.pk}",
        "playground turn (fragment)": f"/playground/runs/{world.playground.runs.order_by('created_at').last().pk}/",
        "versions": f"{a}/versions/",
        "diff, two versions": f"{a}/versions/diff/",
        "diff, draft vs live": f"{a}/versions/diff/?b=draft",
        "agent knowledge": f"{a}/knowledge/",
        "memory (agent)": f"{a}/memory/",
        "publish page (widget)": f"{a}/channels/",
        "API keys": f"{a}/publish/api-keys/",
        "sharing panel": f"{a}/sharing/",
        "owner's view: conversations": f"{a}/conversations/",
        "owner's view: transcript": f"{a}/conversations/{world.some_conversation.pk}/",
        "owner's view: usage": f"{a}/usage/",
        "tool list": "/tools/",
        "tool editor": f"/tools/{tool.public_id}/",
        "new tool": "/tools/new/",
        "system list": "/systems/",
        "system editor": f"/systems/{system.public_id}/",
        "memory (system)": f"/systems/{system.public_id}/memory/",
        "import": "/import/",
        "model settings": "/settings/models/",
        "knowledge list": "/knowledge/",
        "knowledge detail": f"/knowledge/{base.public_id}/",
        "teams": "/teams/",
        "admin: run list": "/admin/runtime/agentrun/",
        "admin: run list, filtered": "/admin/runtime/agentrun/?agent_key__icontains=agent-1&status__exact=succeeded"
        f"&created_at_from_0={since[:10]}&created_at_from_1={since[11:]}",
        f"admin: run page ({DELTAS:,} deltas)": f"/admin/runtime/agentrun/{world.big_run.pk}/change/",
        "admin: event list": "/admin/runtime/agentevent/",
        "admin: conversation list": "/admin/runtime/agentconversation/",
        "admin: conversation page (20 turns)": f"/admin/runtime/agentconversation/{world.playground.pk}/change/",
    }


def page_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        assert client.get(url).status_code == 200, url
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return len(ctx.captured_queries)


def main() -> list[dict]:
    with dedicated_database(prefix="benchb") as url:
        setup_django(url, ALLOWED_HOSTS="testserver")
        from django.contrib.auth import get_user_model
        from django.db import connections
        from django.test import Client
        from django.utils import timezone

        User = get_user_model()  # noqa: N806
        admin = User.objects.create_user("admin", is_staff=True, is_superuser=True)
        owners = [User.objects.create_user(f"owner{i}", is_staff=True) for i in range(OWNERS)]
        world = World(admin, owners)
        world.now = timezone.now()
        _setup(world)
        client = Client()
        client.force_login(admin)
        only = os.environ.get("BENCH_PAGES", "")

        _grow(world, SMALL)
        pages = {name: u for name, u in _pages(world).items() if only in name}
        small = {name: page_queries(client, u) for name, u in pages.items()}
        _grow(world, FULL)
        with connections["default"].cursor() as cursor:
            cursor.execute("ANALYZE")
        pages = {name: u for name, u in _pages(world).items() if only in name}
        rows = []
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        for name, u in pages.items():
            p50, queries = page_p50(client, u, repeats=REPEATS)
            cpu = cpu_p50(client, u, repeats=REPEATS)
            rows.append(
                {
                    "page": name,
                    "p50 server ms": f"{p50:.1f}",
                    "p50 CPU ms": f"{cpu:.1f}",
                    "queries (few rows)": small[name],
                    "queries (full)": queries,
                    "target (<=50 ms, fixed queries)": "met"
                    if p50 <= TARGET_MS and queries == small[name]
                    else "MISSED",
                    "load avg (1/5/15 min)": load,
                }
            )
            print(rows[-1], flush=True)
        connections.close_all()
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
