"""The authorization matrix: every builder route x persona x method, generated from the URL resolver.

``ROUTES`` is the one table: for each route name and method, the access it needs. The outcome each
persona gets follows from it (``expected``): "ok" (the request is served: 2xx, a redirect elsewhere,
or a 409/410/422 about its input), "login" (sent to sign in), "403" (seen but refused, with a
reason), "404" (not seen at all). A route added to ``builder/urls.py`` with no row here fails
``test_every_route_has_a_row``.

``API_ROUTES`` does the same for the knowledge REST API (``/api/knowledge/``), whose roles come
from the same place through ``rag.access``, and ``BUILDER_API_ROUTES`` for the builder's REST
routes (``builder/api_urls.py``: the knowledge bases of agents and systems).

Personas, and their role on every shared object (agent, system, tool, knowledge base):
anonymous, non_staff (signed in, not staff), owner (creator), editor (direct share), viewer
(direct share), team_member (editor through a team), stranger (other staff), superuser.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from builder.models import Invitation
from builder.services import agent_publish
from builder.services.invitations import invitation_token
from builder.services.memory import memory_add
from builder.services.playground import playground_send
from builder.services.sharing import share_add
from builder.services.systems import system_publish, system_save
from rag.models import KnowledgeBase
from rag.services import document_upload, knowledge_base_create
from runtime.channels.api_keys import api_key_create
from runtime.channels.services import widget_channel_create
from tests.builder.conftest import make_agent
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db

VIEW, EDIT, OWN = "view", "edit", "own"  # a role on the route's object: viewer, editor, owner
STAFF, PUBLIC, RUN, SPECIAL = "staff", "public", "run-owner", "special-permission"

ROUTES: dict[str, dict[str, str]] = {
    "agent-list": {"GET": STAFF},
    "agent-create": {"GET": STAFF, "POST": STAFF},
    "agent-search": {"GET": STAFF},
    "agent-edit": {"GET": VIEW, "POST": EDIT},
    "agent-duplicate": {"GET": VIEW, "POST": VIEW},
    "agent-delete": {"GET": OWN, "POST": OWN},
    "agent-publish": {"POST": OWN},
    "agent-versions": {"GET": VIEW},
    "agent-diff": {"GET": VIEW},
    "agent-restore": {"POST": EDIT},
    "agent-export": {"GET": VIEW},
    "agent-memory": {"GET": EDIT, "POST": EDIT},
    "agent-memory-entry": {"POST": EDIT},
    "agent-knowledge": {"GET": VIEW, "POST": EDIT},
    "agent-playground-send": {"POST": VIEW},
    "agent-sharing": {"GET": VIEW, "POST": OWN},
    "agent-sharing-change": {"POST": OWN},
    "agent-sharing-invite": {"POST": OWN},
    "tool-list": {"GET": STAFF},
    "tool-create": {"GET": STAFF, "POST": STAFF},
    "tool-from-curl": {"GET": STAFF, "POST": STAFF},
    "tool-import-openapi": {"GET": STAFF, "POST": STAFF},
    "tool-edit": {"GET": VIEW, "POST": EDIT},
    "tool-try": {"POST": VIEW},
    "tool-delete": {"GET": OWN, "POST": OWN},
    "tool-sharing": {"GET": VIEW, "POST": OWN},
    "tool-sharing-change": {"POST": OWN},
    "tool-sharing-invite": {"POST": OWN},
    "system-list": {"GET": STAFF},
    "system-create": {"GET": STAFF, "POST": STAFF},
    "system-edit": {"GET": VIEW, "POST": EDIT},
    "system-publish": {"POST": OWN},
    "system-delete": {"GET": OWN, "POST": OWN},
    "system-export": {"GET": VIEW},
    "system-knowledge": {"GET": VIEW, "POST": EDIT},
    "system-memory": {"GET": EDIT, "POST": EDIT},
    "system-memory-entry": {"POST": EDIT},
    "system-playground-send": {"POST": VIEW},
    "system-sharing": {"GET": VIEW, "POST": OWN},
    "system-sharing-change": {"POST": OWN},
    "system-sharing-invite": {"POST": OWN},
    "import": {"GET": STAFF, "POST": STAFF},
    "provider-settings": {"GET": SPECIAL, "POST": SPECIAL},
    "model-price": {"POST": SPECIAL},
    "model-price-remove": {"POST": SPECIAL},
    "playground-turn": {"GET": RUN},
    "playground-cancel": {"POST": RUN},
    "knowledge-list": {"GET": STAFF},
    "knowledge-create": {"GET": STAFF, "POST": STAFF},
    "knowledge-detail": {"GET": VIEW},
    "knowledge-upload": {"POST": EDIT},
    "knowledge-settings": {"GET": EDIT, "POST": EDIT},
    "knowledge-delete": {"POST": OWN},
    "knowledge-search": {"GET": VIEW},
    "document-retry": {"POST": EDIT},
    "document-cancel": {"POST": EDIT},
    "document-delete": {"POST": EDIT},
    "knowledge-passage": {"GET": VIEW},
    "knowledge-sharing": {"GET": VIEW, "POST": OWN},
    "knowledge-sharing-change": {"POST": OWN},
    "knowledge-sharing-invite": {"POST": OWN},
    "agent-publish-page": {"GET": VIEW},
    "widget-create": {"POST": OWN},
    "widget-settings": {"POST": OWN},
    "widget-enabled": {"POST": OWN},
    "widget-rotate": {"POST": OWN},
    "widget-identity-rotate": {"POST": OWN},
    "widget-preview": {"GET": VIEW},
    "system-publish-page": {"GET": VIEW},
    "system-widget-create": {"POST": OWN},
    "system-widget-settings": {"POST": OWN},
    "system-widget-enabled": {"POST": OWN},
    "system-widget-rotate": {"POST": OWN},
    "system-widget-identity-rotate": {"POST": OWN},
    "system-widget-preview": {"GET": VIEW},
    "agent-api-keys": {"GET": OWN, "POST": OWN},
    "agent-api-budget": {"POST": OWN},
    "agent-api-caps": {"POST": OWN},
    "agent-api-key-limit": {"POST": OWN},
    "agent-api-key-revoke": {"GET": OWN, "POST": OWN},
    "system-api-keys": {"GET": OWN, "POST": OWN},
    "system-api-budget": {"POST": OWN},
    "system-api-caps": {"POST": OWN},
    "system-api-key-limit": {"POST": OWN},
    "system-api-key-revoke": {"GET": OWN, "POST": OWN},
    "agent-conversations": {"GET": EDIT},
    "agent-conversation": {"GET": EDIT},
    "agent-usage": {"GET": EDIT},
    "system-conversations": {"GET": EDIT},
    "system-conversation": {"GET": EDIT},
    "system-usage": {"GET": EDIT},
    "people-search": {"GET": STAFF},
    "teams": {"GET": SPECIAL, "POST": SPECIAL},
    "invitation-accept": {"GET": PUBLIC, "POST": PUBLIC},
}

PERSONAS = ["anonymous", "non_staff", "owner", "editor", "viewer", "team_member", "stranger", "superuser"]
RANK = {"owner": 3, "editor": 2, "team_member": 2, "viewer": 1, "stranger": 0}
NEEDED = {VIEW: 1, EDIT: 2, OWN: 3}


def expected(level: str, persona: str) -> str:
    if level == PUBLIC:
        return "ok"
    if persona in ("anonymous", "non_staff"):
        return "login"
    if level == RUN:  # one's own playground runs only, superusers included
        return "ok" if persona == "owner" else "404"
    if persona == "superuser" or level == STAFF:
        return "ok"
    if level == SPECIAL:  # manage_teams / manage_providers, which no staff persona holds
        return "403"
    rank = RANK[persona]
    if rank == 0:
        return "404"
    return "ok" if rank >= NEEDED[level] else "403"


def builder_routes() -> dict[str, URLPattern]:
    def walk(patterns, namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, p.namespace or namespace)
            elif namespace == "builder":
                yield p

    return {p.name: p for p in walk(get_resolver().url_patterns)}


def test_every_route_has_a_row():
    routes = set(builder_routes())
    assert routes - set(ROUTES) == set(), "new builder routes need a row in ROUTES"
    assert set(ROUTES) - routes == set(), "ROUTES names routes that no longer exist"


@pytest.fixture
def world(owner):
    User = get_user_model()
    users = {
        "owner": owner,
        "editor": User.objects.create_user("ed", "ed@example.com", "x", is_staff=True),
        "viewer": User.objects.create_user("vi", "vi@example.com", "x", is_staff=True),
        "team_member": User.objects.create_user("tm", "tm@example.com", "x", is_staff=True),
        "stranger": User.objects.create_user("st", "st@example.com", "x", is_staff=True),
        "superuser": User.objects.create_superuser("su", "su@example.com", "x"),
        "non_staff": User.objects.create_user("ns", "ns@example.com", "x"),
    }
    team = Group.objects.create(name="Support")
    users["team_member"].groups.add(team)
    agent = make_agent(owner)
    agent_publish(agent=agent, user=owner)
    system = system_save(owner=owner, slug="team-sys", name="Team", entry_agent=agent, members={})
    from builder.models import ToolDefinition

    tool = ToolDefinition.objects.create(
        owner=owner,
        name="weather",
        description="Weather",
        spec={"method": "GET", "url": "https://example.com/"},
    )
    base = knowledge_base_create(owner=owner, name="Handbook")
    document = ingest(
        document_upload(
            knowledge_base=base, upload=SimpleUploadedFile("a.txt", b"Refunds take five days."), user=owner
        )
    )
    for obj in (agent, system, tool, base):
        share_add(obj=obj, actor=owner, role="editor", user=users["editor"])
        share_add(obj=obj, actor=owner, role="viewer", user=users["viewer"])
        share_add(obj=obj, actor=owner, role="editor", group=team)
    agent_entry = memory_add(
        user=owner, key="k", value_text="v", scope="system", agent_key=agent.slug, system_key=agent.slug
    )
    system_entry = memory_add(user=owner, key="s", value_text="v", scope="system", system_key=system.slug)
    run = playground_send(user=owner, text="hi", agent=agent)
    system_run = playground_send(user=owner, text="hi", system=system)
    system_publish(system=system, user=owner)
    for key in (agent.slug, system.slug):  # the Publish pages' routes act on an existing widget
        widget_channel_create(agent_key=key, user=owner)
    agent_key_row, _ = api_key_create(name="shop", agent_keys=[agent.slug], user=owner)
    system_key_row, _ = api_key_create(name="shop", agent_keys=[system.slug], user=owner)
    invitation = Invitation.objects.create(
        email="new@example.com",
        role="viewer",
        target_kind="agent",
        target_id=agent.public_id,
        invited_by=owner,
        expires_at=agent.created_at.replace(year=agent.created_at.year + 1),
    )
    return {
        "users": users,
        "kwargs": {
            "agent": {"public_id": agent.public_id},
            "tool": {"public_id": tool.public_id},
            "system": {"public_id": system.public_id},
            "knowledge": {"public_id": base.public_id},
            "document": {"public_id": base.public_id, "document_id": document.public_id},
            "passage": {"public_id": base.public_id, "document_id": document.public_id, "ordinal": 0},
            "agent-entry": {"public_id": agent.public_id, "entry_id": agent_entry.pk},
            "system-entry": {"public_id": system.public_id, "entry_id": system_entry.pk},
            "run": {"run_id": run.pk},
            "agent-conversation": {"public_id": agent.public_id, "conversation_id": run.conversation_id},
            "system-conversation": {
                "public_id": system.public_id,
                "conversation_id": system_run.conversation_id,
            },
            "version": {"public_id": agent.public_id, "number": 1},
            "token": {"token": invitation_token(invitation)},
            "agent-key": {"public_id": agent.public_id, "key_id": agent_key_row.pk},
            "system-key": {"public_id": system.public_id, "key_id": system_key_row.pk},
        },
    }


def url_for(name: str, pattern: URLPattern, kwargs: dict) -> str:
    params = set(pattern.pattern.converters)
    if not params:
        return reverse(f"builder:{name}")
    if "token" in params:
        key = "token"
    elif "run_id" in params:
        key = "run"
    elif "conversation_id" in params:
        key = "agent-conversation" if name.startswith("agent") else "system-conversation"
    elif "ordinal" in params:
        key = "passage"
    elif "document_id" in params:
        key = "document"
    elif "entry_id" in params:
        key = "agent-entry" if name.startswith("agent") else "system-entry"
    elif "key_id" in params:
        key = "agent-key" if name.startswith("agent") else "system-key"
    elif "number" in params:
        key = "version"
    else:
        key = (
            "agent"
            if name.startswith("widget")
            else next(k for k in ("agent", "tool", "system", "knowledge") if name.startswith(k))
        )
    return reverse(f"builder:{name}", kwargs=kwargs[key])


def outcome(response) -> str:
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    if response.status_code == 302 and response["Location"].startswith("/admin/login/"):
        return "login"
    if response.status_code in (403, 404):
        return str(response.status_code)
    return "ok"


CASES = [(name, method) for name, methods in sorted(ROUTES.items()) for method in methods]


@pytest.mark.parametrize(("name", "method"), CASES)
def test_route_as_every_persona(world, name, method):
    pattern = builder_routes()[name]
    url = url_for(name, pattern, world["kwargs"])
    got, want = {}, {}
    for persona in PERSONAS:
        client = Client()
        if persona != "anonymous":
            client.force_login(world["users"][persona])
        # each persona's request is undone afterwards, so a delete does not hide the next one
        with transaction.atomic():
            response = client.post(url) if method == "POST" else client.get(url)
            transaction.set_rollback(True)
        got[persona] = outcome(response)
        want[persona] = expected(ROUTES[name][method], persona)
    assert got == want, f"{method} {url}"


# -- the knowledge REST API: the same roles, through rag.access ------------------------------------

API_ROUTES: dict[str, dict[str, str]] = {
    "bases": {"GET": STAFF, "POST": STAFF},
    "base": {"GET": VIEW, "DELETE": OWN},
    "documents": {"GET": VIEW, "POST": EDIT},
    "document": {"GET": VIEW, "DELETE": EDIT},
    "search": {"POST": VIEW},
}


def api_routes(wanted: str = "knowledge-api") -> dict[str, URLPattern]:
    def walk(patterns, namespace=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, p.namespace or namespace)
            elif namespace == wanted:
                yield p

    return {p.name: p for p in walk(get_resolver().url_patterns)}


def test_every_knowledge_api_route_has_a_row():
    assert set(api_routes()) == set(API_ROUTES)


def api_outcome(response) -> str:
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    if response.status_code == 401 or (response.status_code == 403 and b"credentials" in response.content):
        return "login"  # not signed in
    if response.status_code in (403, 404):
        return str(response.status_code)
    return "ok"


def api_expected(level: str, persona: str) -> str:
    if persona == "non_staff":
        return "403"  # signed in, but the API is for staff
    return expected(level, persona)


API_CASES = [(name, method) for name, methods in sorted(API_ROUTES.items()) for method in methods]


@pytest.mark.parametrize(("name", "method"), API_CASES)
def test_knowledge_api_route_as_every_persona(world, name, method):
    kwargs = world["kwargs"]
    base_id = kwargs["knowledge"]["public_id"]
    args = {"base_id": base_id} if name != "bases" else {}
    if name == "document":
        args["document_id"] = kwargs["document"]["document_id"]
    url = reverse(f"knowledge-api:{name}", kwargs=args)
    body = {"query": "refunds"} if name == "search" else {}
    got, want = {}, {}
    for persona in PERSONAS:
        client = Client()
        if persona != "anonymous":
            client.force_login(world["users"][persona])
        with transaction.atomic():
            call = getattr(client, method.lower())
            response = call(url, body, content_type="application/json") if method != "GET" else call(url)
            transaction.set_rollback(True)
        got[persona] = api_outcome(response)
        want[persona] = api_expected(API_ROUTES[name][method], persona)
    assert got == want, f"{method} {url}"


# -- the builder's REST routes: the knowledge bases of agents and systems ---------------------------

BUILDER_API_ROUTES: dict[str, dict[str, str]] = {
    "agent-knowledge": {"GET": VIEW, "POST": EDIT},
    "agent-knowledge-base": {"GET": VIEW, "PATCH": EDIT, "DELETE": EDIT},
    "system-knowledge": {"GET": VIEW, "POST": EDIT},
    "system-knowledge-base": {"GET": VIEW, "PATCH": EDIT, "DELETE": EDIT},
}


def test_every_builder_api_route_has_a_row():
    assert set(api_routes("builder-api")) == set(BUILDER_API_ROUTES)


BUILDER_API_CASES = [
    (name, method) for name, methods in sorted(BUILDER_API_ROUTES.items()) for method in methods
]


@pytest.mark.parametrize(("name", "method"), BUILDER_API_CASES)
def test_builder_api_route_as_every_persona(world, name, method):
    """The agent or system has the world's base attached (every persona with a role on it sees
    it); a POST attaches a second base shared the same way, so an allowed request succeeds."""
    from builder.models import Agent, AgentKnowledge, AgentSystem, SystemKnowledge

    kwargs, users = world["kwargs"], world["users"]
    kind = name.split("-")[0]
    target = (Agent if kind == "agent" else AgentSystem).objects.get(**kwargs[kind])
    base = KnowledgeBase.objects.get(**kwargs["knowledge"])
    link = AgentKnowledge if kind == "agent" else SystemKnowledge
    link.objects.create(knowledge_base=base, **{kind: target})
    second = knowledge_base_create(owner=users["owner"], name="Policies")
    for persona in ("editor", "viewer"):
        share_add(obj=second, actor=users["owner"], role="viewer", user=users[persona])
    share_add(obj=second, actor=users["owner"], role="viewer", group=Group.objects.get(name="Support"))
    args = [target.public_id] if name.endswith("knowledge") else [target.public_id, base.public_id]
    url = reverse(f"builder-api:{name}", args=args)
    body = {"POST": {"knowledge_base": str(second.public_id)}, "PATCH": {"top_k": 6}}.get(method, {})
    got, want, statuses = {}, {}, {}
    for persona in PERSONAS:
        client = Client()
        if persona != "anonymous":
            client.force_login(users[persona])
        with transaction.atomic():
            call = getattr(client, method.lower())
            response = call(url, body, content_type="application/json") if method != "GET" else call(url)
            transaction.set_rollback(True)
        got[persona] = api_outcome(response)
        want[persona] = api_expected(BUILDER_API_ROUTES[name][method], persona)
        statuses[persona] = response.status_code
    assert got == want, f"{method} {url}"
    # "ok" here means done, not a 400 about the input
    assert all(statuses[p] < 300 for p, outcome in got.items() if outcome == "ok"), statuses
