"""The ASGI entry point under a real uvicorn: /api/ runs through the one-hop handler
(runtime/api/asgi.py) with the same behaviour as Django's, and other pages are untouched."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest
from django.db import connection

from runtime.models import AgentRun
from tests.api.conftest import API, say
from tests.api.live import uvicorn_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    with uvicorn_server(settings_dict, tmp_path_factory.mktemp("uvicorn-api")) as running:
        yield running


def test_rest_api_through_the_one_hop_handler(server, owner, owner_token, stranger_token):
    body = {"agent_key": "echo", "messages": say("hello"), "idempotency_key": "k-1"}
    owner_headers = {"Authorization": f"Token {owner_token}"}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        created = client.post(f"{API}/runs/", json=body, headers=owner_headers)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        assert AgentRun.objects.filter(pk=run_id, user=owner).exists()
        again = client.post(f"{API}/runs/", json=body, headers=owner_headers)
        assert (again.status_code, again.json()["id"]) == (200, run_id)

        bad = client.post(f"{API}/runs/", json={"agent_key": "echo", "messages": []}, headers=owner_headers)
        assert bad.status_code == 400 and "messages" in bad.json()["error"]["fields"]
        theirs = client.get(f"{API}/runs/{run_id}/", headers={"Authorization": f"Token {stranger_token}"})
        assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
        assert client.get(f"{API}/runs/").status_code == 401
        # Django's own handler still serves everything outside /api/
        assert client.get("/admin/login/").status_code == 200


def test_concurrent_posts_each_create_one_run(server, owner, owner_token):
    """The pool's threads each hold their own connection; parallel requests do not mix them up."""
    headers = {"Authorization": f"Token {owner_token}"}

    def post(index: int) -> str:
        response = httpx.post(
            f"{server.base_url}{API}/runs/",
            json={"agent_key": "echo", "messages": say(f"m{index}")},
            headers=headers,
            timeout=20,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        ids = list(pool.map(post, range(24)))
    assert len(set(ids)) == 24
    assert AgentRun.objects.filter(pk__in=ids, user=owner).count() == 24
