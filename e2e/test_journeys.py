"""First-use journeys in a real browser: from signing in to a streamed reply, counting clicks,
and every starter template answering at once on the demo model."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from runtime.models import AgentRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_login_to_streamed_reply_from_a_template_in_four_clicks(browser, live, staff):
    context = browser.new_context(base_url=live, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    clicks = 0

    def click(locator) -> None:
        nonlocal clicks
        clicks += 1
        locator.click()

    page.goto("/")
    page.get_by_label("Username").fill("builder")
    page.get_by_label("Password").fill("pw-builder-123")
    click(page.get_by_role("button", name="Log in"))
    click(page.get_by_role("link", name="New agent"))
    shot(page, "journey-01-templates")
    click(page.get_by_role("button", name="Use the Support assistant template"))
    expect(
        page.locator("#builder").get_by_role("heading", name=re.compile("Support assistant"))
    ).to_be_visible()
    page.get_by_label("Message").fill("Hello, can you help me?")
    click(page.get_by_role("button", name="Send"))
    turn = page.locator("#pg-chat .b-turn").last
    expect(turn.locator(".b-usage")).to_contain_text("succeeded")
    expect(turn.locator(".b-msg--assistant").first).to_contain_text(re.compile("demo", re.I))
    shot(page, "journey-02-first-reply")
    assert clicks <= 4, clicks
    context.close()


@pytest.mark.parametrize(
    "template", ["Support assistant", "FAQ assistant", "Researcher", "Front desk router"]
)
def test_every_template_answers_at_once(page, template):
    page.goto("/agents/new/")
    page.get_by_role("button", name=f"Use the {template} template").click()
    expect(page.locator("#builder").get_by_role("heading", name=re.compile(template))).to_be_visible()
    page.get_by_label("Message").fill("Hello")
    page.get_by_label("Message").press("Enter")
    turn = page.locator("#pg-chat .b-turn").last
    expect(turn.locator(".b-usage")).to_contain_text("succeeded")
    assert AgentRun.objects.filter(status="succeeded").exists()


def test_key_follows_the_name_and_a_taken_key_suggests_a_free_one(page, staff):
    from builder.models import Agent
    from builder.services import agent_create

    agent_create(owner=staff, slug="support-bot", name="Old support bot")
    page.goto("/agents/new/")
    page.get_by_label("Name").press_sequentially("Support Bot")
    expect(page.get_by_label("Key")).to_have_value("support-bot")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text("'support-bot-2' is free")).to_be_visible()
    shot(page, "journey-03-key-taken")
    assert Agent.objects.count() == 1
    # a key typed by hand is left alone when the name changes
    page.get_by_label("Key").fill("my-own-key")
    page.get_by_label("Name").fill("Support Bot EU")
    expect(page.get_by_label("Key")).to_have_value("my-own-key")
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#builder").get_by_role("heading", name=re.compile("Support Bot EU"))).to_be_visible()
    assert Agent.objects.filter(slug="my-own-key").exists()


def test_playground_runs_what_is_on_screen(page, staff):
    from builder.services import agent_create, agent_publish

    agent = agent_create(owner=staff, slug="onscreen", name="On screen", config={"system_prompt": "Old."})
    agent_publish(agent=agent, user=staff)
    page.goto(f"/agents/{agent.public_id}/")
    expect(page.locator("#agent-head")).to_contain_text("v1 live")
    expect(page.locator("#agent-head")).not_to_contain_text("changes pending")

    # unsaved edits go with the message: saved first, then sent
    page.get_by_label("Name").fill("Renamed")
    page.get_by_label("Instructions (system prompt)").fill("New instructions on screen.")
    page.get_by_label("Message").fill("Which instructions do you have?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-chat .b-turn").last.locator(".b-usage")).to_contain_text("succeeded")
    agent.draft.refresh_from_db()
    assert agent.draft.revision == 2 and agent.draft.config["system_prompt"] == "New instructions on screen."
    run = AgentRun.objects.get()
    assert run.agent_version.endswith("@2")  # the run used the revision saved just before it
    # the page's title and badges follow the save without a reload
    expect(page.locator("#agent-head h1")).to_contain_text("Renamed")
    expect(page.locator("#agent-head")).to_contain_text("changes pending")
    expect(page).to_have_title(re.compile("Renamed"))
    shot(page, "journey-04-saved-before-send")

    # an edit the server refuses: nothing is sent, and the pane says why
    page.get_by_label("Temperature").fill("5")
    page.get_by_label("Message").fill("Second message")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-status")).to_contain_text("Your edits were not saved")
    expect(
        page.locator(".b-field").filter(has=page.get_by_label("Temperature")).locator(".b-error")
    ).to_be_visible()
    assert AgentRun.objects.count() == 1

    # leaving with unsaved edits asks first; staying keeps them
    dialogs = []

    def stay(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    page.locator("#builder").get_by_role("link", name="Tools", exact=True).click()
    expect(page.get_by_label("Temperature")).to_have_value("5")
    assert dialogs == ["beforeunload"]


def test_a_missing_sub_agent_fails_the_run_and_says_what_to_do(page, staff, fake_openai):
    from builder.models import AgentDraft
    from builder.services import agent_create
    from tests.fakes.llm_servers import Text, ToolCalls

    agent = agent_create(
        owner=staff,
        slug="front",
        name="Front",
        config={
            "system_prompt": "Delegate.",
            "model": "openai:gpt-4o-mini",
            "sub_agents": [{"agent_key": "ghost", "mode": "delegate", "context": "full"}],
        },
        known=None,
    )
    # the sub-agent went away behind the builder's back (an import, a code agent removed)
    assert not AgentDraft.objects.filter(agent__slug="ghost").exists()
    fake_openai.push(ToolCalls([("ghost", {"message": "help"})]), Text(["I could not reach them."]))
    page.goto(f"/agents/{agent.public_id}/")
    page.get_by_label("Message").fill("Ask the ghost")
    page.get_by_role("button", name="Send").click()
    turn = page.locator("#pg-chat .b-turn").last
    # a failed run, not a "succeeded" one with the model apologising
    expect(turn.locator(".b-usage")).to_contain_text("failed", timeout=30_000)
    alert = turn.get_by_role("alert")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("Missing sub-agent")
    expect(alert).to_contain_text("Remove 'ghost' from the sub-agents of 'front'")
    expect(turn.locator(".b-msg--assistant")).to_have_count(0)
    run = AgentRun.objects.get(parent_run__isnull=True)
    assert run.status == "failed" and run.error["code"] == "sub_agent_missing"
    shot(page, "journey-05-missing-sub-agent")

    # the run's page in the admin says the same, above the raw fields
    page.goto(f"/admin/runtime/agentrun/{run.pk}/change/")
    expect(page.get_by_text("Remove 'ghost' from the sub-agents of 'front'").first).to_be_visible()
    shot(page, "journey-05-missing-sub-agent-run-page")


def test_a_sub_agent_that_fails_is_a_failed_step_and_the_agent_answers(page, staff, fake_openai):
    from builder.services import agent_create
    from tests.fakes.llm_servers import Status, Text, ToolCalls

    agent_create(
        owner=staff,
        slug="crashy",
        name="Crashy",
        config={"system_prompt": "Help.", "model": "openai:gpt-4o-mini"},
    )
    agent = agent_create(
        owner=staff,
        slug="front",
        name="Front",
        config={
            "system_prompt": "Delegate.",
            "model": "openai:gpt-4o-mini",
            "sub_agents": [{"agent_key": "crashy", "mode": "delegate", "context": "full"}],
        },
    )
    # the front desk calls crashy, whose model answers 400; the front desk is told and answers
    fake_openai.push(
        ToolCalls([("crashy", {"message": "help"})]),
        Status(400, "model refused"),
        Text(["The specialist is unavailable, sorry."]),
    )
    page.goto(f"/agents/{agent.public_id}/")
    page.get_by_label("Show steps").check()
    page.get_by_label("Message").fill("Ask crashy")
    page.get_by_role("button", name="Send").click()
    turn = page.locator("#pg-chat .b-turn").last
    expect(turn.locator(".b-usage")).to_contain_text("succeeded with 1 failed step", timeout=30_000)
    expect(turn.locator(".b-msg--assistant")).to_contain_text("The specialist is unavailable")
    # visible without "Show steps" ...
    expect(turn.get_by_role("alert")).to_contain_text("crashy")
    # ... and marked failed among the steps
    expect(turn.locator(".b-step--error summary")).to_contain_text("Agent crashy failed")
    shot(page, "journey-05-failed-sub-agent-step")


def test_opening_message_and_suggested_questions(page, staff):
    from builder.services import agent_create

    agent = agent_create(owner=staff, slug="greeter", name="Greeter", config={"system_prompt": "Greet."})
    page.goto(f"/agents/{agent.public_id}/")
    page.get_by_label("Greeting").fill("Welcome! Ask me about the weather.")
    page.get_by_label("Suggested questions").fill("Is it sunny?\nWill it rain tomorrow?")
    page.get_by_role("button", name="Save draft").click()
    # the playground shows them at once (no reload) ...
    chat = page.locator("#pg-chat")
    expect(chat.locator(".b-opening")).to_have_text("Welcome! Ask me about the weather.")
    shot(page, "journey-06-opening-and-suggestions")
    # ... and a click on a suggestion sends it
    chat.get_by_role("button", name="Will it rain tomorrow?").click()
    turn = chat.locator(".b-turn").last
    expect(turn.locator(".b-msg--user")).to_have_text("Will it rain tomorrow?")
    expect(turn.locator(".b-usage")).to_contain_text("succeeded")
    expect(chat.get_by_role("button", name="Is it sunny?")).to_have_count(0)
    expect(chat.locator(".b-opening")).to_be_visible()


def test_login_to_a_published_agent_with_an_http_tool_from_a_curl_line(browser, live, staff, weather_api):
    from builder.models import Agent, ToolDefinition

    context = browser.new_context(base_url=live, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Username").fill("builder")
    page.get_by_label("Password").fill("pw-builder-123")
    page.get_by_role("button", name="Log in").click()

    page.locator("#builder").get_by_role("link", name="Tools", exact=True).click()
    page.get_by_role("link", name="New HTTP tool").click()
    page.get_by_text("Start from a cURL command").click()
    page.get_by_label("cURL command").fill(f"curl '{weather_api}/weather/today?city=Oslo'")
    page.get_by_role("button", name="Read the command").click()
    expect(page.get_by_text("Read from your cURL command")).to_be_visible()
    page.get_by_label("Description", exact=True).fill("Today's weather for a city")
    page.get_by_role("button", name="Save tool").click()
    expect(page.get_by_role("button", name="Send request")).to_be_visible()
    tool = ToolDefinition.objects.get()

    page.locator("#builder").get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name", exact=True).fill("Weather desk")
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#builder").get_by_role("heading", name=re.compile("Weather desk"))).to_be_visible()
    page.get_by_label(tool.name, exact=True).check()
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved (revision 2)")).to_be_visible()
    page.get_by_role("button", name="Publish version 1").click()
    expect(page.get_by_role("cell", name="v1 live")).to_be_visible()
    shot(page, "journey-06-published-with-curl-tool")

    agent = Agent.objects.get(name="Weather desk")
    assert agent.published_version is not None
    assert agent.published_version.config["http_tools"] == [tool.name]
    context.close()
