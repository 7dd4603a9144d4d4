"""axe-core over every builder screen (``e2e/screens.py``: the same set the screenshots cover), light
and dark: no serious or critical violations in what the builder renders (``#builder``; on the admin's
run pages, the page's content; Unfold's own frame is checked by Unfold)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from e2e.conftest import ARTIFACTS
from e2e.screens import builder_screens, is_admin

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _serious(results) -> list[dict]:
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
            "why": v["nodes"][0].get("failureSummary", ""),
        }
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_builder_pages_have_no_serious_axe_violations(page, staff, scheme):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    page.emulate_media(color_scheme=scheme)
    found = {}
    for name, url, action in builder_screens(staff):
        page.goto(url)
        region = "#content" if is_admin(url) else "#builder"
        expect(page.locator(region)).to_be_visible()
        if action:
            action(page)
        page.wait_for_load_state("networkidle")
        serious = _serious(axe.run(page, context=region))
        if serious:
            found[name] = serious
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"axe-{scheme}.json").write_text(json.dumps(found, indent=2))
    assert not found, json.dumps(found, indent=2)


def _tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until ``selector`` has the focus, as a keyboard-only user would."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus with Tab")


def test_keyboard_only_create_edit_send_and_stop(page, staff, fake_openai):
    from builder.models import Agent
    from tests.fakes.llm_servers import Text

    page.goto("/agents/new/")
    _tab_to(page, "#agent-create-form [name=name]")
    page.keyboard.type("Keyboard bot")
    page.keyboard.press("Enter")
    expect(page.locator("#agent-head h1")).to_contain_text("Keyboard bot", timeout=30_000)
    agent = Agent.objects.get(slug="keyboard-bot")

    _tab_to(page, "#agent-editor [name=system_prompt]")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("Answer by keyboard.")
    _tab_to(page, "#agent-editor [name=model]")
    page.keyboard.type("GPT-4o mini")  # type-ahead picks the option, as on any select
    _tab_to(page, "#agent-editor button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Draft saved (revision 2)")).to_be_visible(timeout=30_000)
    agent.draft.refresh_from_db()
    assert agent.draft.config["system_prompt"] == "Answer by keyboard."
    assert agent.draft.config["model"] == "openai:gpt-4o-mini"

    fake_openai.push(Text(["word "] * 200, delay=0.1))
    _tab_to(page, "#pg-message")
    page.keyboard.type("Talk for a long time")
    page.keyboard.press("Enter")
    turn = page.locator("#pg-chat .b-turn").last
    expect(turn.locator(".b-msg--assistant")).to_contain_text("word word", timeout=30_000)
    _tab_to(page, "#pg-stop")
    page.keyboard.press("Enter")
    expect(turn.locator(".b-usage")).to_contain_text("cancelled", timeout=30_000)
