"""The event stream takes its token from the URL as the agent-frontend widget sends it (issue 10,
item 17): ``?token=`` or ``?anonymous_token=``, holding an API token or an anonymous session
token, on both routes of a real uvicorn process."""

from __future__ import annotations

import httpx
import pytest
from django.db import connection

from runtime.events import append_events
from runtime.services import run_create
from tests.api.conftest import API, open_to_visitors, say
from tests.api.live import parse_sse, uvicorn_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROUTES = ["events/stream/", "events/"]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    with uvicorn_server(settings_dict, tmp_path_factory.mktemp("uvicorn-query-token")) as running:
        yield running


def finished_run(**caller):
    run, _ = run_create(agent_key="echo", messages=say("hi"), **caller)
    append_events(
        str(run.pk),
        [("assistant.message", {"content": "hello"}), ("run.succeeded", {})],
        attempt=1,
        lease_token=None,
    )
    type(run).objects.filter(pk=run.pk).update(status="succeeded")
    return run


def events(url: str) -> tuple[int, list[str]]:
    response = httpx.get(url, timeout=10)
    if response.status_code != 200:
        return response.status_code, []
    return 200, [frame.event for frame in parse_sse(response.content).frames if frame.event]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("param", ["token", "anonymous_token"])
def test_an_api_token_in_the_url_opens_the_stream(server, owner, owner_token, stranger_token, route, param):
    run = finished_run(user=owner)
    url = f"{server.base_url}{API}/runs/{run.pk}/{route}"
    assert events(f"{url}?{param}={owner_token}") == (200, ["assistant.message", "run.succeeded"])
    assert events(f"{url}?{param}={stranger_token}")[0] == 404  # someone else's run, as if missing
    assert events(f"{url}?{param}=not-a-token")[0] == 401


@pytest.mark.parametrize("route", ROUTES)
def test_an_anonymous_session_token_in_token_opens_the_stream(server, anon_session, route):
    open_to_visitors("echo")  # anonymous sessions run an agent through its web widget
    run = finished_run(anonymous_session_id=anon_session.pk)
    url = f"{server.base_url}{API}/runs/{run.pk}/{route}"
    assert events(f"{url}?token={anon_session.token}") == (200, ["assistant.message", "run.succeeded"])
    assert events(f"{url}?anonymous_token={anon_session.token}")[0] == 200


def test_url_tokens_are_for_the_stream_routes_only(server, owner, owner_token):
    run = finished_run(user=owner)
    assert httpx.get(f"{server.base_url}{API}/runs/{run.pk}/?token={owner_token}").status_code == 401
