"""The knowledge bases of agents and systems over REST (``builder/api.py``): list, attach, change and
detach, as each persona, with bad input named by field and nothing changed. The rules are the
builder's (``builder/services/knowledge.py``, ``builder/access.py``), so the builder's page and the
API see the same attachments."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token

from builder.models import AgentKnowledge, SystemKnowledge
from builder.schema import ConfigError
from builder.services.io import export_agent
from builder.services.knowledge import knowledge_attach, knowledge_link_add
from builder.services.sharing import share_add
from builder.services.systems import system_save
from rag.models import KnowledgeBase
from rag.services import knowledge_base_create
from runtime.channels.api_keys import api_key_create
from tests.builder.conftest import kind_of, make_agent
from tests.builder.test_sharing import client_for, staff

pytestmark = pytest.mark.django_db
JSON = "application/json"
DROP = object()  # a key left out of the request


def links_of(target):
    model = AgentKnowledge if kind_of(target) == "agent" else SystemKnowledge
    return model.objects.filter(**{kind_of(target): target})


def settings_of(target) -> list[tuple]:
    return list(links_of(target).values_list("knowledge_base__name", "mode", "top_k", "score_threshold"))


def url(target, base=None) -> str:
    kind = kind_of(target)
    if base is None:
        return reverse(f"builder-api:{kind}-knowledge", args=[target.public_id])
    base_id = base if isinstance(base, str | uuid.UUID) else base.public_id
    return reverse(f"builder-api:{kind}-knowledge-base", args=[target.public_id, base_id])


def attach(client, target, base, **settings):
    return client.post(url(target), {"knowledge_base": str(base.public_id), **settings}, content_type=JSON)


def fields(response) -> dict[str, list[str]]:
    return response.json()["error"]["fields"]


def test_attach_list_change_and_detach(owner, target, base):
    client = client_for(owner)
    created = attach(client, target, base, mode="tool", top_k=6, score_threshold=0.2)
    assert created.status_code == 201
    body = created.json()
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "knowledge_base": str(base.public_id),
        "name": "Handbook",
        "mode": "tool",
        "top_k": 6,
        "score_threshold": 0.2,
    }
    assert settings_of(target) == [("Handbook", "tool", 6, 0.2)]
    assert client.get(url(target)).json() == [body]
    assert client.get(url(target, base)).json() == body

    changed = client.patch(url(target, base), {"top_k": 8}, content_type=JSON)
    assert changed.status_code == 200 and changed.json()["top_k"] == 8
    assert settings_of(target) == [("Handbook", "tool", 8, 0.2)]  # the rest kept
    both = client.patch(url(target, base), {"mode": "both", "score_threshold": 0}, content_type=JSON)
    assert both.json()["mode"] == "both" and settings_of(target) == [("Handbook", "both", 8, 0.0)]

    assert client.delete(url(target, base)).status_code == 204
    assert settings_of(target) == [] and KnowledgeBase.objects.filter(pk=base.pk).exists()
    assert client.get(url(target, base)).status_code == 404
    assert client.get(url(target)).json() == []


def test_defaults_and_other_attachments_untouched(owner, target, base):
    client = client_for(owner)
    other = knowledge_base_create(owner=owner, name="Policies")
    assert attach(client, target, other, mode="tool", top_k=2).status_code == 201
    assert attach(client, target, base).status_code == 201
    # one attachment at a time: attaching a second base left the first as it was
    assert sorted(settings_of(target)) == [("Handbook", "auto", 4, 0.0), ("Policies", "tool", 2, 0.0)]
    assert [row["name"] for row in client.get(url(target)).json()] == ["Handbook", "Policies"]


def test_the_builder_page_and_the_api_see_the_same_attachments(owner, target, base):
    """The API and the builder's Knowledge page write the same rows through the same service."""
    client = client_for(owner)
    kind = kind_of(target)
    attach(client, target, base, mode="both", top_k=7, score_threshold=0.3)
    page = client.get(reverse(f"builder:{kind}-knowledge", args=[target.public_id])).content.decode()
    assert f'value="{base.pk}"' in page and "checked" in page and 'value="7"' in page
    other = knowledge_base_create(owner=owner, name="Policies")
    knowledge_attach(target=target, user=owner, knowledge_bases=[other], mode="tool", top_k=3)
    assert [(row["name"], row["mode"], row["top_k"]) for row in client.get(url(target)).json()] == [
        ("Policies", "tool", 3)
    ]


