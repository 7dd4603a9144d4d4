"""Admin actions in a real browser (issue 10, item 1): a detail action asks for confirmation and
changes state only when its button POSTs; a missing object is a readable message, not an error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from builder.models import AgentVersion
from builder.services import agent_create
from e2e.conftest import shot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_publish_from_the_admin_asks_then_posts(page, staff):
    agent = agent_create(owner=staff, slug="admin-bot", name="Admin bot", config={"system_prompt": "Hi."})
    page.goto(f"/admin/builder/agent/{agent.pk}/change/")
    page.get_by_role("link", name="Publish draft").click()
    expect(page.get_by_text("Publish the saved draft of Admin bot as its next version?")).to_be_visible()
    shot(page, "admin-01-publish-confirm")
    assert not AgentVersion.objects.filter(agent=agent).exists()  # the link alone changed nothing

    page.get_by_role("button", name="Publish draft").click()
    expect(page).to_have_url(re.compile(rf"/admin/builder/agent/{agent.pk}/change/$"))
    expect(page.get_by_text("Admin bot: published version 1.")).to_be_visible()
    shot(page, "admin-02-published")
    assert AgentVersion.objects.filter(agent=agent, number=1).exists()


def test_an_action_on_a_missing_object_says_so(page):
    page.goto("/admin/builder/agent/987654/publish/")
    expect(page.get_by_text(re.compile(r"doesn.t exist"))).to_be_visible()
    shot(page, "admin-03-missing")


def test_a_run_reads_as_an_answer_and_offers_only_what_applies(page, staff):
    from runtime.models import AgentEvent, AgentRun

    run = AgentRun.objects.create(agent_key="support-bot", status="succeeded", user=staff)
    for seq, text in enumerate(["The parcel ", "left Rotterdam ", "this morning."], start=1):
        AgentEvent.objects.create(run=run, seq=seq, event_type="assistant.delta", payload={"delta": text})
    AgentEvent.objects.create(run=run, seq=4, event_type="run.succeeded", payload={})
    AgentRun.objects.create(agent_key="other-bot", status="queued", user=staff)

    page.goto("/admin/runtime/agentrun/")
    expect(page.get_by_role("link", name="other-bot")).to_be_visible()
    page.goto("/admin/runtime/agentrun/?agent_key__icontains=support")
    expect(page.get_by_role("link", name="support-bot")).to_be_visible()
    expect(page.get_by_role("link", name="other-bot")).to_have_count(0)
    shot(page, "admin-04-runs-by-agent")

    page.get_by_role("link", name="support-bot").click()
    expect(page.get_by_text("The parcel left Rotterdam this morning.")).to_be_visible()
    expect(page.get_by_role("link", name="Retry run")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel run")).to_have_count(0)  # it has finished
    shot(page, "admin-05-run-answer")
