"""Long lists come in pages of 50 (memory, knowledge documents): the pager works in the browser,
and an edit made on page 2 answers with page 2, not the first page."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
LOAD = 20_000  # a loaded 2-core machine renders slowly


def test_memory_page_two_and_a_save_there(page, staff):
    from builder.services import agent_create
    from runtime.models import MemoryEntry

    agent = agent_create(owner=staff, slug="support", name="Support", config={"system_prompt": "x"})
    MemoryEntry.objects.bulk_create(
        MemoryEntry(scope="system", system_key="support", agent_key="support", key=f"fact-{i:03}", value=i)
        for i in range(60)
    )
    page.goto(f"/agents/{agent.public_id}/memory/")
    expect(page.get_by_text("Page 1 of 2 (60 entries)")).to_be_visible(timeout=LOAD)
    expect(page.get_by_label("Value of fact-049")).to_be_visible()
    expect(page.get_by_label("Value of fact-050")).to_have_count(0)
    page.get_by_role("navigation", name="Pages of memory").get_by_role("link", name="Next").click()
    expect(page.get_by_text("Page 2 of 2 (60 entries)")).to_be_visible(timeout=LOAD)
    box = page.get_by_label("Value of fact-059")
    box.fill("1000")
    box.locator("xpath=ancestor::form").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved fact-059.")).to_be_visible(timeout=LOAD)
    expect(page.get_by_text("Page 2 of 2 (60 entries)")).to_be_visible()
    assert MemoryEntry.objects.get(key="fact-059").value == 1000
    shot(page, "pager-memory-page-2")


def test_knowledge_documents_page_two(page, staff):
    from rag.models import Document
    from rag.services import knowledge_base_create

    base = knowledge_base_create(owner=staff, name="Help centre")
    Document.objects.bulk_create(
        Document(
            knowledge_base=base,
            name=f"faq-{i:03}.md",
            file=f"rag/x/{i}.md",
            kind="md",
            size=2_000,
            sha256=hashlib.sha256(str(i).encode()).hexdigest(),
            status="ready",
            chunk_count=3,
        )
        for i in range(60)
    )
    page.goto(f"/knowledge/{base.public_id}/")
    documents = page.locator("#documents")
    expect(documents.get_by_role("heading", name="Documents (60)")).to_be_visible(timeout=LOAD)
    expect(documents.locator("tbody tr")).to_have_count(50)
    page.get_by_role("navigation", name="Pages of documents").get_by_role("link", name="Next").click()
    expect(page.get_by_text("Page 2 of 2, newest first")).to_be_visible(timeout=LOAD)
    expect(documents.locator("tbody tr")).to_have_count(10)
    shot(page, "pager-knowledge-page-2")


def test_admin_conversation_page_shows_its_messages_20_at_a_time(page, staff):
    from builder.services import agent_create
    from runtime.models import AgentConversation, AgentMessage, AgentRun

    # the agent's owner, a staff user without model permissions, reads its conversations
    agent_create(owner=staff, slug="support", name="Support", config={"system_prompt": "x"})
    conversation = AgentConversation.objects.create(agent_key="support", user=staff, title="Orders")
    for i in range(20):
        run = AgentRun.objects.create(
            conversation=conversation, agent_key="support", user=staff, status="succeeded"
        )
        AgentMessage.objects.bulk_create(
            AgentMessage(
                conversation=conversation, run=run, seq=2 * i + n, role=role, content=f"{role} says {i}"
            )
            for n, role in ((1, "user"), (2, "assistant"))
        )
    page.goto(f"/admin/runtime/agentconversation/{conversation.pk}/change/")
    messages = page.get_by_role("list", name="Messages 1 to 20")
    expect(messages.get_by_role("listitem")).to_have_count(20, timeout=LOAD)
    expect(messages.get_by_role("listitem").first).to_contain_text("user says 0")
    expect(messages.get_by_role("listitem").nth(1)).to_contain_text("assistant says 0")
    expect(page.get_by_text("assistant says 19", exact=True)).to_have_count(0)
    shot(page, "pager-admin-conversation-page-1")
    pager = page.get_by_role("navigation", name="Pages of messages")
    expect(pager).to_contain_text("Page 1 of 2")
    pager.get_by_role("link", name="Next").click()
    expect(pager).to_contain_text("Page 2 of 2", timeout=LOAD)
    expect(page.get_by_text("assistant says 19", exact=True)).to_be_visible()
    expect(page.get_by_text("user says 0", exact=True)).to_have_count(0)
    shot(page, "pager-admin-conversation-page-2")
    # a message links to the run that wrote it
    page.get_by_role("list", name="Messages 21 to 40").get_by_role("listitem").last.get_by_role(
        "link", name="run"
    ).click()
    expect(page).to_have_url(re.compile(r"/admin/runtime/agentrun/[0-9a-f-]+/change/$"), timeout=LOAD)
    pager_back = f"/admin/runtime/agentconversation/{conversation.pk}/change/?messages-page=2"
    # on a phone the page of messages reads without scrolling sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(pager_back)
    expect(page.get_by_role("navigation", name="Pages of messages")).to_contain_text(
        "Page 2 of 2", timeout=LOAD
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "pager-admin-conversation-390")
