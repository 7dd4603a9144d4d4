"""Knowledge in a real browser: create a base, upload files (one refused with its reason), watch a
PDF become ready, attach the base to an agent, ask in the playground and open the cited passage."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from tests.rag.files import pdf_bytes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
# page loads wait longer than expect()'s 5 s default: a loaded 2-core machine renders the editor slowly
LOAD = 20_000


def test_upload_index_attach_ask_and_open_the_citation(page, live):
    page.locator("#builder").get_by_role("link", name="Knowledge").click()
    expect(page.get_by_text("No knowledge bases yet")).to_be_visible(timeout=LOAD)
    page.get_by_role("link", name="New knowledge base").click()
    page.get_by_label("Name").fill("Store policies")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#builder").get_by_role("heading", name="Store policies")).to_be_visible(timeout=LOAD)

    page.get_by_label("Files").set_input_files(
        [
            {
                "name": "refunds.pdf",
                "mimeType": "application/pdf",
                "buffer": pdf_bytes(["Refunds are paid within 14 days of receiving the return."]),
            },
            {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
            {"name": "photo.pdf", "mimeType": "application/pdf", "buffer": b"\x89PNG\r\n\x1a\n" + b"\0" * 64},
        ]
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("empty.txt: the file is empty.")).to_be_visible(timeout=LOAD)
    expect(page.get_by_text("photo.pdf: this is a PNG image, which holds no text to index.")).to_be_visible(
        timeout=LOAD
    )
    row = page.locator("#documents tr", has_text="refunds.pdf")
    expect(row.get_by_text("Ready")).to_be_visible(timeout=30_000)
    expect(row).to_contain_text("1 passage")
    shot(page, "knowledge-01-ready")

    page.get_by_role("link", name="Test retrieval").click()
    page.get_by_label("Question").fill("when are refunds paid")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results")).to_contain_text("Refunds are paid within 14 days", timeout=LOAD)
    expect(page.locator("#results")).to_contain_text(re.compile(r"in [\d.]+ ms"))
    shot(page, "knowledge-02-retrieval-test")

    page.locator("#builder").get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Key").fill("policy-bot")
    page.get_by_label("Name").fill("Policy bot")
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#builder").get_by_role("heading", name=re.compile("Policy bot"))).to_be_visible(
        timeout=LOAD
    )
    page.locator(".b-head").get_by_role("link", name="Knowledge", exact=True).click()
    expect(page.locator("#builder").get_by_role("heading", name="Knowledge for Policy bot")).to_be_visible(
        timeout=LOAD
    )
    page.get_by_label("Store policies").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Policy bot now uses Store policies.")).to_be_visible(timeout=LOAD)
    page.get_by_role("link", name="Policy bot").click()

    page.get_by_label("Message").fill("When are refunds paid?")
    page.get_by_role("button", name="Send").click()
    turn = page.locator("#pg-chat .b-turn").last
    expect(turn.locator(".b-usage")).to_contain_text("succeeded", timeout=LOAD)
    source = turn.get_by_role("link", name="[1] refunds.pdf, page 1")
    expect(source).to_be_visible(timeout=LOAD)
    shot(page, "knowledge-03-playground-citation")

    with page.context.expect_page() as opened:
        source.click()
    passage = opened.value
    expect(passage.locator("[aria-current=true]")).to_contain_text(
        "Refunds are paid within 14 days", timeout=LOAD
    )
    expect(passage.locator("[aria-current=true]")).to_contain_text("page 1")
    shot(passage, "knowledge-04-passage")


def test_add_a_web_page_by_its_address_or_see_why_not(page, live, weather_api):
    page.locator("#builder").get_by_role("link", name="Knowledge").click()
    page.get_by_role("link", name="New knowledge base").click()
    page.get_by_label("Name").fill("From the web")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#builder").get_by_role("heading", name="From the web")).to_be_visible(timeout=LOAD)

    # a private address the operator has not opened: the reason, and how to open it, in the page
    page.get_by_text("Or add a web page").click()
    page.get_by_label("Address").fill("http://127.0.0.1:9/secrets")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-result")).to_contain_text("Refused to contact 127.0.0.1", timeout=LOAD)
    expect(page.locator("#upload-result")).to_contain_text("AGENT_HTTP_ALLOWED_HOSTS")
    expect(page.get_by_label("Address")).to_have_value("http://127.0.0.1:9/secrets")  # kept to correct
    expect(page.locator("#documents")).to_contain_text("Documents (0)")
    shot(page, "knowledge-03-web-page-refused")

    # the local API the live server may reach (its host is on the allow-list)
    page.get_by_label("Address").fill(f"{weather_api}/forecast/Oslo")
    page.get_by_role("button", name="Upload").click()
    row = page.locator("#documents tr", has_text="127.0.0.1-Oslo")
    expect(row.get_by_text("Ready")).to_be_visible(timeout=30_000)
    shot(page, "knowledge-04-web-page")


def test_change_the_embedding_model_and_watch_every_document_index_again(page, live):
    page.locator("#builder").get_by_role("link", name="Knowledge").click()
    page.get_by_role("link", name="New knowledge base").click()
    page.get_by_label("Name").fill("Handbook")
    page.get_by_role("button", name="Create").click()
    page.get_by_text("Or paste text").click()
    page.get_by_label("Title").fill("returns")
    page.get_by_label("Text").fill("Refunds are paid within 14 days of receiving the return.")
    page.get_by_role("button", name="Upload").click()
    row = page.locator("#documents tr", has_text="returns.txt")
    expect(row.get_by_text("Ready")).to_be_visible(timeout=30_000)

    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_text("indexes all 1 document again")).to_be_visible(timeout=LOAD)
    page.get_by_label("Overlap").fill("999")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Overlap must be between 0 and half the chunk size.")).to_be_visible(timeout=LOAD)
    shot(page, "knowledge-05-settings-refused")

    page.get_by_label("Overlap").fill("20")
    page.get_by_label("Embedding model").select_option("local")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved Handbook. Indexing 1 document again.")).to_be_visible(timeout=LOAD)
    expect(row.get_by_text("Ready")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Embedding model local")).to_be_visible()
    shot(page, "knowledge-06-reindexed")


def test_attach_a_base_to_a_system_a_wrong_value_then_a_right_one_and_a_member_cites_it(page, live, staff):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from builder.services import agent_create
    from builder.services.systems import system_save
    from rag.models import Document
    from rag.services import document_upload, knowledge_base_create
    from tests.processes import wait_until

    base = knowledge_base_create(owner=staff, name="Desk policies")
    document = document_upload(
        knowledge_base=base,
        upload=SimpleUploadedFile("refunds.txt", b"Refunds are paid within 14 days of receiving the return."),
        user=staff,
    )
    front = agent_create(owner=staff, slug="front-desk", name="Front desk", config={"system_prompt": "Help."})
    system = system_save(owner=staff, slug="help-desk", name="Help desk", entry_agent=front, members={})

    page.goto(f"/systems/{system.public_id}/")
    expect(page.locator("#system-knowledge")).to_contain_text("No knowledge base yet", timeout=LOAD)
    page.locator(".b-head").get_by_role("link", name="Knowledge", exact=True).click()
    expect(page.locator("#builder").get_by_role("heading", name="Knowledge for Help desk")).to_be_visible(
        timeout=LOAD
    )
    page.get_by_label("Desk policies").check()
    page.get_by_label("Search tool: the model calls search_knowledge").check()
    page.get_by_label("Passages per question").fill("0")
    page.get_by_role("button", name="Save").click()
    error = page.locator("#id_top_k-error")
    expect(error).to_have_text("Passages per question must be a whole number from 1 to 20.", timeout=LOAD)
    # next to its field, and what was chosen is still chosen
    expect(page.locator(".b-field--error")).to_contain_text("Passages per question")
    expect(page.get_by_label("Desk policies")).to_be_checked()
    expect(page.get_by_label("Search tool: the model calls search_knowledge")).to_be_checked()
    shot(page, "knowledge-07-system-top-k-refused")

    page.get_by_label("Automatic: passages for every user message").check()
    page.get_by_label("Passages per question").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Help desk now uses Desk policies.")).to_be_visible(timeout=LOAD)
    expect(page.get_by_label("Passages per question")).to_have_value("3")
    page.get_by_role("link", name="Help desk").click()
    expect(page.locator("#system-knowledge")).to_contain_text(
        "1 knowledge base shared by every member.", timeout=LOAD
    )

    # the live worker indexes the document; ask once it is ready
    wait_until(lambda: Document.objects.get(pk=document.pk).status == "ready", timeout=30, what="indexing")
    page.get_by_label("Message").fill("When are refunds paid?")
    page.get_by_role("button", name="Send").click()
    turn = page.locator("#pg-chat .b-turn").last
    expect(turn.locator(".b-usage")).to_contain_text("succeeded", timeout=LOAD)
    expect(turn.get_by_role("link", name="[1] refunds.txt")).to_be_visible(timeout=LOAD)
    shot(page, "knowledge-08-system-member-citation")


def test_import_attaches_the_bases_it_may_and_says_which_it_skipped(page, staff):
    """An export file names two knowledge bases: one the importer can see (attached) and one that
    is not theirs (skipped, with the reason, in the preview and after the import); the agent's
    sharing panel then shows the attachment in its activity."""
    import yaml
    from django.contrib.auth import get_user_model

    from builder.models import Agent
    from builder.services import agent_create
    from builder.services.io import export_agent
    from rag.services import knowledge_base_create

    mine = knowledge_base_create(owner=staff, name="Handbook")
    stranger = get_user_model().objects.create_user("stranger", is_staff=True)
    hidden = knowledge_base_create(owner=stranger, name="Private notes")
    data = yaml.safe_load(
        export_agent(agent=agent_create(owner=staff, slug="helper", name="Helper"), user=staff)
    )
    data["agents"][0]["slug"] = "imported-helper"
    data["agents"][0]["knowledge_bases"] = [
        {"id": str(mine.public_id), "name": "Handbook", "mode": "tool", "top_k": 6, "score_threshold": 0.2},
        {
            "id": str(hidden.public_id),
            "name": "Private notes",
            "mode": "auto",
            "top_k": 4,
            "score_threshold": 0,
        },
    ]
    export = yaml.safe_dump(data, sort_keys=False)
    page.goto("/import/")
    page.get_by_label("Or paste the export").fill(export)
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#import")
    expect(preview).to_contain_text("Handbook", timeout=LOAD)
    expect(preview.locator("li", has_text="skipped").last).to_contain_text("Private notes")
    shot(page, "knowledge-import-preview-skipped")
    assert not Agent.objects.filter(slug="imported-helper").exists()  # nothing until confirmed

    page.get_by_role("button", name="Import").click()
    expect(page.get_by_text("Imported 1 item(s).")).to_be_visible(timeout=LOAD)  # on the agent list
    expect(
        page.get_by_text("Agent imported-helper: knowledge base 'Private notes' is not attached")
    ).to_be_visible()
    shot(page, "knowledge-import-done-skipped")
    agent = Agent.objects.get(slug="imported-helper")
    assert [(link.knowledge_base.name, link.mode, link.top_k) for link in agent.knowledge_links.all()] == [
        ("Handbook", "tool", 6)
    ]
    page.goto(f"/agents/{agent.public_id}/sharing/")  # the attachment is in the agent's activity
    expect(
        page.get_by_text(re.compile(r"attached knowledge base Handbook \(mode tool, top_k 6"))
    ).to_be_visible(timeout=LOAD)
    shot(page, "knowledge-import-sharing-activity")
