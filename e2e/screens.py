"""Every builder screen, with the data that makes it show something: the one list the screenshot
set (``test_small_screens``) and the accessibility pass (``test_accessibility``) walk.

A screen is ``(name, url, action)``; ``action(page)``, when given, does what a person does on the
page before it is looked at (paste a cURL command, read an OpenAPI document, open a section).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.processes import wait_until

Screen = tuple[str, str, Callable[[Any], None] | None]

OPENAPI = """openapi: 3.0.0
info: {title: Shop, version: "1"}
servers: [{url: "https://api.shop.example.com/v1"}]
paths:
  /orders/{id}:
    get:
      summary: Look up an order by its number
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
  /orders:
    post:
      summary: Place an order
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {sku: {type: string}, quantity: {type: integer}}}
"""
CURL = (
    "curl -H 'Authorization: Bearer sk-123' "
    "'https://api.example.com/v1/search?q=shoes&limit=5&in_stock_only=true'"
)


def _curl(page) -> None:
    page.get_by_text("Start from a cURL command").click()
    page.get_by_label("cURL command").fill(CURL)
    page.get_by_role("button", name="Read the command").click()
    expect(page.get_by_text("Read from your cURL command")).to_be_visible()


def _openapi(page) -> None:
    page.get_by_label("OpenAPI document").fill(OPENAPI)
    page.get_by_role("button", name="Read the document").click()
    expect(page.get_by_text("Operations to import")).to_be_visible()


def _import_preview(text: str) -> Callable[[Any], None]:
    def preview(page) -> None:
        page.get_by_label("Or paste the export").fill(text)
        page.locator("#builder").get_by_role("button", name="Preview").click()
        expect(page.locator("#builder")).to_contain_text("imported-helper")

    return preview


def _long_admin_conversation(staff, agent_key: str):
    """A conversation of more than a page of messages, with a tool call, its result and text that
    does not break by itself (a long URL), for the admin's conversation page."""
    from runtime.models import AgentConversation, AgentMessage, AgentRun

    chat = AgentConversation.objects.create(agent_key=agent_key, user=staff, title="Where is my parcel?")
    run = AgentRun.objects.create(conversation=chat, agent_key=agent_key, user=staff, status="succeeded")
    url = "https://shop.example.com/track/" + "0123456789abcdef" * 8
    said = [
        ("user", {"content": "Where is my parcel? I ordered it last week and it has not arrived yet."}),
        ("assistant", {"tool_calls": [{"id": "call_1", "name": "track", "arguments": {"order": "A-1"}}]}),
        ("tool", {"name": "track", "content": f'{{"status": "in transit", "url": "{url}"}}'}),
        ("assistant", {"content": f"It is on its way; follow it at {url}\nIt should arrive by Friday."}),
    ] * 6
    AgentMessage.objects.bulk_create(
        AgentMessage(
            conversation=chat,
            run=run,
            seq=seq,
            role=role,
            agent_key="" if role == "user" else agent_key,
            **fields,
        )
        for seq, (role, fields) in enumerate(said, start=1)
    )
    return chat


