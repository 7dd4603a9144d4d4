"""The version diff in Chromium: the prompt word by word, settings before/after, and draft vs. live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from builder.services import agent_create, agent_publish, agent_update_draft
from e2e.conftest import shot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_diff_field_by_field_and_draft_vs_live(page, live, staff):
    agent = agent_create(
        owner=staff, slug="faq", name="FAQ", config={"system_prompt": "Answer in short sentences."}
    )
    agent_publish(agent=agent, user=staff)
    agent_update_draft(
        agent=agent,
        user=staff,
        config={
            "system_prompt": "Answer in long, friendly sentences.",
            "temperature": 0.4,
            "python_tools": ["calculator"],
        },
    )
    page.goto(f"/agents/{agent.public_id}/versions/diff/?a=1&b=9")
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()  # an unknown version is a 404
    page.goto(f"/agents/{agent.public_id}/versions/diff/?b=draft")
    expect(page.locator("#builder h1")).to_contain_text("version 1 → the draft")
    expect(page.locator(".b-diff-prompt del")).to_have_text("short")
    expect(page.locator(".b-diff-prompt ins")).to_have_text("long, friendly")
    expect(page.get_by_role("row", name="Temperature")).to_contain_text("0.4")
    expect(page.get_by_role("row", name="Python tools")).to_contain_text("calculator")
    shot(page, "diff-01-draft-vs-live")
