"""The playground reconnects after a stream answer that is not 200 (a 503 while the database
restarts), which a browser's EventSource never retries by itself."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from tests.fakes.llm_servers import Text

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_503_on_the_stream_is_retried_and_the_turn_finishes(page, live, fake_openai, staff):
    from builder.services import agent_create

    agent = agent_create(
        owner=staff,
        slug="patient",
        name="Patient",
        config={"system_prompt": "x", "model": "openai:gpt-4o-mini"},
    )
    fake_openai.push(Text(["one ", "two ", "three ", "four ", "five."], delay=0.6))
    seen: list[str] = []

    def unavailable_twice(route):
        seen.append(route.request.url)
        if len(seen) <= 2:
            route.fulfill(
                status=503,
                headers={"Retry-After": "5", "Content-Type": "application/json"},
                body='{"error": {"code": "database_unavailable", "message": "Try again in a few seconds."}}',
            )
        else:
            route.continue_()

    page.route("**/events/stream/**", unavailable_twice)
    page.goto(f"/agents/{agent.public_id}/")
    page.get_by_label("Message").fill("count to five")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-status")).to_have_text("Connection lost; reconnecting…")
    shot(page, "20-stream-503-reconnecting")
    turn = page.locator("#pg-chat .b-turn").last
    expect(turn.locator(".b-usage")).to_contain_text("succeeded", timeout=30_000)
    expect(turn.locator(".b-msg--assistant")).to_have_text("one two three four five.")
    assert len(seen) >= 3, "the pane did not open a new stream after the 503s"
    shot(page, "21-stream-503-recovered")