def builder_screens(staff) -> list[Screen]:
    """Create the data (an agent with two versions and a draft, an HTTP tool, a system, memory, a
    knowledge base with an indexed document, a widget, an API key, conversations, a team) and
    return every screen."""
    from django.contrib.auth.models import Permission
    from django.core.files.uploadedfile import SimpleUploadedFile

    from builder.models import ToolDefinition
    from builder.services import agent_create, agent_publish, agent_update_draft
    from builder.services.io import export_agent
    from builder.services.systems import system_save
    from builder.services.teams import team_add_member, team_create
    from rag.models import Document
    from rag.services import document_upload, knowledge_base_create
    from runtime.channels.services import widget_channel_create
    from runtime.models import AgentRun, MemoryEntry
    from runtime.services import run_create

    # the settings and teams pages are for people allowed to manage them
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["manage_providers", "manage_teams"]))
    agent = agent_create(
        owner=staff,
        slug="a-rather-long-agent-key-for-a-small-screen",
        name="An agent with a rather long name that has to wrap somewhere",
        config={
            "system_prompt": "Be brief.",
            "opening_message": "Hello! Ask me anything about your order.",
            "suggested_questions": ["A question that is quite long too?", "Where is my parcel?"],
        },
    )
    agent_publish(agent=agent, user=staff)
    agent_update_draft(
        agent=agent, user=staff, config={**agent.draft.config, "system_prompt": "Be briefer, and kind."}
    )
    agent_publish(agent=agent, user=staff)
    agent_update_draft(
        agent=agent,
        user=staff,
        config={**agent.draft.config, "system_prompt": "Be briefer, kind and precise.", "temperature": 0.3},
    )
    tool = ToolDefinition.objects.create(
        owner=staff,
        name="get_weather_for_a_city_by_its_name",
        description="The weather forecast for a city",
        spec={
            "method": "GET",
            "url": "https://api.example.com/weather/{city}",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "The city's name, e.g. Paris"},
                    "days": {"type": "integer", "description": "How many days ahead"},
                },
                "required": ["city"],
            },
        },
    )
    system = system_save(owner=staff, slug="desk", name="Help desk", entry_agent=agent, members={})
    MemoryEntry.objects.create(
        scope="system", system_key=agent.slug, agent_key=agent.slug, key="preferred_language", value="x" * 300
    )
    widget_channel_create(agent_key=agent.slug, user=staff, allowed_origins=["https://shop.example.com"])
    team = team_create(name="Support team")
    team_add_member(team=team, person=staff.username)

    base = knowledge_base_create(owner=staff, name="Store policies", description="Refunds and delivery")
    text = b"Refunds are paid within 14 days of receiving the return. Delivery takes 2 to 4 days."
    document_upload(
        knowledge_base=base,
        upload=SimpleUploadedFile("policies.txt", text, content_type="text/plain"),
        user=staff,
    )
    run, _ = run_create(
        agent_key=agent.slug, messages=[{"role": "user", "content": "Where is my parcel?"}], user=staff
    )
    wait_until(
        lambda: not Document.objects.filter(knowledge_base=base).exclude(status="ready").exists(),
        "the document to be indexed",
        timeout=60,
    )
    wait_until(lambda: AgentRun.objects.filter(pk=run.pk, status="succeeded").exists(), "the run", timeout=60)
    run.refresh_from_db()

    chat = _long_admin_conversation(staff, agent.slug)

    exported = export_agent(agent=agent, user=staff).replace(agent.slug, "imported-helper")
    a = f"/agents/{agent.public_id}"
    k = f"/knowledge/{base.public_id}"
    return [
        ("agents", "/", None),
        ("new-agent", "/agents/new/", None),
        ("editor", f"{a}/", None),
        ("duplicate", f"{a}/duplicate/", None),
        ("versions", f"{a}/versions/", None),
        ("diff", f"{a}/versions/diff/?a=1&b=2", None),
        ("diff-draft-vs-live", f"{a}/versions/diff/?b=draft", None),
        ("publish", f"{a}/channels/", None),
        ("api-keys", f"{a}/publish/api-keys/", None),
        ("sharing", f"{a}/sharing/", None),
        ("agent-knowledge", f"{a}/knowledge/", None),
        ("memory", f"{a}/memory/", None),
        ("conversations", f"{a}/conversations/", None),
        ("transcript", f"{a}/conversations/{run.conversation_id}/", None),
        ("usage", f"{a}/usage/", None),
        ("tools", "/tools/", None),
        ("new-tool", "/tools/new/", None),
        ("tool", f"/tools/{tool.public_id}/", None),
        ("tool-from-curl", "/tools/new/", _curl),
        ("openapi-import", "/tools/import/openapi/", None),
        ("openapi-operations", "/tools/import/openapi/", _openapi),
        ("systems", "/systems/", None),
        ("new-system", "/systems/new/", None),
        ("system", f"/systems/{system.public_id}/", None),
        ("system-memory", f"/systems/{system.public_id}/memory/", None),
        ("system-knowledge", f"/systems/{system.public_id}/knowledge/", None),
        ("import", "/import/", None),
        ("import-preview", "/import/", _import_preview(exported)),
        ("knowledge", "/knowledge/", None),
        ("new-knowledge", "/knowledge/new/", None),
        ("knowledge-base", f"{k}/", None),
        ("retrieval-test", f"{k}/search/?q=when+are+refunds+paid", None),
        ("teams", "/teams/", None),
        ("model-keys", "/settings/models/", None),
        ("admin-runs", "/admin/runtime/agentrun/", None),
        ("admin-run", f"/admin/runtime/agentrun/{run.pk}/change/", None),
        ("admin-conversation", f"/admin/runtime/agentconversation/{chat.pk}/change/", None),
    ]


def is_admin(url: str) -> bool:
    return url.startswith("/admin/")
