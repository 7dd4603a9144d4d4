"""The owner's view in Chromium: a web-widget conversation (a visitor on another origin) and a
playground conversation both appear with their sources; search finds one; each opens as a
read-only transcript with its steps behind a toggle; the usage page draws its charts; a bad
filter says what to fix."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from e2e.test_widget import _channel, _published_agent, host_site, visitor_page  # noqa: F401 - fixtures
from tests.fakes.llm_servers import Text, ToolCalls

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_owner_sees_every_channels_conversations_and_usage(
    page,
    visitor_page,  # noqa: F811 - the widget tests' fixture
    host_site,  # noqa: F811 - the widget tests' fixture
    staff,
    fake_openai,
):
    agent = _published_agent(staff, slug="owner-view", python_tools=["calculator"])
    channel = _channel(staff, agent, [host_site])

    # a visitor chats through the widget on the customer's site, and rates the answer down
    visitor = visitor_page
    visitor.goto(f"{host_site}/?key={channel.publishable_key}")
    expect(visitor.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
    visitor.get_by_role("button", name="Open chat").click()
    dialog = visitor.get_by_role("dialog", name="Acme help")
    fake_openai.push(Text(["Your parcel ", "left our depot today."]))
    dialog.get_by_label("Message").fill("Where is my parcel?")
    dialog.get_by_label("Message").press("Enter")
    expect(dialog.locator(".msg.bot").last).to_have_text("Your parcel left our depot today.", timeout=30_000)
    dialog.get_by_role("button", name="Not helpful", exact=True).click()
    expect(dialog.get_by_role("button", name="Not helpful", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )

    # the owner tries the agent in the playground: a tool call, then the answer
    page.goto(agent.get_absolute_url())
    fake_openai.push(ToolCalls([("calculator", {"expression": "6*7"})]), Text(["It is 42."]))
    page.get_by_label("Message").fill("What is 6 times 7?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-chat .b-turn").last.locator(".b-usage")).to_contain_text(
        "succeeded", timeout=30_000
    )

    # the editor's header leads to the conversations
    page.locator("#agent-head").get_by_role("link", name="Conversations").click()
    expect(page.locator("#builder h1")).to_have_text("Shop help: conversations")
    table = page.get_by_role("table", name="Conversations")
    widget_row = table.get_by_role("row", name=re.compile("Where is my parcel"))
    playground_row = table.get_by_role("row", name=re.compile("What is 6 times 7"))
    expect(widget_row).to_contain_text("Web widget")
    expect(widget_row).to_contain_text("Anonymous visitor")
    expect(widget_row).to_contain_text("👎 1")
    expect(playground_row).to_contain_text("Playground")
    expect(playground_row).to_contain_text("builder")
    shot(page, "owner-01-conversations")

    # search what was said (an answer's words): one conversation is left
    page.get_by_label("Search messages").fill("depot")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.get_by_role("row", name=re.compile("Where is my parcel"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=depot"))
    shot(page, "owner-02-search")

    # filter by source
    page.get_by_label("Search messages").fill("")
    page.get_by_label("Source").select_option("playground")
    expect(page.get_by_role("table", name="Conversations").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_role("table", name="Conversations")).to_contain_text("What is 6 times 7?")

    # a date range the wrong way round says which field to fix, and the list stays usable
    page.get_by_label("From").fill("2026-02-01")
    page.get_by_label("To").fill("2026-01-01")
    expect(page.get_by_role("alert")).to_contain_text("To: pick a day on or after the From day.")
    shot(page, "owner-03-bad-dates")

    # the playground conversation as a transcript: steps behind a toggle
    page.goto(f"/agents/{agent.public_id}/conversations/")
    page.get_by_role("link", name="What is 6 times 7?").click()
    transcript = page.get_by_role("region", name="Transcript")
    expect(transcript.locator(".b-msg--user")).to_have_text("What is 6 times 7?")
    expect(transcript.locator(".b-msg--assistant")).to_have_text("It is 42.")
    step = transcript.get_by_text(re.compile(r"Tool call: calculator"))
    expect(step).to_be_hidden()
    transcript.get_by_text(re.compile(r"Steps \(\d+\)")).click()
    expect(step).to_be_visible()
    expect(transcript.get_by_text(re.compile(r"Tool result: calculator"))).to_be_visible()
    assert transcript.locator("form, textarea").count() == 0  # read-only
    shot(page, "owner-04-transcript-steps")

    # the widget conversation shows its source and the visitor's thumbs down
    page.goto(f"/agents/{agent.public_id}/conversations/")
    page.get_by_role("link", name="Where is my parcel?").click()
    expect(page.locator(".b-facts")).to_contain_text("Web widget")
    expect(page.get_by_text("👎 not helpful")).to_be_visible()

    # usage: charts and the same numbers in a table
    page.get_by_role("link", name="Usage").click()
    expect(page.locator("#builder h1")).to_have_text("Shop help: usage")
    expect(page.locator("svg.b-chart-svg")).to_have_count(6)
    expect(page.locator("svg[data-chart=Runs] rect.b-chart-bar[height]:not([height='0'])")).to_have_count(1)
    today = page.get_by_role("table", name="Usage per day").locator("tbody tr").first
    expect(today.locator("td").nth(0)).to_have_text("2")  # runs: one widget, one playground
    expect(today.locator("td").nth(1)).to_have_text("2")  # visitors: the visitor and the owner
    expect(today.locator("td").nth(6)).to_have_text("1")  # one thumbs down
    shot(page, "owner-05-usage")
