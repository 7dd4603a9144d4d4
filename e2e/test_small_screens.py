"""A phone-sized screen (390 px): no builder page scrolls sideways, and the playground is one tap
away from the editor."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from e2e.conftest import ARTIFACTS, shot
from e2e.screens import builder_screens, is_admin

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


WIDTHS = (1280, 390)
SCREENS = ARTIFACTS / "screens"


def test_every_screen_at_both_widths_and_none_scrolls_sideways_at_390px(page, staff):
    """One set of screenshots, ``artifacts/e2e/screens/<width>/<name>.png``, for people to look at."""
    screens = builder_screens(staff)
    wide = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900 if width > 600 else 844})
        (SCREENS / str(width)).mkdir(parents=True, exist_ok=True)
        for name, url, action in screens:
            page.goto(url)
            expect(page.locator("#content" if is_admin(url) else "#builder")).to_be_visible()
            if action:
                action(page)
            page.wait_for_load_state("networkidle")  # panels loaded after the page (sharing) are in
            shot(page, f"screens/{width}/{name}")
            if width == 390:
                scroll = page.evaluate("document.documentElement.scrollWidth")
                if scroll > width:
                    wide[name] = scroll
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
