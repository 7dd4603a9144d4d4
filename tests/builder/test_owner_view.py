"""The owner's view: an agent's conversations from every channel, transcripts, usage per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from builder.owner_view import Filters, conversations_of, usage_by_day
from builder.services import agent_publish
from builder.services.playground import playground_send
from builder.services.sharing import share_add, share_change
from builder.services.systems import system_publish, system_save
from runtime.channels.api_keys import api_key_create
from runtime.channels.services import widget_channel_create
from runtime.channels.visitors import visitor_session_mint, widget_feedback_set, widget_message_send
from runtime.messages import append_messages
from runtime.models import AgentConversation, AgentEvent, AgentRun
from runtime.services import run_create
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db
SITE = "https://shop.example.com"


@pytest.fixture
def live(owner):
    agent = make_agent(owner, slug="support", name="Support")
    agent_publish(agent=agent, user=owner)
    return agent


@pytest.fixture
def channel(live, owner):
    return widget_channel_create(agent_key=live.slug, user=owner, allowed_origins=[SITE])


def widget_chat(channel, text: str, *, user_token=None):
    session, _ = visitor_session_mint(publishable_key=channel.publishable_key, origin=SITE)
    return session, widget_message_send(session=session, channel=channel, text=text)


def key_chat(agent, owner, text: str, name: str = "Shop backend"):
    key, _ = api_key_create(name=name, agent_keys=[agent.slug], user=owner)
    run, _ = run_create(
        agent_key=agent.slug,
        messages=[{"role": "user", "content": text}],
        channel_caller=key.caller,
        metadata={"channel": "openai", "api_key_id": str(key.pk), "api_key_name": key.name},
    )
    return run


def answer(run, text: str, **usage):
    """What a worker writes when a run ends: the reply, the status and the usage."""
    with connection.cursor() as cursor:
        append_messages(cursor, run.conversation_id, run.pk, [{"role": "assistant", "content": text}])
    AgentRun.objects.filter(pk=run.pk).update(status=usage.pop("status", "succeeded"), **usage)


def list_url(agent, **params):
    from urllib.parse import urlencode

    url = reverse("builder:agent-conversations", args=[agent.public_id])
    return f"{url}?{urlencode(params)}" if params else url


def rows_of(response) -> dict[str, str]:
    """Each listed conversation's title and source, from the rendered table."""
    return {row.conversation.title: row.source for row in response.context["rows"]}


def test_every_channel_is_listed_with_its_source_and_who(owner_client, owner, live, channel):
    session, widget_run = widget_chat(channel, "Where is my parcel?")
    answer(widget_run, "It ships today.")
    widget_feedback_set(session=session, channel=channel, run=widget_run, rating="down")
    playground_send(user=owner, agent=live, text="Testing the draft")
    key_chat(live, owner, "Order status for 42")
    run_create(agent_key=live.slug, messages=[{"role": "user", "content": "From the REST API"}], user=owner)

    response = owner_client.get(list_url(live))
    assert response.status_code == 200
    assert rows_of(response) == {
        "Where is my parcel?": "widget",
        "Testing the draft": "playground",
        "Order status for 42": "api_key",
        "From the REST API": "api",
    }
    body = response.content.decode()
    assert "API key “Shop backend”" in body
    assert f"Anonymous visitor {str(session.pk)[:8]}" in body
    widget_row = next(r for r in response.context["rows"] if r.source == "widget")
    assert (widget_row.messages, widget_row.thumbs_up, widget_row.thumbs_down) == (2, 0, 1)


def test_a_metadata_label_sent_by_a_caller_does_not_make_a_widget_conversation(owner_client, owner, live):
    run_create(
        agent_key=live.slug,
        messages=[{"role": "user", "content": "I claim to be the widget"}],
        user=owner,
        metadata={"channel": "widget", "widget_channel": "x"},
    )
    assert rows_of(owner_client.get(list_url(live))) == {"I claim to be the widget": "api"}


