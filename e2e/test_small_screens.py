"""A phone-sized screen (390 px): no builder page scrolls sideways, and the playground is one tap
away from the editor."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _pages(staff) -> list[tuple[str, str]]:
    from builder.models import ToolDefinition
    from builder.services import agent_create, agent_publish, agent_update_draft
    from builder.services.systems import system_save
    from runtime.models import MemoryEntry

    agent = agent_create(
        owner=staff,
        slug="a-rather-long-agent-key-for-a-small-screen",
        name="An agent with a rather long name that has to wrap somewhere",
        config={"system_prompt": "Be brief.", "suggested_questions": ["A question that is quite long too?"]},
    )
    agent_publish(agent=agent, user=staff)
    agent_update_draft(agent=agent, user=staff, config={"system_prompt": "Be briefer."})
    agent_publish(agent=agent, user=staff)
    tool = ToolDefinition.objects.create(
        owner=staff,
        name="get_weather_for_a_city_by_its_name",
        description="Weather",
        spec={
            "method": "GET",
            "url": "https://api.example.com/weather/{city}",
            "parameters": {"type": "object"},
        },
    )
    system = system_save(owner=staff, slug="desk", name="Help desk", entry_agent=agent, members={})
    MemoryEntry.objects.create(
        scope="system", system_key=agent.slug, agent_key=agent.slug, key="preferred_language", value="x" * 300
    )
    from runtime.channels.services import widget_channel_create

    widget_channel_create(agent_key=agent.slug, user=staff, allowed_origins=["https://shop.example.com"])
    a = f"/agents/{agent.public_id}"
    return [
        ("agents", "/"),
        ("new-agent", "/agents/new/"),
        ("editor", f"{a}/"),
        ("duplicate", f"{a}/duplicate/"),
        ("versions", f"{a}/versions/"),
        ("publish", f"{a}/channels/"),
        ("diff", f"{a}/versions/diff/?a=1&b=2"),
        ("memory", f"{a}/memory/"),
        ("tools", "/tools/"),
        ("new-tool", "/tools/new/"),
        ("tool", f"/tools/{tool.public_id}/"),
        ("systems", "/systems/"),
        ("new-system", "/systems/new/"),
        ("system", f"/systems/{system.public_id}/"),
        ("import", "/import/"),
    ]


def test_no_builder_page_scrolls_sideways_at_390px(page, staff):
    pages = _pages(staff)
    page.set_viewport_size({"width": 390, "height": 844})
    wide = {}
    for name, url in pages:
        page.goto(url)
        expect(page.locator("#builder")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        shot(page, f"390-{name}")
        if width > 390:
            wide[name] = width
    assert not wide, f"pages wider than 390 px: {wide}"


def test_playground_is_one_tap_from_the_editor(page, staff):
    from builder.services import agent_create

    agent = agent_create(owner=staff, slug="phone", name="Phone", config={"system_prompt": "Hi."})
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/agents/{agent.public_id}/")
    page.get_by_role("link", name="Playground").click()
    message = page.get_by_label("Message")
    expect(message).to_be_in_viewport()
    message.fill("Hello from a phone")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-chat .b-turn").last.locator(".b-usage")).to_contain_text("succeeded")
    shot(page, "390-playground")
