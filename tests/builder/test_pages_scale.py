"""Builder pages whose lists grow with use show a page of 50 rows, with a fixed number of queries
(bench/builder_pages.py measures them at 200 versions, 1,000 memory entries, 200 tools and 500
documents): everything is still reachable through the pager."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from builder.models import AgentVersion, ToolDefinition
from rag.models import Document
from rag.services import knowledge_base_create
from runtime.models import MemoryEntry

pytestmark = pytest.mark.django_db


def _get(client, url: str, **params) -> tuple[str, int]:
    client.get(url, params)  # warm: session, content types
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode(), len(ctx.captured_queries)


def _documents(base, start: int, count: int) -> None:
    Document.objects.bulk_create(
        Document(
            knowledge_base=base,
            name=f"faq-{i:03}.md",
            file=f"rag/x/{i}.md",
            kind="md",
            size=10,
            sha256=hashlib.sha256(str(i).encode()).hexdigest(),
            status="ready",
        )
        for i in range(start, start + count)
    )


def test_knowledge_base_lists_50_documents_a_page_with_fixed_queries(owner, owner_client):
    base = knowledge_base_create(owner=owner, name="Help centre")
    url = f"/knowledge/{base.public_id}/"
    _documents(base, 0, 3)
    _, few = _get(owner_client, url)
    _documents(base, 3, 57)
    body, many = _get(owner_client, url)
    assert many == few
    assert "Documents (60)" in body and body.count("data-document=") == 50
    assert "Page 1 of 2" in body
    rest, _ = _get(owner_client, url, page=2)
    assert rest.count("data-document=") == 10
    # a retry from page 2 answers with page 2
    document = Document.objects.get(name="faq-000.md")
    answer = owner_client.post(
        f"/knowledge/{base.public_id}/documents/{document.public_id}/retry/?page=2",
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Page 2 of 2" in answer


def _memory(start: int, count: int) -> None:
    MemoryEntry.objects.bulk_create(
        MemoryEntry(scope="system", system_key="helper", agent_key="helper", key=f"fact-{i:03}", value=i)
        for i in range(start, start + count)
    )


def test_memory_lists_50_entries_a_page_and_a_save_stays_on_its_page(agent, owner_client):
    url = f"/agents/{agent.public_id}/memory/"
    _memory(0, 3)
    _, few = _get(owner_client, url)
    _memory(3, 57)
    body, many = _get(owner_client, url)
    assert many == few
    assert body.count('name="value"') == 50 + 1  # 50 entries, and the add form
    assert "Page 1 of 2 (60 entries)" in body
    page_two, _ = _get(owner_client, url, page=2)
    assert "fact-059" in page_two and "fact-000" not in page_two
    entry = MemoryEntry.objects.get(key="fact-059")
    saved = owner_client.post(
        f"{url}{entry.pk}/?q=&scope=&page=2", {"value": "60"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "Page 2 of 2" in saved and "fact-059" in saved


def test_tool_list_shows_50_tools_a_page_with_fixed_queries(owner, owner_client):
    def tools(start: int, count: int) -> None:
        ToolDefinition.objects.bulk_create(
            ToolDefinition(
                owner=owner,
                name=f"tool_{i:03}",
                description="x",
                spec={"method": "GET", "url": "https://a.example/"},
            )
            for i in range(start, start + count)
        )

    tools(0, 3)
    _, few = _get(owner_client, "/tools/")
    tools(3, 57)
    body, many = _get(owner_client, "/tools/")
    assert many == few
    assert len(re.findall(r"<code>tool_\d+</code>", body)) == 50
    rest, _ = _get(owner_client, "/tools/", page=2)
    assert "<code>tool_059</code>" in rest


def test_versions_list_50_a_page_and_the_diff_pickers_offer_every_version(agent, owner, owner_client):
    def versions(start: int, count: int) -> None:
        AgentVersion.objects.bulk_create(
            AgentVersion(agent=agent, number=n, config={"system_prompt": f"take {n}"}, published_by=owner)
            for n in range(start, start + count)
        )

    url = f"/agents/{agent.public_id}/versions/"
    versions(1, 3)
    _, few = _get(owner_client, url)
    versions(4, 57)
    body, many = _get(owner_client, url)
    assert many == few
    assert body.count("Restore as draft") == 50
    assert body.count('<option value="1"') == 2  # the oldest version, in both pickers
    older, _ = _get(owner_client, url, page=2)
    assert older.count("Restore as draft") == 10 and ">v1<" in older.replace(" ", "")
