"""Every builder form, given a wrong value in a real browser: the message shows next to the field,
what was typed stays, and nothing is saved. Then the failures a form cannot explain itself: a
server error (500) and a connection that drops, which must be announced in the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from runtime.models import MemoryEntry

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MODEL = "openai:gpt-4o-mini"


def field_error(page, label: str):
    """The error message inside the field whose label is ``label``."""
    return page.locator(".b-field").filter(has=page.get_by_label(label, exact=True)).locator(".b-error")


def _agent(staff, slug: str = "helper", **config):
    from builder.services import agent_create

    return agent_create(
        owner=staff, slug=slug, name=slug.title(), config={"system_prompt": "Be kind.", **config}
    )


def test_agent_create_and_duplicate_errors(page, staff):
    from builder.models import Agent

    _agent(staff, "taken-key")
    page.goto("/agents/new/")
    page.get_by_label("Name").fill("Support bot")
    page.get_by_label("Key").fill("Bad Key!")
    page.get_by_role("button", name="Create agent").click()
    expect(field_error(page, "Key")).to_contain_text("lowercase letters")
    expect(page.get_by_label("Key")).to_have_value("Bad Key!")
    expect(page.get_by_label("Name")).to_have_value("Support bot")
    shot(page, "errors-01-agent-create")
    assert list(Agent.objects.values_list("slug", flat=True)) == ["taken-key"]

    page.goto(f"/agents/{Agent.objects.get().public_id}/duplicate/")
    page.get_by_label("Key").fill("taken-key")
    page.get_by_role("button", name="Duplicate").click()
    expect(field_error(page, "Key")).to_contain_text("already taken")
    assert Agent.objects.count() == 1


def test_agent_editor_errors_keep_input_and_save_nothing(page, staff):
    agent = _agent(staff)
    page.goto(f"/agents/{agent.public_id}/")
    page.get_by_label("Instructions (system prompt)").fill("New words I typed.")
    page.get_by_label("Temperature").fill("5")
    page.get_by_role("button", name="Save draft").click()
    expect(field_error(page, "Temperature")).to_be_visible()
    expect(page.get_by_label("Temperature")).to_have_value("5")
    expect(page.get_by_label("Instructions (system prompt)")).to_have_value("New words I typed.")
    shot(page, "errors-02-agent-edit")
    agent.draft.refresh_from_db()
    assert agent.draft.revision == 1 and agent.draft.config["system_prompt"] == "Be kind."

    page.get_by_label("Temperature").fill("")
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Save draft").click()
    expect(field_error(page, "Name")).to_contain_text("name")
    agent.draft.refresh_from_db()
    assert agent.draft.revision == 1


def test_publish_error_shows_next_to_the_note(page, staff):
    from builder.services import agent_publish, agent_update_draft

    agent = _agent(staff)
    agent_update_draft(agent=agent, user=staff, config={"system_prompt": "Changed."})
    page.goto(f"/agents/{agent.public_id}/")
    # someone else publishes the same draft meanwhile: this page's Publish has nothing left to do
    agent_publish(agent=agent, user=staff)
    page.get_by_label("Note").fill("my note")
    page.get_by_role("button", name=re.compile("Publish version")).click()
    expect(field_error(page, "Note")).to_contain_text("Nothing changed")
    expect(page.get_by_label("Note")).to_have_value("my note")
    assert agent.versions.count() == 1


def test_publish_waits_for_a_sub_agent_that_was_never_published(page, staff):
    _agent(staff, slug="billing")
    router = _agent(staff, slug="router", sub_agents=[{"agent_key": "billing", "mode": "delegate"}])
    page.goto(f"/agents/{router.public_id}/")
    page.get_by_label("Note").fill("first release")
    page.get_by_role("button", name=re.compile("Publish version")).click()
    expect(page.get_by_role("alert")).to_contain_text("Publish its sub-agent Billing first")
    expect(page.get_by_label("Note")).to_have_value("first release")
    shot(page, "errors-publish-sub-agent")
    assert router.versions.count() == 0


def test_tool_and_try_it_errors(page, staff, weather_api):
    from builder.models import ToolDefinition

    page.goto("/tools/new/")
    page.get_by_label("Name", exact=True).fill("get_weather")
    page.get_by_label("Description", exact=True).fill("Weather")
    page.get_by_label("URL", exact=True).fill("http://10.1.2.3/weather")
    # the schema as JSON, for those who want it: a typo there is named next to the parameters
    page.get_by_text("Advanced: the JSON Schema").click()
    page.get_by_label("Edit the parameters as a JSON Schema instead of the list").check()
    page.get_by_label("JSON Schema", exact=True).fill("{not json")
    page.get_by_role("button", name="Save tool").click()
    expect(page.locator("#id_parameters-error")).to_be_visible()
    expect(page.get_by_label("JSON Schema", exact=True)).to_have_value("{not json")
    shot(page, "errors-03-tool")
    assert ToolDefinition.objects.count() == 0

    page.get_by_label("JSON Schema", exact=True).fill('{"type": "object", "properties": {}}')
    page.get_by_role("button", name="Save tool").click()
    expect(field_error(page, "URL")).to_be_visible()
    assert ToolDefinition.objects.count() == 0

    page.get_by_label("URL", exact=True).fill(f"{weather_api}/weather/{{city}}")
    page.get_by_label("JSON Schema", exact=True).fill(
        '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'
    )
    page.get_by_role("button", name="Save tool").click()
    page.get_by_label("Arguments").fill('{"city": "Oslo"}')
    page.get_by_role("button", name="Send request").click()
    expect(page.locator(".b-result")).to_contain_text("sunny")
    # a wrong value: its message, and the earlier result is gone (it answered another question)
    page.get_by_label("Arguments").fill("{oops")
    page.get_by_role("button", name="Send request").click()
    expect(field_error(page, "Arguments")).to_contain_text("not valid JSON")
    expect(page.locator(".b-result")).to_have_count(0)
    expect(page.get_by_label("Arguments")).to_have_value("{oops")
    # a call that never reaches the server does not leave the previous result standing either
    page.get_by_label("Arguments").fill('{"city": "Oslo"}')
    page.get_by_role("button", name="Send request").click()
    expect(page.locator(".b-result")).to_contain_text("sunny")
    page.route("**/try/", lambda route: route.abort("connectionreset"))
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("alert").filter(has_text="Could not reach the server")).to_be_visible()
    expect(page.locator(".b-result")).to_have_count(0)
    expect(page.get_by_role("button", name="Send request")).to_be_enabled()
    shot(page, "errors-04-try-it-dropped")


def test_system_errors(page, staff):
    from builder.models import AgentSystem

    _agent(staff)
    page.goto("/systems/new/")
    page.get_by_label("Key").fill("Not A Key")
    page.get_by_label("Name", exact=True).fill("Help desk")
    page.get_by_label("Entry agent").fill("helper")
    page.get_by_role("button", name="Save system").click()
    expect(field_error(page, "Key")).to_contain_text("lowercase")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Help desk")
    shot(page, "errors-05-system")
    assert AgentSystem.objects.count() == 0


def test_import_error(page, staff):
    from builder.models import Agent

    page.goto("/import/")
    page.get_by_label("Or paste the export").fill("kind: agent\nthis is: [not valid")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#import .b-error").first).to_be_visible()
    expect(page.get_by_label("Or paste the export")).to_have_value("kind: agent\nthis is: [not valid")
    shot(page, "errors-06-import")
    assert Agent.objects.count() == 0


def test_memory_errors_and_add(page, staff):
    agent = _agent(staff)
    page.goto(f"/agents/{agent.public_id}/memory/")
    page.get_by_label("Key").fill("   ")
    page.get_by_label("Value", exact=True).fill("French")
    page.get_by_role("button", name="Add entry").click()
    expect(field_error(page, "Key")).to_be_visible()
    expect(page.get_by_label("Value", exact=True)).to_have_value("French")
    assert MemoryEntry.objects.count() == 0

    page.get_by_label("Key").fill("preferred_language")
    page.get_by_role("button", name="Add entry").click()
    expect(page.get_by_role("status").filter(has_text="Remembered preferred_language")).to_be_visible()
    entry = MemoryEntry.objects.get()
    assert (entry.value, entry.scope, entry.system_key) == ("French", "system", agent.slug)

    box = page.get_by_label("Value of preferred_language")
    box.fill("")
    page.locator("#entries").get_by_role("button", name="Save").click()
    expect(page.locator(f"#mem-{entry.pk}-error")).to_contain_text("Enter a value")
    shot(page, "errors-07-memory")
    entry.refresh_from_db()
    assert entry.value == "French"

    box.fill("German")
    page.locator("#entries").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved preferred_language")).to_be_visible()
    entry.refresh_from_db()
    assert entry.value == "German"

    # delete asks first; cancelling keeps the entry
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#entries").get_by_role("button", name="Delete preferred_language").click()
    expect(page.get_by_label("Value of preferred_language")).to_be_visible()
    assert MemoryEntry.objects.count() == 1
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#entries").get_by_role("button", name="Delete preferred_language").click()
    expect(page.get_by_role("status").filter(has_text="Deleted preferred_language")).to_be_visible()
    assert MemoryEntry.objects.count() == 0


def test_refused_delete_shows_why(page, staff):
    from builder.models import Agent, ToolDefinition
    from builder.services import agent_create
    from builder.services.systems import system_save

    agent = _agent(staff)
    # the dialog opens while nothing uses the agent; meanwhile someone builds a system on it
    page.goto(f"/agents/{agent.public_id}/")
    page.locator(".b-head").get_by_role("link", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    system_save(owner=staff, slug="desk", name="Desk", entry_agent=agent, members={})
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog.get_by_role("alert")).to_contain_text("system Desk")
    shot(page, "errors-08-delete-refused")
    assert Agent.objects.count() == 1

    # opened again, the dialog lists what uses it and offers no Delete button
    caller = agent_create(
        owner=staff,
        slug="caller",
        name="Caller",
        config={
            "system_prompt": "Ask the helper.",
            "sub_agents": [{"agent_key": agent.slug, "mode": "delegate", "context": "full"}],
        },
    )
    page.goto(f"/agents/{agent.public_id}/")
    page.locator(".b-head").get_by_role("link", name="Delete").click()
    expect(dialog.get_by_role("listitem")).to_have_text(["system Desk", "agent Caller"])
    expect(dialog.get_by_role("button", name="Delete")).to_have_count(0)
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)

    # a tool an agent uses is kept the same way
    ToolDefinition.objects.create(
        owner=staff,
        name="lookup",
        description="Look up",
        spec={"method": "GET", "url": "https://api.example.com/x", "parameters": {"type": "object"}},
    )
    from builder.services import agent_update_draft

    agent_update_draft(
        agent=caller,
        user=staff,
        config={
            "system_prompt": "Ask the helper.",
            "http_tools": ["lookup"],
            "sub_agents": [{"agent_key": agent.slug, "mode": "delegate", "context": "full"}],
        },
    )
    page.goto("/tools/")
    page.get_by_role("row", name=re.compile("lookup")).get_by_role("link", name="Delete").click()
    expect(dialog.get_by_role("listitem")).to_have_text(["agent Caller"])
    assert ToolDefinition.objects.count() == 1


def test_server_error_is_announced_and_input_kept(page, staff):
    agent = _agent(staff)
    page.goto(f"/agents/{agent.public_id}/")
    page.route(
        f"**/agents/{agent.public_id}/",
        lambda route: (
            route.fulfill(status=500, content_type="text/html", body="<h1>Server Error (500)</h1>")
            if route.request.method == "POST"
            else route.continue_()
        ),
    )
    page.get_by_label("Instructions (system prompt)").fill("Words worth keeping.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("alert").filter(has_text="server ran into a problem")).to_be_visible()
    expect(page.get_by_label("Instructions (system prompt)")).to_have_value("Words worth keeping.")
    expect(page.get_by_role("button", name="Save draft")).to_be_enabled()
    shot(page, "errors-09-server-error")


def test_dropped_connection_is_announced(page, staff):
    agent = _agent(staff)
    page.goto("/agents/new/")
    page.route("**/agents/new/", lambda route: route.abort("connectionreset"))
    page.get_by_label("Name").fill("Offline bot")
    page.get_by_label("Key").fill("offline-bot")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("alert").filter(has_text="Could not reach the server")).to_be_visible()
    expect(page.get_by_role("button", name="Create agent")).to_be_enabled()
    expect(page.get_by_label("Name")).to_have_value("Offline bot")
    shot(page, "errors-10-dropped")

    # the playground says so too, and keeps the message typed
    page.goto(f"/agents/{agent.public_id}/")
    page.route("**/playground/send/", lambda route: route.abort("connectionreset"))
    page.get_by_label("Message").fill("Hello?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-status")).to_contain_text("Could not reach the server")
    expect(page.get_by_label("Message")).to_have_value("Hello?")
    page.unroute("**/playground/send/")
    page.route(
        "**/playground/send/",
        lambda route: route.fulfill(status=500, content_type="text/html", body="<h1>Server Error (500)</h1>"),
    )
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-status")).to_contain_text("server ran into a problem")
