"""The Publish page: the owner manages the agent's web widget; nobody else can."""

from __future__ import annotations

import pytest
from django.urls import reverse

from builder.services import agent_publish
from runtime.channels.models import WidgetChannel
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(owner):
    agent = make_agent(
        owner,
        slug="shop-help",
        name="Shop help",
        opening_message="Hi! Ask me about orders.",
        suggested_questions=["Where is my order?", "How do I return something?"],
    )
    agent_publish(agent=agent, user=owner)
    agent.refresh_from_db()
    return agent


def url(name: str, agent) -> str:
    return reverse(f"builder:{name}", args=[agent.public_id])


def test_an_unpublished_agent_is_told_to_publish_first(owner_client, agent):
    response = owner_client.get(url("agent-publish-page", agent))
    assert response.status_code == 200
    assert b"Publish a version of this agent first" in response.content
    assert b"Create web widget" not in response.content


def test_the_owner_creates_a_widget_with_the_agents_greeting_and_questions(owner_client, published, owner):
    response = owner_client.post(url("widget-create", published))
    assert response.status_code == 302
    channel = WidgetChannel.objects.get(agent_key="shop-help")
    assert channel.greeting == "Hi! Ask me about orders."
    assert channel.suggested_questions == ["Where is my order?", "How do I return something?"]
    assert channel.title == "Shop help" and channel.created_by == owner
    page = owner_client.get(url("agent-publish-page", published)).content.decode()
    assert channel.publishable_key in page and "widget/widget.js" in page and "Copy snippet" in page
    assert "No website may show the widget yet" in page