def test_export_treats_an_api_attach_like_the_builders(owner, base):
    """Both paths write the same attachment, so the export file (which lists it by reference) is
    the same whichever made it. (Both are audited: tests/builder/test_knowledge_audit.py.)"""
    agent = make_agent(owner)
    client = client_for(owner)
    attach(client, agent, base, mode="tool", top_k=6)
    by_api = export_agent(agent=agent, user=owner)
    client.delete(url(agent, base))
    assert export_agent(agent=agent, user=owner) != by_api
    knowledge_attach(target=agent, user=owner, knowledge_bases=[base], mode="tool", top_k=6)
    assert export_agent(agent=agent, user=owner) == by_api
    assert f"id: {base.public_id}" in by_api


# -- bad input: a 400 naming the field, nothing written -----------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"knowledge_base": DROP}, "knowledge_base", "This field is required."),
        ({"knowledge_base": None}, "knowledge_base", "This field may not be null."),
        ({"knowledge_base": "handbook"}, "knowledge_base", "Must be a valid UUID."),
        ({"knowledge_base": str(uuid.UUID(int=7))}, "knowledge_base", "that you can see"),
        ({"top_k": 0}, "top_k", "Passages per question must be a whole number from 1 to 20."),
        ({"top_k": 21}, "top_k", "Passages per question must be a whole number from 1 to 20."),
        ({"top_k": 10**30}, "top_k", "Passages per question must be a whole number from 1 to 20."),
        ({"top_k": 4.5}, "top_k", "A valid integer is required."),
        ({"top_k": "many"}, "top_k", "A valid integer is required."),
        ({"top_k": None}, "top_k", "This field may not be null."),
        ({"score_threshold": 1.5}, "score_threshold", "The minimum similarity must be between 0"),
        ({"score_threshold": -0.1}, "score_threshold", "The minimum similarity must be between 0"),
        ({"score_threshold": "high"}, "score_threshold", "A valid number is required."),
        ({"mode": "sometimes"}, "mode", '"sometimes" is not a valid choice.'),
    ],
)
def test_bad_attach_names_the_field_and_writes_nothing(owner, target, base, body, field, message):
    request = {k: v for k, v in {"knowledge_base": str(base.public_id), **body}.items() if v is not DROP}
    response = client_for(owner).post(url(target), request, content_type=JSON)
    assert response.status_code == 400, response.content
    assert message in fields(response)[field][0]
    assert response.json()["error"]["message"].startswith(f"{field}: ")
    assert settings_of(target) == []


def test_malformed_json_is_a_400_not_a_500(owner, target):
    response = client_for(owner).post(url(target), "{not json", content_type=JSON)
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"
    nul = client_for(owner).post(url(target), {"knowledge_base": "a\x00b"}, content_type=JSON)
    assert nul.status_code == 400 and "knowledge_base" in fields(nul)


def test_someone_elses_base_is_refused_like_an_unknown_one(owner, other_staff, target):
    theirs = knowledge_base_create(owner=other_staff, name="Secret plans")
    response = attach(client_for(owner), target, theirs)
    assert response.status_code == 400
    assert fields(response)["knowledge_base"] == [
        f"There is no knowledge base with the id {theirs.public_id} that you can see; "
        "ask its owner to share it with you."
    ]
    assert "Secret plans" not in response.content.decode()
    assert settings_of(target) == []


def test_attaching_a_base_twice_is_a_400_and_keeps_the_first(owner, target, base):
    client = client_for(owner)
    attach(client, target, base, top_k=6)
    again = attach(client, target, base, top_k=9)
    assert again.status_code == 400
    assert "'Handbook' is already attached" in fields(again)["knowledge_base"][0]
    assert settings_of(target) == [("Handbook", "auto", 6, 0.0)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "tool", "top_k": 0}, "top_k"),
        ({"mode": "tool", "score_threshold": 2}, "score_threshold"),
        ({"top_k": 5, "mode": "never"}, "mode"),
        ({"top_k": 5, "score_threshold": None}, "score_threshold"),
    ],
)
def test_a_bad_change_names_the_field_and_changes_nothing(owner, target, base, body, field):
    client = client_for(owner)
    attach(client, target, base, top_k=6)
    response = client.patch(url(target, base), body, content_type=JSON)
    assert response.status_code == 400 and field in fields(response)
    assert settings_of(target) == [("Handbook", "auto", 6, 0.0)]


