"""The admin's run and conversation pages stay cheap as rows grow (bench/builder_pages.py measures
them at 10,000 runs): fixed query counts, bounded rows, and cells rendered once, not per row."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runtime.models import AgentConversation, AgentEvent, AgentMessage, AgentRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def root():
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = Client()
    client.force_login(user)
    return client


def _runs(count: int, *, status: str = "succeeded") -> list[AgentRun]:
    users = [get_user_model().objects.create_user(f"u{AgentRun.objects.count()}-{i}") for i in range(3)]
    return AgentRun.objects.bulk_create(
        AgentRun(agent_key=f"agent-{i}", status=status, user=users[i % 3]) for i in range(count)
    )


def _queries(client: Client, url: str) -> int:
    client.get(url)  # warm: session, content types
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_run_list_rows_keep_their_own_checkbox_and_status_badge(root):
    failed = _runs(1, status="failed")[0]
    ok = _runs(1)[0]
    body = root.get("/admin/runtime/agentrun/").content.decode()
    # each row selects its own run (the checkbox markup is rendered once and reused)
    for run in (failed, ok):
        assert re.search(
            rf'<input type="checkbox" name="_selected_action" value="{run.pk}"[^>]*action-select', body
        )
    assert body.count('name="_selected_action"') == 2
    # the badges keep Unfold's colours per status
    assert re.search(r"bg-red-100[^>]*>\s*failed\s*<", body)
    assert re.search(r"bg-green-100[^>]*>\s*succeeded\s*<", body)


def test_run_list_query_count_and_rows_do_not_grow_with_runs(root):
    _runs(3)
    few = _queries(root, "/admin/runtime/agentrun/")
    _runs(60)
    body = root.get("/admin/runtime/agentrun/").content.decode()
    assert _queries(root, "/admin/runtime/agentrun/") == few
    assert body.count('name="_selected_action"') == 20  # a page of 20 runs


def _conversation_of(turn_count: int, *, user=None) -> AgentConversation:
    conversation = AgentConversation.objects.create(agent_key="helper", title="Order", user=user)
    _add_turns(conversation, 0, turn_count)
    return conversation


def _add_turns(conversation: AgentConversation, start: int, count: int) -> None:
    for i in range(start, start + count):
        run = AgentRun.objects.create(conversation=conversation, agent_key="helper", status="succeeded")
        AgentMessage.objects.bulk_create(
            AgentMessage(conversation=conversation, run=run, seq=2 * i + n, role=role, content=f"{role} {i}")
            for n, role in ((1, "user"), (2, "assistant"))
        )


def _transcript(body: str) -> str:
    """The transcript's markup (the page's messages), without the rest of the page."""
    start = body.index('<div id="messages" class="transcript">')
    return body[start : body.index("</ol>", start)]


def test_conversation_page_asks_the_same_queries_for_4_or_40_messages(root):
    conversation = _conversation_of(2)
    url = f"/admin/runtime/agentconversation/{conversation.pk}/change/"
    few = _queries(root, url)
    _add_turns(conversation, 2, 18)
    assert _queries(root, url) == few
    body = root.get(url).content.decode()
    assert "user 0" in body and "assistant 9" in body  # the messages, as text, 20 a page
    assert "user 10" not in body
    assert "Messages 1–20 of 40, oldest first" in body
    assert "assistant 19" in root.get(url, {"messages-page": 2}).content.decode()


def test_conversation_transcript_reads_in_order_with_roles_times_and_run_links(root):
    conversation = _conversation_of(3)
    AgentMessage.objects.create(
        conversation=conversation,
        seq=7,
        role="assistant",
        agent_key="helper",
        content=None,
        tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
    )
    AgentMessage.objects.create(
        conversation=conversation, seq=8, role="tool", name="get_weather", content="<b>sunny</b>"
    )
    transcript = _transcript(
        root.get(f"/admin/runtime/agentconversation/{conversation.pk}/change/").content.decode()
    )
    said = [transcript.index(text) for text in ("user 0", "assistant 0", "user 1", "assistant 1", "user 2")]
    assert said == sorted(said)  # oldest first
    items = transcript.split("<li ")[1:]
    assert len(items) == 3 * 2 + 2
    first = items[0]
    assert "#1" in first and ">user<" in first.replace("\n", "").replace(" ", "")  # the role, as a badge
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</time>', first)
    run = AgentMessage.objects.get(conversation=conversation, seq=1).run
    assert f'href="/admin/runtime/agentrun/{run.pk}/change/"' in first  # each message links its run
    # a tool call and its result: the call as JSON, the result as escaped text, naming its tool
    assert "get_weather" in items[6] and "&quot;city&quot;: &quot;Paris&quot;" in items[6]
    assert "tool: get_weather" in items[7] and "&lt;b&gt;sunny&lt;/b&gt;" in items[7]
    assert "<b>sunny" not in transcript
    assert "agentrun/" not in items[6]  # a message without a run has no run link


def test_conversation_pager_is_plain_links_and_forgives_a_bad_page_number(root):
    conversation = _conversation_of(25)  # 50 messages: 3 pages
    url = f"/admin/runtime/agentconversation/{conversation.pk}/change/"
    first = root.get(url).content.decode()
    pager = re.search(
        r'<nav class="transcript-pager" aria-label="Pages of messages">(.*?)</nav>', first, re.S
    )
    assert pager and "Page 1 of 3" in pager.group(1)
    # links with an href (they work without JavaScript) that land on the messages
    assert 'href="?messages-page=2#messages">Next<' in pager.group(1)
    assert 'href="?messages-page=3#messages">Last<' in pager.group(1)
    assert "Previous" not in pager.group(1)
    middle = root.get(url, {"messages-page": 2, "_changelist_filters": "q=order"}).content.decode()
    assert "Messages 21–40 of 50" in middle and "user 10" in middle and "user 9<" not in middle
    # other parameters of the page (the changelist's filters) survive paging
    assert "messages-page=1" in middle and "_changelist_filters=q%3Dorder" in middle
    for wrong, shown in (("abc", "Page 1 of 3"), ("99", "Page 3 of 3"), ("-1", "Page 3 of 3")):
        response = root.get(url, {"messages-page": wrong})
        assert response.status_code == 200 and shown in response.content.decode(), wrong


def test_conversation_page_without_messages_says_so(root):
    conversation = AgentConversation.objects.create(agent_key="helper", title="Empty")
    body = root.get(f"/admin/runtime/agentconversation/{conversation.pk}/change/").content.decode()
    assert "No messages yet." in body and "transcript-pager" not in body


def test_run_answer_joins_the_last_attempts_deltas_in_order(root):
    run = _runs(1)[0]
    AgentRun.objects.filter(pk=run.pk).update(attempt=2)
    AgentEvent.objects.bulk_create(
        [
            AgentEvent(run=run, seq=5, event_type="assistant.delta", attempt=2, payload={"delta": "world"}),
            AgentEvent(run=run, seq=1, event_type="assistant.delta", attempt=1, payload={"delta": "Stale "}),
            AgentEvent(run=run, seq=3, event_type="assistant.delta", attempt=2, payload={"delta": "Hello"}),
            AgentEvent(run=run, seq=4, event_type="assistant.delta", attempt=2, payload={"content": ", "}),
        ]
    )
    body = root.get(f"/admin/runtime/agentrun/{run.pk}/change/").content.decode()
    assert "Hello, world" in body and "Stale" not in body


def test_event_and_conversation_lists_are_bounded_and_never_scan_for_filter_choices(root):
    runs = _runs(2)
    AgentEvent.objects.bulk_create(
        AgentEvent(run=runs[i % 2], seq=i, event_type="assistant.delta", payload={"delta": "x"})
        for i in range(60)
    )
    AgentConversation.objects.bulk_create(
        AgentConversation(agent_key="helper", title=f"c{i}") for i in range(60)
    )
    for url in ("/admin/runtime/agentevent/", "/admin/runtime/agentconversation/"):
        root.get(url)
        with CaptureQueriesContext(connection) as ctx:
            body = root.get(url).content.decode()
        # a filter's choices are fixed, not SELECT DISTINCT over every row on each view
        assert not [q for q in ctx.captured_queries if "DISTINCT" in q["sql"]], url
        assert len(set(re.findall(rf"{url}[^/]+/change/", body))) == 25, url
    # the filters still narrow the list
    events = "/admin/runtime/agentevent/"
    assert not re.search(
        r"agentevent/\d+/change/", root.get(events, {"visibility": "debug"}).content.decode()
    )
    typed = root.get(events, {"event_type__icontains": "delta"}).content.decode()
    assert len(set(re.findall(r"agentevent/\d+/change/", typed))) == 25


def test_run_list_counts_at_most_1000_runs_and_says_so(root):
    _runs(3)
    assert re.search(r"\s3\s+agent runs\s", root.get("/admin/runtime/agentrun/").content.decode())
    _runs(1_000)
    body = root.get("/admin/runtime/agentrun/").content.decode()
    # beyond 1,000 the list stops counting (a scan of every visible run on each view) and says so
    assert re.search(r"\s1,000\+\s+agent runs\s", body)
    assert "Select all 1,000+ agent runs" in body
    assert body.count('name="_selected_action"') == 20
    last = root.get("/admin/runtime/agentrun/", {"p": 50}).content.decode()
    assert last.count('name="_selected_action"') == 20  # the first 1,000 runs page as before
    # past them: the admin's own "wrong page" answer (back to the list), never a 500
    assert root.get("/admin/runtime/agentrun/", {"p": 51}).status_code == 302
    # filters narrow the rest, counted exactly again
    narrowed = root.get("/admin/runtime/agentrun/", {"agent_key__icontains": "agent-2"}).content.decode()
    assert re.search(r"\s\d{1,3}\s+agent runs\s", narrowed)
