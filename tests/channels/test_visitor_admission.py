"""Anonymous sessions run agents only through the agent's web widget, within its limits, at every
entry point (issue 14, item 6; runtime/channels/admission.py).

Before this rule, anyone could mint a general anonymous session (the agent-frontend widget's path)
and run any published agent on the general run API with no per-visitor cap, no Origin check and
no budget. Now the session must have been minted on one of the widget's allowed origins, and the
widget's limits (messages per visitor per minute and per day, the agent's daily budget) apply
exactly as for our own widget, whether the run starts at ``/api/agents/runs/``,
``/api/agent-runtime/runs/``, a retry, or ``/api/widget/messages/``.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from builder.services import agent_create, agent_publish
from runtime.channels.api_key_models import AgentBudget, SpendReservation
from runtime.channels.models import WidgetChannel
from runtime.channels.services import widget_channel_create, widget_channel_set_enabled
from runtime.models import AgentRun, RunStatus

pytestmark = pytest.mark.django_db
SITE = "https://shop.example.com"
ELSEWHERE = "https://copycat.example.net"
ROUTES = ["/api/agents/runs/", "/api/agent-runtime/runs/"]


@pytest.fixture
def published(owner):
    agent = agent_create(owner=owner, slug="shop-help", name="Shop help", config={"system_prompt": "Help."})
    agent_publish(agent=agent, user=owner)
    return agent


@pytest.fixture
def channel(published, owner) -> WidgetChannel:
    return widget_channel_create(agent_key="shop-help", user=owner, allowed_origins=[SITE])


def general_session(origin: str | None = SITE) -> APIClient:
    """What the agent-frontend widget does: mint at /api/accounts/anonymous-session/ from a page."""
    client = APIClient()
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    minted = client.post("/api/accounts/anonymous-session/", **headers)
    assert minted.status_code == 201
    client.credentials(HTTP_X_ANONYMOUS_TOKEN=minted.json()["token"], **headers)
    return client


def start(client: APIClient, route: str = ROUTES[0], text: str = "hi", **extra):
    body = {"agent_key": "shop-help", "messages": [{"role": "user", "content": text}], **extra}
    return client.post(route, body, format="json")


def code_of(response) -> str:
    error = response.json()["error"]
    return error["code"] if isinstance(error, dict) else response.json()["code"]  # agent-frontend's flat body


@pytest.mark.parametrize("route", ROUTES)
def test_a_published_agent_without_a_widget_is_closed_to_anonymous_sessions(published, route):
    response = start(general_session(), route)
    assert response.status_code == 403 and code_of(response) == "no_widget_channel"
    assert not AgentRun.objects.exists()


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("origin", [ELSEWHERE, None])
def test_a_session_minted_on_an_unlisted_page_or_without_origin_is_refused(channel, route, origin):
    response = start(general_session(origin), route)
    assert response.status_code == 403 and code_of(response) == "origin_not_allowed"
    assert not AgentRun.objects.exists()


@pytest.mark.parametrize("route", ROUTES)
def test_a_session_minted_on_a_listed_page_runs_the_agent_and_counts_against_the_widget(channel, route):
    response = start(general_session(), route)
    assert response.status_code == 201, response.json()
    run = AgentRun.objects.get()
    assert run.metadata["widget_channel"] == str(channel.pk)


def test_the_origin_the_caller_sends_later_does_not_matter_only_the_one_recorded_at_mint(channel):
    client = general_session(ELSEWHERE)
    body = {"agent_key": "shop-help", "messages": [{"role": "user", "content": "hi"}]}
    response = client.post(ROUTES[0], body, format="json", HTTP_ORIGIN=SITE)
    assert response.status_code == 403 and code_of(response) == "origin_not_allowed"


def test_a_disabled_widget_stops_the_general_path_too(channel, owner):
    client = general_session()
    widget_channel_set_enabled(channel=channel, user=owner, enabled=False)
    response = start(client)
    assert response.status_code == 403 and code_of(response) == "channel_disabled"


@pytest.mark.parametrize("route", ROUTES)
def test_the_daily_cap_per_visitor_applies_on_the_general_path(channel, route):
    WidgetChannel.objects.update(messages_per_visitor_per_day=2)
    client = general_session()
    sent = [start(client, route, f"question {n}") for n in range(3)]
    assert [r.status_code for r in sent] == [201, 201, 429]
    assert code_of(sent[2]) == "daily_limit" and int(sent[2]["Retry-After"]) > 0
    assert AgentRun.objects.count() == 2
    # another visitor has their own allowance
    assert start(general_session(), route).status_code == 201


def test_messages_per_minute_per_visitor_is_a_429_with_retry_after_on_every_path(channel):
    WidgetChannel.objects.update(requests_per_minute_per_visitor=2)
    client = general_session()
    assert [start(client, route).status_code for route in ROUTES] == [201, 201]
    refused = start(client)
    assert refused.status_code == 429 and code_of(refused) == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 61
    # our widget's visitors meet the same limit
    minted = APIClient().post(
        "/api/widget/session/", {"key": channel.publishable_key}, format="json", HTTP_ORIGIN=SITE
    )
    visitor = APIClient()
    visitor.credentials(HTTP_X_ANONYMOUS_TOKEN=minted.json()["token"], HTTP_ORIGIN=SITE)
    widget = [visitor.post("/api/widget/messages/", {"message": "hi"}, format="json") for _ in range(3)]
    assert [r.status_code for r in widget] == [201, 201, 429]
    assert widget[2].json()["error"]["code"] == "rate_limited" and int(widget[2]["Retry-After"]) >= 1
    assert AgentRun.objects.count() == 4


def test_a_retry_counts_like_a_new_message(channel):
    WidgetChannel.objects.update(messages_per_visitor_per_day=1)
    client = general_session()
    run_id = start(client).json()["id"]
    AgentRun.objects.filter(pk=run_id).update(status=RunStatus.FAILED)
    retried = client.post(f"/api/agents/runs/{run_id}/retry/")
    assert retried.status_code == 429 and code_of(retried) == "daily_limit"


def test_the_agents_daily_budget_applies_on_the_general_path(channel, settings):
    settings.AGENT_BUDGET_MIN_RESERVE_USD = "0.01"
    AgentBudget.objects.create(agent_key="shop-help", daily_budget_usd=Decimal("0.02"))
    client = general_session()
    sent = [start(client, text=f"q{n}") for n in range(3)]
    assert [r.status_code for r in sent] == [201, 201, 429]
    assert code_of(sent[2]) == "budget_exhausted" and int(sent[2]["Retry-After"]) > 0
    assert AgentRun.objects.count() == SpendReservation.objects.count() == 2


def test_the_callers_metadata_cannot_name_another_widget_or_lift_the_caps(channel):
    WidgetChannel.objects.update(max_steps_per_run=2)
    response = start(
        general_session(),
        metadata={"widget_channel": "00000000-0000-0000-0000-000000000000", "run_caps": {"steps": 50}},
    )
    assert response.status_code == 201
    run = AgentRun.objects.get()
    assert run.metadata["widget_channel"] == str(channel.pk) and run.metadata["run_caps"] == {"steps": 2}


def test_an_idempotency_key_sent_again_costs_nothing_more(channel):
    WidgetChannel.objects.update(messages_per_visitor_per_day=1)
    client = general_session()
    first = start(client, idempotency_key="k-1")
    again = start(client, idempotency_key="k-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and AgentRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_messages_of_one_visitor_never_pass_the_daily_cap(channel):
    WidgetChannel.objects.update(messages_per_visitor_per_day=3, requests_per_minute_per_visitor=100)
    client = general_session()
    token = client._credentials["HTTP_X_ANONYMOUS_TOKEN"]
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def send(n: int) -> None:
        try:
            mine = APIClient()
            mine.credentials(HTTP_X_ANONYMOUS_TOKEN=token, HTTP_ORIGIN=SITE)
            barrier.wait(10)
            statuses.append(start(mine, text=f"at once {n}").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [201] * 3 + [429] * 5
    assert AgentRun.objects.count() == 3