def test_the_base_of_an_attachment_cannot_be_changed(owner, target, base):
    client = client_for(owner)
    attach(client, target, base)
    other = knowledge_base_create(owner=owner, name="Policies")
    response = client.patch(url(target, base), {"knowledge_base": str(other.public_id)}, content_type=JSON)
    assert response.status_code == 200 and response.json()["knowledge_base"] == str(base.public_id)
    assert settings_of(target) == [("Handbook", "auto", 4, 0.0)]


def test_unattached_or_unknown_base_in_the_address_is_a_404(owner, target, base):
    client = client_for(owner)
    for address in (url(target, base), url(target, uuid.UUID(int=9))):
        assert client.get(address).status_code == 404
        assert client.patch(address, {"top_k": 5}, content_type=JSON).status_code == 404
        assert client.delete(address).status_code == 404
    assert client.get(f"{url(target)}not-a-uuid/").status_code == 404


# -- who may do what ------------------------------------------------------------------------------


def test_a_stranger_sees_nothing_and_changes_nothing(owner, other_staff, target, base):
    attach(client_for(owner), target, base)
    client = client_for(other_staff)
    mine = knowledge_base_create(owner=other_staff, name="Mine")
    for response in (
        client.get(url(target)),
        attach(client, target, mine),
        client.get(url(target, base)),
        client.patch(url(target, base), {"top_k": 9}, content_type=JSON),
        client.delete(url(target, base)),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert settings_of(target) == [("Handbook", "auto", 4, 0.0)]


def test_a_viewer_lists_but_may_not_change(owner, target, base):
    attach(client_for(owner), target, base)
    viewer = staff("vi")
    share_add(obj=target, actor=owner, role="viewer", user=viewer)
    share_add(obj=base, actor=owner, role="viewer", user=viewer)
    client = client_for(viewer)
    assert [row["name"] for row in client.get(url(target)).json()] == ["Handbook"]
    assert client.get(url(target, base)).status_code == 200
    mine = knowledge_base_create(owner=viewer, name="Mine")
    for response in (
        attach(client, target, mine),
        client.patch(url(target, base), {"top_k": 9}, content_type=JSON),
        client.delete(url(target, base)),
    ):
        assert response.status_code == 403
        message = response.json()["error"]["message"]
        assert "only editors and owners may change it" in message and "Nothing was changed." in message
    assert settings_of(target) == [("Handbook", "auto", 4, 0.0)]


def test_the_list_says_how_many_attached_bases_the_caller_cannot_see(owner, target, base):
    """As the builder's Knowledge page does: an editor knows the agent uses more than they see."""
    attach(client_for(owner), target, base)  # the owner's, not shared with the editor
    editor = staff("ed")
    share_add(obj=target, actor=owner, role="editor", user=editor)
    client = client_for(editor)
    mine = knowledge_base_create(owner=editor, name="Mine")
    attach(client, target, mine)

    response = client.get(url(target))
    assert [row["name"] for row in response.json()] == ["Mine"]
    assert response["X-Hidden-Knowledge-Bases"] == "1"
    response = client_for(owner).get(url(target))  # the editor's base is not shared with the owner
    assert [row["name"] for row in response.json()] == ["Handbook"]
    assert response["X-Hidden-Knowledge-Bases"] == "1"
    share_add(obj=mine, actor=editor, role="viewer", user=owner)
    response = client_for(owner).get(url(target))
    assert [row["name"] for row in response.json()] == ["Handbook", "Mine"]
    assert response["X-Hidden-Knowledge-Bases"] == "0"


def test_an_editor_attaches_only_bases_they_can_see_and_leaves_the_others_alone(owner, target, base):
    attach(client_for(owner), target, base)  # the owner's, not shared with the editor
    editor = staff("ed")
    share_add(obj=target, actor=owner, role="editor", user=editor)
    client = client_for(editor)
    assert client.get(url(target)).json() == []
    for response in (
        client.get(url(target, base)),
        client.patch(url(target, base), {"top_k": 9}, content_type=JSON),
        client.delete(url(target, base)),
    ):
        assert response.status_code == 404
    assert attach(client, target, base).status_code == 400  # cannot see it: not theirs to attach

    mine = knowledge_base_create(owner=editor, name="Mine")
    assert attach(client, target, mine, mode="tool").status_code == 201
    assert sorted(settings_of(target)) == [("Handbook", "auto", 4, 0.0), ("Mine", "tool", 4, 0.0)]

    # a viewer of a base may use it: now the editor sees it, changes it, detaches it
    share_add(obj=base, actor=owner, role="viewer", user=editor)
    assert client.patch(url(target, base), {"top_k": 9}, content_type=JSON).status_code == 200
    assert client.delete(url(target, base)).status_code == 204
    assert settings_of(target) == [("Mine", "tool", 4, 0.0)]


def test_a_system_editor_may_attach_to_its_member_agents(owner, base):
    agent = make_agent(owner)
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=agent, members={})
    editor = staff("ed")
    share_add(obj=system, actor=owner, role="editor", user=editor)
    share_add(obj=base, actor=owner, role="viewer", user=editor)
    assert attach(client_for(editor), agent, base).status_code == 201
    assert settings_of(agent) == [("Handbook", "auto", 4, 0.0)]