def test_search_finds_text_in_answers_and_questions(owner_client, owner, live, channel):
    _, first = widget_chat(channel, "Do you ship to Norway?")
    answer(first, "Yes, Norwegian orders take five days.")
    widget_chat(channel, "Can I pay with a card?")
    assert set(rows_of(owner_client.get(list_url(live, q="norwegian")))) == {"Do you ship to Norway?"}
    assert set(rows_of(owner_client.get(list_url(live, q="CARD")))) == {"Can I pay with a card?"}
    response = owner_client.get(list_url(live, q="nothing like this"))
    assert "No conversation matches" in response.content.decode()


def test_filters_by_source_and_date(owner_client, owner, live, channel):
    widget_chat(channel, "Widget question")
    playground_send(user=owner, agent=live, text="Playground question")
    old = key_chat(live, owner, "Old key question")
    AgentConversation.objects.filter(pk=old.conversation_id).update(
        updated_at=datetime(2026, 1, 10, 12, tzinfo=UTC)
    )
    assert set(rows_of(owner_client.get(list_url(live, source="widget")))) == {"Widget question"}
    assert set(rows_of(owner_client.get(list_url(live, source="playground")))) == {"Playground question"}
    in_january = owner_client.get(list_url(live, since="2026-01-10", until="2026-01-10"))
    assert set(rows_of(in_january)) == {"Old key question"}
    assert set(rows_of(owner_client.get(list_url(live, since="2026-01-11")))) == {
        "Widget question",
        "Playground question",
    }


