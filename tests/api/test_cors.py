"""Browsers on the sites named in API_CORS_ALLOWED_ORIGINS may call the API; nothing else opens up."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from runtime.models import AgentRun, RunStatus
from runtime.services import run_create
from tests.api.conftest import API, open_to_visitors, say, visitor_session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allowed_site")]
SITE = "https://shop.example.com"


@pytest.fixture
def allowed_site(db):
    open_to_visitors("echo", origins=[SITE])  # anonymous sessions run agents through their widget
    with override_settings(CORS_ALLOWED_ORIGINS=[SITE]):
        yield


def test_a_widget_on_an_allowed_site_may_start_a_run_with_its_anonymous_token():
    client = APIClient()
    preflight = client.options(
        f"{API}/runs/",
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-anonymous-token",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == SITE
    assert "x-anonymous-token" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight  # tokens, never cookies

    minted = client.post("/api/accounts/anonymous-session/", HTTP_ORIGIN=SITE)
    assert minted.status_code == 201 and minted["Access-Control-Allow-Origin"] == SITE
    created = client.post(
        f"{API}/runs/",
        {"agent_key": "echo", "messages": say("hi from the shop")},
        format="json",
        HTTP_ORIGIN=SITE,
        HTTP_X_ANONYMOUS_TOKEN=minted.json()["token"],
    )
    assert created.status_code == 201 and created["Access-Control-Allow-Origin"] == SITE


def test_the_event_stream_answers_an_allowed_site():
    session = visitor_session(SITE)
    run, _ = run_create(agent_key="echo", messages=say("x"), anonymous_session_id=session.pk)
    AgentRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    response = APIClient().get(
        f"{API}/runs/{run.pk}/events/stream/?anonymous_token={session.token}", HTTP_ORIGIN=SITE
    )
    assert response.status_code == 204  # ended, nothing to send: EventSource stops here
    assert response["Access-Control-Allow-Origin"] == SITE


def test_other_sites_and_other_pages_get_no_cors_headers(owner):
    client = APIClient()
    stranger = client.options(
        f"{API}/runs/", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "Access-Control-Allow-Origin" not in stranger
    client.force_login(owner)
    builder = client.get("/", HTTP_ORIGIN=SITE)
    assert "Access-Control-Allow-Origin" not in builder
    admin = client.get("/admin/", HTTP_ORIGIN=SITE)
    assert "Access-Control-Allow-Origin" not in admin
    # managing an agent (its knowledge bases) is the builder's, same-origin like /api/knowledge/
    for path in ("/api/agents/00000000-0000-0000-0000-000000000001/knowledge/", "/api/knowledge/bases/"):
        managing = client.options(path, HTTP_ORIGIN=SITE, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
        assert "Access-Control-Allow-Origin" not in managing, path


@override_settings(CORS_ALLOWED_ORIGINS=[])
def test_no_site_is_allowed_by_default():
    response = APIClient().options(
        f"{API}/runs/", HTTP_ORIGIN=SITE, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "Access-Control-Allow-Origin" not in response