def test_non_staff_and_anonymous_are_refused(owner, stranger, target, base):
    attach(client_for(owner), target, base)
    assert client_for(stranger).get(url(target)).status_code == 403
    assert attach(client_for(stranger), target, base).status_code == 403
    anonymous = Client()
    assert anonymous.get(url(target)).status_code == 401
    assert anonymous.delete(url(target, base)).status_code == 401
    assert settings_of(target) == [("Handbook", "auto", 4, 0.0)]


def test_a_token_works_an_agent_api_key_does_not(owner, base):
    agent = make_agent(owner)
    token = Token.objects.create(user=owner).key
    client = Client()
    by_token = client.post(
        url(agent),
        {"knowledge_base": str(base.public_id)},
        content_type=JSON,
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert by_token.status_code == 201
    _key, secret = api_key_create(name="shop", agent_keys=[agent.slug], user=owner)
    by_key = client.get(url(agent), HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert by_key.status_code == 401  # an agent's API key runs it; it does not manage it


def test_a_session_write_needs_its_csrf_token(owner, target, base):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = attach(client, target, base)
    assert response.status_code == 403 and "CSRF" in response.json()["error"]["message"]
    assert settings_of(target) == []


def test_the_list_costs_the_same_queries_however_many_bases_are_attached(owner, target):
    editor = staff("ed")
    share_add(obj=target, actor=owner, role="editor", user=editor)
    client = client_for(editor)

    def queries_for_list() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url(target))
        return len(queries), len(response.json())

    def add_bases(count: int) -> None:
        for n in range(count):
            shared = knowledge_base_create(owner=owner, name=f"Base {len(settings_of(target))} {n}")
            share_add(obj=shared, actor=owner, role="viewer", user=editor)
            knowledge_link_add(target=target, user=owner, knowledge_base=shared)

    add_bases(1)
    few, listed = queries_for_list()
    assert listed == 1
    add_bases(6)
    many, listed = queries_for_list()
    assert listed == 7 and many == few


# -- the service under a race, and the schema ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_requests_attaching_the_same_base_at_once_make_one_attachment(owner):
    agent = make_agent(owner)
    base = knowledge_base_create(owner=owner, name="Handbook")
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with transaction.atomic():
            knowledge_link_add(target=agent, user=owner, knowledge_base=base)
            holding.set()
            release.wait(10)
        connection.close()

    outcome: list[object] = []

    def second() -> None:
        try:
            outcome.append(knowledge_link_add(target=agent, user=owner, knowledge_base=base))
        except ConfigError as exc:
            outcome.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=first)
    holder.start()
    assert holding.wait(10)
    contender = threading.Thread(target=second)
    contender.start()
    contender.join(0.5)  # it saw no attachment yet, and its insert waits on the first's
    release.set()
    holder.join(10)
    contender.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], ConfigError)
    assert "already attached" in outcome[0].errors["knowledge_base"]
    assert AgentKnowledge.objects.count() == 1


def test_the_schema_documents_the_routes_and_validates_without_warnings(tmp_path, client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    for kind in ("agents", "systems"):
        assert set(paths[f"/api/{kind}/{{public_id}}/knowledge/"]) == {"get", "post"}
        assert set(paths[f"/api/{kind}/{{public_id}}/knowledge/{{base_id}}/"]) == {"get", "patch", "delete"}
    # the same check as `manage.py spectacular --validate --fail-on-warn`, for the whole schema
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