def test_a_bad_date_is_named_not_a_500(owner_client, live):
    response = owner_client.get(list_url(live, since="31/01/2026"), headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "From: write the date as YYYY-MM-DD" in response.content.decode()
    assert 'id="results"' in response.content.decode()  # the region htmx swaps


def test_only_this_agents_conversations(owner_client, owner, live):
    other = make_agent(owner, slug="other", name="Other")
    playground_send(user=owner, agent=other, text="Not for support")
    playground_send(user=owner, agent=live, text="For support")
    assert set(rows_of(owner_client.get(list_url(live)))) == {"For support"}


def test_pages_of_25(owner_client, owner, live):
    for n in range(27):
        playground_send(user=owner, agent=live, text=f"Question {n}")
    first = owner_client.get(list_url(live))
    assert len(first.context["rows"]) == 25 and "Page 1 of 2" in first.content.decode()
    second = owner_client.get(list_url(live, page=2))
    assert len(second.context["rows"]) == 2


def _mixed(live, owner, channel, n: int) -> None:
    for i in range(n):
        session, run = widget_chat(channel, f"Widget {i}")
        answer(run, "Answer")
        widget_feedback_set(session=session, channel=channel, run=run, rating="up")
        playground_send(user=owner, agent=live, text=f"Playground {i}")
        key_chat(live, owner, f"Key {i}", name=f"Key {i}")


def test_queries_per_page_do_not_grow_with_conversations(owner_client, owner, live, channel):
    _mixed(live, owner, channel, 1)
    with CaptureQueriesContext(connection) as few:
        assert len(owner_client.get(list_url(live)).context["rows"]) == 3
    _mixed(live, owner, channel, 9)
    with CaptureQueriesContext(connection) as many:
        assert len(owner_client.get(list_url(live)).context["rows"]) == 25
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_the_transcript_shows_answers_steps_errors_and_feedback(owner_client, owner, live, channel):
    session, run = widget_chat(channel, "What is the weather in Oslo?")
    AgentEvent.objects.create(
        run=run, seq=1, event_type="tool.call", payload={"tool": "weather", "arguments": {"city": "Oslo"}}
    )
    AgentEvent.objects.create(
        run=run, seq=2, event_type="tool.result", payload={"tool": "weather", "result": "7°C"}
    )
    answer(run, "It is **7°C** in Oslo.", prompt_tokens=30, completion_tokens=8)
    widget_feedback_set(session=session, channel=channel, run=run, rating="up")
    failed = widget_message_send(
        session=session, channel=channel, text="And tomorrow?", conversation=run.conversation
    )
    AgentEvent.objects.create(
        run=failed, seq=1, event_type="run.failed", payload={"error": {"message": "The model is down."}}
    )
    AgentRun.objects.filter(pk=failed.pk).update(
        status="failed", error={"code": "x", "message": "The model is down."}
    )

    url = reverse("builder:agent-conversation", args=[live.public_id, run.conversation_id])
    body = owner_client.get(url).content.decode()
    assert "What is the weather in Oslo?" in body and "<strong>7°C</strong>" in body
    assert "Steps (2)" in body and "Tool call: weather" in body and "Tool result: weather" in body
    assert "The model is down." in body and "Steps (1)" in body
    assert "👍 helpful" in body and "Web widget" in body
    assert "<form" not in body.split('aria-label="Transcript"')[1]  # read-only


def test_a_conversation_of_another_agent_is_404(owner_client, owner, live):
    other = make_agent(owner, slug="other", name="Other")
    run = playground_send(user=owner, agent=other, text="Elsewhere")
    url = reverse("builder:agent-conversation", args=[live.public_id, run.conversation_id])
    assert owner_client.get(url).status_code == 404


def test_viewers_are_refused_editors_see_strangers_get_404(owner, live, other_staff, client):
    from django.contrib.auth import get_user_model

    playground_send(user=owner, agent=live, text="Private chat")
    stranger = get_user_model().objects.create_user("str", "s@example.com", "x", is_staff=True)
    share_add(obj=live, actor=owner, role="viewer", user=other_staff)
    for name in ("agent-conversations", "agent-usage"):
        url = reverse(f"builder:{name}", args=[live.public_id])
        client.force_login(other_staff)
        refused = client.get(url)
        assert refused.status_code == 403
        assert "only editors and owners may read its conversations" in refused.content.decode()
        assert "Private chat" not in refused.content.decode()
        client.force_login(stranger)
        assert client.get(url).status_code == 404
    share_change(obj=live, actor=owner, role="editor", user=other_staff)
    client.force_login(other_staff)
    assert client.get(list_url(live)).status_code == 200


def test_usage_per_day_counts_runs_visitors_tokens_cost_errors_and_feedback(owner, live, channel):
    today = timezone.now().date()
    s1, r1 = widget_chat(channel, "One")
    answer(r1, "a", prompt_tokens=100, completion_tokens=20, cost_usd=Decimal("0.0100"))
    widget_feedback_set(session=s1, channel=channel, run=r1, rating="up")
    r2 = widget_message_send(session=s1, channel=channel, text="Two", conversation=r1.conversation)
    answer(r2, "b", prompt_tokens=50, completion_tokens=10, cost_usd=Decimal("0.0050"), status="failed")
    widget_feedback_set(session=s1, channel=channel, run=r2, rating="down")
    _, r3 = widget_chat(channel, "Three")
    answer(r3, "c", prompt_tokens=1, completion_tokens=1, unpriced_tokens=2)
    old = key_chat(live, owner, "Yesterday")
    answer(old, "d", prompt_tokens=7, completion_tokens=3, cost_usd=Decimal("0.0200"))
    AgentRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    ancient = key_chat(live, owner, "Too old")
    AgentRun.objects.filter(pk=ancient.pk).update(created_at=timezone.now() - timedelta(days=40))

    days = usage_by_day(key=live.slug, today=today)
    assert len(days) == 30 and days[-1].day == today
    t, y = days[-1], days[-2]
    assert (t.runs, t.visitors, t.tokens, t.cost, t.unpriced_tokens, t.errors) == (
        3, 2, 182, Decimal("0.0150"), 2, 1,
    )  # fmt: skip
    assert (t.thumbs_up, t.thumbs_down) == (1, 1)
    assert (y.runs, y.visitors, y.tokens, y.cost, y.errors) == (1, 1, 10, Decimal("0.0200"), 0)
    assert sum(d.runs for d in days) == 4  # the 40-day-old run is outside the window


def test_usage_page_shows_charts_and_a_table(owner_client, owner, live, channel):
    _, run = widget_chat(channel, "Hello")
    answer(run, "Hi", prompt_tokens=10, completion_tokens=2, cost_usd=Decimal("0.0030"))
    body = owner_client.get(reverse("builder:agent-usage", args=[live.public_id])).content.decode()
    assert body.count("<svg") >= 6 and 'class="b-chart-bar"' in body
    assert "Usage per day" in body and "$0.0030" in body and '<th scope="row">' in body


def test_a_system_has_the_same_pages(owner_client, owner, live):
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=live, members={})
    system_publish(system=system, user=owner)
    playground_send(user=owner, system=system, text="System question")
    response = owner_client.get(reverse("builder:system-conversations", args=[system.public_id]))
    assert rows_of(response) == {"System question": "playground"}
    conversation = AgentConversation.objects.get(agent_key="desk")
    detail = reverse("builder:system-conversation", args=[system.public_id, conversation.pk])
    assert "System question" in owner_client.get(detail).content.decode()
    assert owner_client.get(reverse("builder:system-usage", args=[system.public_id])).status_code == 200