def test_settings_errors_are_shown_by_each_field_and_nothing_is_saved(owner_client, published, owner):
    owner_client.post(url("widget-create", published))
    data = {
        "allowed_origins": "https://shop.example.com/checkout",
        "title": "Help",
        "colour": "navy",
        "position": "bottom-left",
        "greeting": "",
        "suggested_questions": "",
        "messages_per_visitor_per_day": "0",
        "requests_per_minute_per_visitor": "many",
        "max_steps_per_run": "0",
        "max_tokens_per_run": "12",
        "max_seconds_per_run": "2.5",
    }
    response = owner_client.post(url("widget-settings", published), data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="widget-settings"' in html and "<html" not in html  # the form alone, for htmx
    assert "has a path" in html and "use a hex value like #2563eb" in html and "from 1 to 10000" in html
    assert "from 1 to 600" in html and "steps from 1 to 50" in html
    assert "tokens from 100 to 1,000,000" in html and "seconds from 5 to 3,600" in html
    channel = WidgetChannel.objects.get()
    assert (
        channel.allowed_origins == [] and channel.colour == "#2563eb" and channel.position == "bottom-right"
    )

    data.update(
        allowed_origins="https://shop.example.com\nhttp://localhost:8000",
        colour="#0a0",
        messages_per_visitor_per_day="20",
        requests_per_minute_per_visitor="6",
        max_steps_per_run="3",
        max_tokens_per_run="20,000",
        max_seconds_per_run="",
    )
    saved = owner_client.post(url("widget-settings", published), data, headers={"HX-Request": "true"})
    assert saved.status_code == 200 and b"Widget settings saved" in saved.content
    channel.refresh_from_db()
    assert channel.allowed_origins == ["https://shop.example.com", "http://localhost:8000"]
    assert channel.colour == "#00aa00" and channel.messages_per_visitor_per_day == 20
    assert (channel.requests_per_minute_per_visitor, channel.max_steps_per_run) == (6, 3)
    assert (channel.max_tokens_per_run, channel.max_seconds_per_run) == (20_000, None)  # blank: no cap
    assert channel.show_sources is False  # an unticked box


def test_files_from_visitors_are_off_until_the_owner_allows_them_within_the_servers_caps(
    owner_client, published, settings
):
    settings.AGENT_ATTACHMENT_MAX_FILES = 5
    settings.AGENT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
    owner_client.post(url("widget-create", published))
    channel = WidgetChannel.objects.get()
    page = owner_client.get(url("agent-publish-page", published)).content.decode()
    assert channel.attachments_enabled is False and "Visitors may attach files" in page
    assert "Off by default" in page and "server&#x27;s own (10 MB)" in page
    data = {
        "allowed_origins": "https://shop.example.com",
        "title": "Help",
        "colour": "#2563eb",
        "position": "bottom-right",
        "messages_per_visitor_per_day": "50",
        "requests_per_minute_per_visitor": "10",
        "attachments_enabled": "on",
        "attachment_max_files": "9",
        "attachment_max_mb": "50",
    }
    refused = owner_client.post(url("widget-settings", published), data, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    html = refused.content.decode()
    assert 'id="id_attachment_max_files-error"' in html and "from 1 to 5 (the server" in html
    assert 'id="id_attachment_max_mb-error"' in html and "from 0.01 to 10 (the server" in html
    channel.refresh_from_db()
    assert channel.attachments_enabled is False  # nothing saved

    data.update(attachment_max_files="2", attachment_max_mb="0.5")
    saved = owner_client.post(url("widget-settings", published), data, headers={"HX-Request": "true"})
    assert saved.status_code == 200 and b"Widget settings saved" in saved.content
    channel.refresh_from_db()
    assert (channel.attachments_enabled, channel.attachment_max_files) == (True, 2)
    assert str(channel.attachment_max_mb) == "0.50"
    assert 'value="0.5"' in saved.content.decode()  # shown as typed


def test_turn_off_on_and_rotate(owner_client, published):
    owner_client.post(url("widget-create", published))
    channel = WidgetChannel.objects.get()
    owner_client.post(url("widget-enabled", published), {"enabled": "0"})
    channel.refresh_from_db()
    assert not channel.enabled
    owner_client.post(url("widget-enabled", published), {"enabled": "1"})
    old = channel.publishable_key
    owner_client.post(url("widget-rotate", published))
    channel.refresh_from_db()
    assert channel.enabled and channel.publishable_key != old
    secret = channel.identity_secret
    assert secret in owner_client.get(url("agent-publish-page", published)).content.decode()
    owner_client.post(url("widget-identity-rotate", published))
    channel.refresh_from_db()
    assert channel.identity_secret != secret


def test_the_preview_may_be_framed_by_this_site_only(owner_client, published):
    owner_client.post(url("widget-create", published))
    response = owner_client.get(url("widget-preview", published))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in response["Content-Security-Policy"]
    assert WidgetChannel.objects.get().publishable_key in response.content.decode()


@pytest.mark.parametrize("who", ["staff_client", "stranger_client"])
def test_nobody_else_sees_or_changes_the_widget(request, owner_client, published, who):
    owner_client.post(url("widget-create", published))
    channel = WidgetChannel.objects.get()
    client = request.getfixturevalue(who)
    expected = 404 if who == "staff_client" else 302  # non-staff go to the sign-in page
    assert client.get(url("agent-publish-page", published)).status_code == expected
    assert client.get(url("widget-preview", published)).status_code == expected
    for name, data in [
        ("widget-create", {}),
        (
            "widget-settings",
            {
                "title": "pwned",
                "colour": "#000000",
                "position": "bottom-left",
                "messages_per_visitor_per_day": "1",
                "requests_per_minute_per_visitor": "1",
            },
        ),
        ("widget-enabled", {"enabled": "0"}),
        ("widget-rotate", {}),
        ("widget-identity-rotate", {}),
    ]:
        assert client.post(url(name, published), data).status_code == expected
    after = WidgetChannel.objects.get()
    assert (after.title, after.enabled, after.publishable_key, after.identity_secret) == (
        channel.title,
        True,
        channel.publishable_key,
        channel.identity_secret,
    )


def test_state_changes_are_post_only(owner_client, published):
    owner_client.post(url("widget-create", published))
    for name in (
        "widget-create",
        "widget-settings",
        "widget-enabled",
        "widget-rotate",
        "widget-identity-rotate",
    ):
        assert owner_client.get(url(name, published)).status_code == 405


def test_the_editor_links_to_the_publish_page(owner_client, published):
    page = owner_client.get(published.get_absolute_url()).content.decode()
    assert url("agent-publish-page", published) in page


def test_the_admin_lists_widgets_to_their_owners_and_turns_them_off(owner_client, staff_client, published):
    owner_client.post(url("widget-create", published))
    channel = WidgetChannel.objects.get()
    changelist = "/admin/runtime/widgetchannel/"
    assert channel.publishable_key in owner_client.get(changelist).content.decode()
    assert channel.publishable_key not in staff_client.get(changelist).content.decode()
    # another staff user's action on a row they cannot see changes nothing
    staff_client.post(changelist, {"action": "turn_off", "_selected_action": [str(channel.pk)]})
    channel.refresh_from_db()
    assert channel.enabled
    owner_client.post(changelist, {"action": "turn_off", "_selected_action": [str(channel.pk)]})
    channel.refresh_from_db()
    assert not channel.enabled


def test_a_published_system_gets_a_widget_that_runs_the_system(owner_client, staff_client, owner, published):
    from rest_framework.test import APIClient

    from builder.services.systems import system_publish, system_save
    from runtime.models import AgentRun

    system = system_save(owner=owner, slug="desk", name="Help desk", entry_agent=published, members={})
    page_url = reverse("builder:system-publish-page", args=[system.public_id])
    assert b"Publish this system first" in owner_client.get(page_url).content
    editor = owner_client.get(reverse("builder:system-edit", args=[system.public_id])).content.decode()
    assert page_url in editor  # the system editor links to its Publish page
    system_publish(system=system, user=owner)

    create = reverse("builder:system-widget-create", args=[system.public_id])
    assert staff_client.post(create).status_code == 404
    assert owner_client.post(create).status_code == 302
    channel = WidgetChannel.objects.get(agent_key="desk")
    assert (
        channel.title == "Help desk" and channel.greeting == "Hi! Ask me about orders."
    )  # the entry agent's
    settings = reverse("builder:system-widget-settings", args=[system.public_id])
    saved = owner_client.post(
        settings,
        {"allowed_origins": "https://desk.example.com", "title": "Desk", "colour": "#123456", "position": "bottom-left",
         "messages_per_visitor_per_day": "5", "requests_per_minute_per_visitor": "10"},
    )  # fmt: skip
    assert saved.status_code == 200
    page = owner_client.get(page_url).content.decode()
    assert (
        channel.publishable_key in page
        and reverse("builder:system-widget-preview", args=[system.public_id]) in page
    )

    site = "https://desk.example.com"
    token = (
        APIClient()
        .post("/api/widget/session/", {"key": channel.publishable_key}, format="json", HTTP_ORIGIN=site)
        .json()["token"]
    )
    client = APIClient()
    client.credentials(HTTP_X_ANONYMOUS_TOKEN=token, HTTP_ORIGIN=site)
    sent = client.post("/api/widget/messages/", {"message": "hello desk"}, format="json")
    assert sent.status_code == 201, sent.content
    assert AgentRun.objects.get(pk=sent.json()["run_id"]).agent_key == "desk"


def test_an_editor_changes_the_draft_but_not_what_the_public_reaches(published, owner, django_user_model):
    from django.test import Client

    from builder.services.sharing import share_add
    from runtime.channels.services import ChannelError, widget_channel_create

    editor = django_user_model.objects.create_user("ed", "ed@example.com", "x", is_staff=True)
    share_add(obj=published, actor=owner, role="editor", user=editor)
    with pytest.raises(ChannelError):
        widget_channel_create(agent_key=published.slug, user=editor)
    client = Client()
    client.force_login(editor)
    response = client.post(url("widget-create", published))
    assert response.status_code == 403 and "only owners may" in response.content.decode()
    assert not WidgetChannel.objects.exists()
    widget_channel_create(agent_key=published.slug, user=owner)  # the owner may


def test_the_publish_page_shows_the_daily_budget_to_owners_only(owner_client, owner, published, other_staff):
    from django.test import Client

    from builder.services.sharing import share_add
    from runtime.channels.api_keys import agent_budget_set

    assert "No daily budget." in owner_client.get(url("agent-publish-page", published)).content.decode()
    agent_budget_set(agent_key="shop-help", user=owner, daily_budget_usd="3", daily_budget_tokens="250k")
    page = owner_client.get(url("agent-publish-page", published)).content.decode()
    assert "Budget: $3.00 and 250,000 tokens a day." in page and "Set the daily budget" in page
    share_add(obj=published, actor=owner, role="viewer", user=other_staff)
    viewer = Client()
    viewer.force_login(other_staff)
    assert "Daily budget" not in viewer.get(url("agent-publish-page", published)).content.decode()
