"""The WSGI event stream (``runs/<id>/events/``) through Django's own handler."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from runtime.events import append_events
from runtime.models import AgentRun
from runtime.services import run_create
from tests.api.conftest import API, say
from tests.api.live import parse_sse

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_run(owner):
    run, _ = run_create(agent_key="echo", messages=say("x"), user=owner)
    with transaction.atomic():
        append_events(
            str(run.pk),
            [
                ("run.started", {}),
                ("assistant.delta", {"delta": "Hel"}),
                ("tool.call", {"name": "lookup"}),
                ("assistant.delta", {"delta": "lo"}),
                ("run.succeeded", {"output": {}}),
            ],
            attempt=1,
            lease_token=None,
        )
        AgentRun.objects.filter(pk=run.pk).update(status="succeeded")
    return run


def frames(client_for, personas, url, **headers):
    response = client_for(personas["owner"]).get(url, **headers)
    assert response.status_code == 200, response
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache"
    parsed = parse_sse(b"".join(response.streaming_content))
    assert parsed.retry == 2000 and parsed.rest == b""
    return [(f.id, f.event, json.loads(f.data)) for f in parsed.frames if f.id is not None]


def test_frames_carry_id_event_and_the_documented_data(client_for, personas, finished_run):
    got = frames(client_for, personas, f"{API}/runs/{finished_run.pk}/events/?include_all=true")
    assert [(seq, kind) for seq, kind, _ in got] == [
        (1, "run.started"),
        (2, "assistant.delta"),
        (3, "tool.call"),
        (4, "assistant.delta"),
        (5, "run.succeeded"),
    ]
    seq, kind, data = got[1]
    assert set(data) == {"run_id", "seq", "type", "payload", "ts", "attempt"}
    assert data == {
        **data,
        "run_id": str(finished_run.pk),
        "seq": 2,
        "type": kind,
        "payload": {"delta": "Hel"},
    }
    assert data["attempt"] == 1


def test_visibility_and_resume_points(client_for, personas, finished_run):
    url = f"{API}/runs/{finished_run.pk}/events/"
    # user events, and the terminal event even though it is internal by default
    assert [s for s, _, _ in frames(client_for, personas, url)] == [2, 4, 5]
    assert [s for s, _, _ in frames(client_for, personas, url + "?include_debug=true")] == [2, 3, 4, 5]
    assert [
        s for s, _, _ in frames(client_for, personas, url + "?include_all=1", HTTP_LAST_EVENT_ID="3")
    ] == [4, 5]
    assert [s for s, _, _ in frames(client_for, personas, url + "?include_all=1&from_seq=3")] == [3, 4, 5]
    # Last-Event-ID wins over from_seq: EventSource keeps its URL and adds the header
    assert [s for s, _, _ in frames(client_for, personas, url + "?from_seq=1", HTTP_LAST_EVENT_ID="4")] == [5]


def test_debug_mode_shows_debug_events(client_for, personas, finished_run, settings):
    settings.DJANGO_AGENT_RUNTIME = {**settings.DJANGO_AGENT_RUNTIME, "DEBUG_MODE": True}
    got = frames(client_for, personas, f"{API}/runs/{finished_run.pk}/events/")
    assert [s for s, _, _ in got] == [2, 3, 4, 5]