def test_the_editor_and_publish_page_link_here(owner_client, live):
    url = list_url(live)
    assert url in owner_client.get(live.get_absolute_url()).content.decode()
    assert (
        url in owner_client.get(reverse("builder:agent-publish-page", args=[live.public_id])).content.decode()
    )


def test_filters_are_plain_values():
    f = Filters.from_query({"q": "a\x00b", "source": "bogus", "since": "2026-02-01", "until": "2026-01-01"})
    assert f.q == "ab" and f.source == "" and "source" in f.errors and "until" in f.errors
    assert list(conversations_of(key="nobody", filters=f)) == []


def test_messages_count_what_people_read_not_tool_plumbing(owner_client, owner, live):
    run = playground_send(user=owner, agent=live, text="What is 6 times 7?")
    with connection.cursor() as cursor:
        append_messages(
            cursor,
            run.conversation_id,
            run.pk,
            [
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                 "function": {"name": "calculator", "arguments": "{}"}}]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
                {"role": "assistant", "content": "It is 42."},
            ],
        )  # fmt: skip
    (row,) = owner_client.get(list_url(live)).context["rows"]
    assert row.messages == 2
    detail = owner_client.get(
        reverse("builder:agent-conversation", args=[live.public_id, run.conversation_id])
    )
    assert detail.context["transcript"].row.messages == 2


def test_what_a_visitor_typed_is_inert_in_the_list_and_the_transcript(owner_client, live, channel):
    _, run = widget_chat(channel, '<script>alert(1)</script><img src=x onerror="alert(2)">')
    answer(run, '**ok** <img src=x onerror="alert(3)"> [x](javascript:alert(4))')
    listed = owner_client.get(list_url(live)).content.decode()
    detail = owner_client.get(
        reverse("builder:agent-conversation", args=[live.public_id, run.conversation_id])
    ).content.decode()
    for body in (listed, detail):
        assert "<script>alert(1)" not in body and "<img src=x" not in body and "javascript:alert" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail and "<strong>ok</strong>" in detail


def test_a_day_on_a_model_without_a_price_reads_price_unknown_never_zero_dollars(owner_client, live, channel):
    _, run = widget_chat(channel, "Hello")
    answer(run, "Hi", prompt_tokens=900, completion_tokens=300, unpriced_tokens=1200)
    body = owner_client.get(reverse("builder:agent-usage", args=[live.public_id])).content.decode()
    today = timezone.now().date()
    row = body[body.index(f'datetime="{today:%Y-%m-%d}"') :].split("</tr>")[0]
    assert "<td>price unknown for 1,200 tokens</td>" in row  # the table's day
    assert f"<title>{today:%b %d}: price unknown for 1,200 tokens</title>" in body  # the cost chart's bar
    assert "1200 tokens, price unknown for 1,200 tokens," in body  # the 30 days' total
    assert "$0.0000 + price unknown" not in body
