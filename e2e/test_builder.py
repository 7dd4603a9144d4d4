"""The builder in a real browser: build, chat (streaming, tools, stop), publish, diff, restore,
a two-agent system with delegation, and hostile model output rendered inert."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from runtime.models import AgentRun
from tests.fakes.llm_servers import Text, ToolCalls

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MODEL = "openai:gpt-4o-mini"


def _create_agent(page, slug: str, name: str) -> None:
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Key").fill(slug)
    page.get_by_label("Name", exact=True).fill(name)
    shot(page, "02-new-agent")
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#builder").get_by_role("heading", name=re.compile(name))).to_be_visible()


def _save(page, expected_revision: int) -> None:
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text(f"Draft saved (revision {expected_revision})")).to_be_visible()


def _send(page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def _last_turn(page):
    return page.locator("#pg-chat .b-turn").last


def test_build_chat_publish_diff_restore(page, live, fake_openai, weather_api):
    shot(page, "01-agent-list-empty")
    _create_agent(page, "weather-bot", "Weather bot")

    # the demo model answers without any key, and says it is a demo
    _send(page, "Hello there")
    expect(_last_turn(page).locator(".b-msg--assistant").first).to_contain_text(re.compile("demo", re.I))
    expect(_last_turn(page).locator(".b-usage")).to_contain_text("succeeded")
    # retry replaces the last turn rather than adding one
    page.get_by_role("button", name="Retry last").click()
    expect(_last_turn(page).locator(".b-usage")).to_contain_text("succeeded")
    expect(page.locator("#pg-chat .b-msg--user")).to_have_count(1)
    # a second submit before the server has answered (a double click, a repeated Enter on a
    # slow network) starts one run, not two
    page.get_by_label("Message").fill("Only once")
    page.evaluate(
        "() => { const form = document.getElementById('pg-form'); form.requestSubmit(); form.requestSubmit(); }"
    )
    expect(_last_turn(page).locator(".b-usage")).to_contain_text("succeeded")
    expect(page.locator("#pg-chat .b-msg--user")).to_have_count(2)
    assert AgentRun.objects.filter(input__messages__0__content="Only once").count() == 1

    # an HTTP tool pointed at a local API, tried from its page
    page.get_by_role("link", name="Tools", exact=True).first.click()
    page.get_by_role("link", name="New HTTP tool").click()
    page.get_by_label("Name", exact=True).fill("get_weather")
    page.get_by_label("Description", exact=True).fill("Current weather for a city")
    page.get_by_label("URL", exact=True).fill(f"{weather_api}/weather/{{city}}")
    page.get_by_label("Parameter 1 name").fill("city")
    page.get_by_role("button", name="Save tool").click()
    page.get_by_label("Arguments").fill('{"city": "Oslo"}')
    page.get_by_role("button", name="Send request").click()
    expect(page.locator(".b-result")).to_contain_text("Status: 200")
    expect(page.locator(".b-result")).to_contain_text("sunny")
    shot(page, "03-tool-try-it")

    # attach it, pick the OpenAI-compatible model, write the prompt
    page.get_by_role("link", name="Agents", exact=True).first.click()
    page.get_by_role("link", name=re.compile("Weather bot")).click()
    page.get_by_label("Instructions (system prompt)").fill("You report the weather. Use get_weather.")
    page.get_by_label("Model").select_option(MODEL)
    page.get_by_label("get_weather").check()
    _save(page, 2)

    # the model calls the tool, then streams its answer
    fake_openai.push(
        ToolCalls([("get_weather", {"city": "Oslo"})]),
        Text(["It is ", "sunny ", "in ", "Oslo, ", "21 ", "degrees."], delay=0.15),
    )
    page.get_by_label("Show steps").check()
    _send(page, "Weather in Oslo?")
    turn = _last_turn(page)
    expect(turn.locator(".b-step").filter(has_text="Tool call: get_weather")).to_be_visible()
    expect(turn.locator(".b-msg--assistant")).to_contain_text("It is sunny")  # partial text while streaming
    shot(page, "04-playground-streaming")
    expect(turn.locator(".b-usage")).to_contain_text("succeeded")
    expect(turn.locator(".b-msg--assistant")).to_contain_text("21 degrees.")
    expect(turn.locator(".b-step").filter(has_text="Tool result: get_weather")).to_be_visible()
    expect(turn.locator(".b-usage")).to_contain_text("completion tokens")
    shot(page, "05-playground-tool-step")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "05-playground-viewport", full_page=False)  # the README's picture

    # stop a run mid-stream
    fake_openai.push(Text(["word "] * 200, delay=0.1))
    _send(page, "Talk for a long time")
    expect(_last_turn(page).locator(".b-msg--assistant")).to_contain_text("word word")
    page.get_by_role("button", name="Stop").click()
    expect(_last_turn(page)).to_contain_text("Stopped.")
    expect(_last_turn(page).locator(".b-usage")).to_contain_text("cancelled")

    # publish, edit, publish again, diff, restore
    page.get_by_label("Note").fill("first version")
    page.get_by_role("button", name="Publish version 1").click()
    expect(page.get_by_role("cell", name="first version")).to_be_visible()
    page.get_by_role("link", name="Back to the editor").click()
    page.get_by_label("Instructions (system prompt)").fill(
        "You report the weather briefly.\nAlways in Celsius."
    )
    _save(page, 3)
    page.get_by_role("button", name="Publish version 2").click()
    # the versions page, once the publish has redirected there (a screenshot taken while the
    # page navigates waits for a frame that never comes)
    expect(page.get_by_role("cell", name="first version")).to_be_visible()
    expect(page.get_by_role("button", name="Show differences")).to_be_visible()
    shot(page, "06-versions")
    page.get_by_role("button", name="Show differences").click()
    expect(page.locator(".b-diff-prompt")).to_contain_text("You report the weather")
    expect(page.locator(".b-diff-prompt .b-diff--del")).to_contain_text("Use get_weather.")
    expect(page.locator(".b-diff-prompt .b-diff--add").first).to_contain_text("briefly.")
    shot(page, "07-diff")
    page.get_by_role("link", name="All versions").click()
    page.get_by_role("button", name="Restore as draft").last.click()  # version 1 is listed last
    expect(page.get_by_label("Instructions (system prompt)")).to_have_value(
        "You report the weather. Use get_weather."
    )
    shot(page, "08-editor-restored")


def test_two_agent_system_delegation(page, live, fake_openai, staff):
    from builder.services import agent_create

    agent_create(
        owner=staff,
        slug="billing",
        name="Billing",
        config={"system_prompt": "You handle billing.", "model": MODEL},
    )
    agent_create(
        owner=staff,
        slug="front-desk",
        name="Front desk",
        config={
            "system_prompt": "Delegate billing questions to billing.",
            "model": MODEL,
            "sub_agents": [{"agent_key": "billing", "mode": "delegate", "context": "full"}],
        },
    )
    page.goto("/systems/")
    page.get_by_role("link", name="New system").first.click()
    page.get_by_label("Key").fill("help-desk")
    page.get_by_label("Name", exact=True).fill("Help desk")
    page.get_by_label("Entry agent").fill("front-desk")
    page.get_by_label("Find agents to add").fill("billing")
    page.get_by_role("button", name="Add Billing (billing)").click()
    expect(page.get_by_role("checkbox", name="Billing (billing)")).to_be_checked()
    page.get_by_role("button", name="Save system").click()
    expect(page.locator("#builder").get_by_role("heading", name=re.compile("Help desk"))).to_be_visible()

    fake_openai.push(
        ToolCalls([("billing", {"message": "Customer asks about a refund"})]),  # front desk delegates
        Text(["Refunds ", "take ", "5 days."], delay=0.05),  # billing answers
        Text(["Billing says: ", "refunds take 5 days."], delay=0.05),  # front desk replies
    )
    page.get_by_label("Show steps").check()
    _send(page, "How long does a refund take?")
    turn = _last_turn(page)
    expect(turn.locator(".b-step").filter(has_text="Agent billing starts (delegate)")).to_be_visible()
    expect(turn.locator(".b-usage")).to_contain_text("succeeded")
    expect(turn.locator(".b-msg--assistant").last).to_contain_text("refunds take 5 days")
    shot(page, "09-system-delegation")

    page.get_by_role("button", name="Publish system").click()
    expect(page.get_by_text("pinned 2 member version(s)")).to_be_visible()


def test_hostile_model_reply_is_inert(page, live, fake_openai, staff):
    from builder.services import agent_create

    agent = agent_create(
        owner=staff, slug="hostile", name="Hostile", config={"system_prompt": "x", "model": MODEL}
    )
    fake_openai.push(
        Text(
            [
                '**Hi** <img src=x onerror="window.__pwned = 1"> ',
                "[click me](javascript:window.__pwned=2) ",
                "<script>window.__pwned = 3</script> [safe](https://example.com)",
            ]
        )
    )
    page.goto(f"/agents/{agent.public_id}/")
    _send(page, "say something nasty")
    turn = _last_turn(page)
    expect(turn.locator(".b-usage")).to_contain_text("succeeded")
    reply = turn.locator(".b-msg--assistant")
    expect(reply.locator("strong")).to_have_text("Hi")
    assert reply.locator("img").count() == 0 and reply.locator("script").count() == 0
    assert (
        reply.get_by_role("link", name="click me").count() == 0
        or reply.get_by_text("click me").get_attribute("href") is None
    )
    expect(reply.get_by_role("link", name="safe")).to_have_attribute("href", "https://example.com")
    assert page.evaluate("window.__pwned") is None
    shot(page, "10-hostile-reply-inert")


def test_stream_drop_reconnects_by_itself(page, live, fake_openai, staff):
    """The first stream connection fails while the run is still going; the pane reconnects and finishes.

    (Exact resume with Last-Event-ID after a cut mid-stream is covered at the protocol level by the
    API's SSE tests; Playwright can only cut a response it has fully buffered.)
    """
    from builder.services import agent_create

    agent = agent_create(
        owner=staff, slug="resumer", name="Resumer", config={"system_prompt": "x", "model": MODEL}
    )
    fake_openai.push(Text(["one ", "two ", "three ", "four ", "five."], delay=0.6))
    seen: list[str] = []

    def drop_first_stream(route):
        seen.append(route.request.url)
        if len(seen) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/events/stream/**", drop_first_stream)
    page.goto(f"/agents/{agent.public_id}/")
    _send(page, "count to five")
    turn = _last_turn(page)
    expect(turn.locator(".b-usage")).to_contain_text("succeeded", timeout=30_000)
    expect(turn.locator(".b-msg--assistant")).to_have_text("one two three four five.")
    assert len(seen) >= 2, "the browser did not reconnect"
