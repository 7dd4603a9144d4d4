"""Knowledge bases in export files (``builder/services/io.py``): exported by reference (public id and
name, with mode, top_k and score_threshold; never the documents), re-attached on import when the
importing user may see the base, skipped with a reason otherwise, bad values named by place."""

from __future__ import annotations

import uuid

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import escape

from builder.models import Agent, AgentKnowledge, AgentSystem, AuditAction, SystemKnowledge
from builder.services.knowledge import knowledge_link_add
from builder.services.sharing import audit_for, share_add
from builder.services.systems import system_save
from rag.services import document_upload, knowledge_base_create
from tests.builder.conftest import make_agent
from tests.builder.test_sharing import client_for, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def base(owner):
    base = knowledge_base_create(owner=owner, name="Handbook")
    upload = SimpleUploadedFile("hours.txt", b"The shop opens at nine sharp.")
    document_upload(knowledge_base=base, upload=upload, user=owner)
    return base


def export(client, obj) -> dict:
    kind = "agents" if isinstance(obj, Agent) else "systems"
    response = client.get(f"/{kind}/{obj.public_id}/export/")
    assert response.status_code == 200
    return yaml.safe_load(response.content.decode())


def ref(base, **settings) -> dict:
    return {
        "id": str(base.public_id),
        "name": base.name,
        "mode": "auto",
        "top_k": 4,
        "score_threshold": 0.0,
    } | settings


def links(target) -> list[tuple]:
    return list(
        target.knowledge_links.order_by("knowledge_base__name").values_list(
            "knowledge_base__name", "mode", "top_k", "score_threshold"
        )
    )


def agent_file(slug="helper2", refs=None, **extra) -> str:
    agent = {"slug": slug, "name": "Helper two", "config": {"system_prompt": "You help."}, **extra}
    if refs is not None:
        agent["knowledge_bases"] = refs
    return yaml.safe_dump({"format": 1, "kind": "agent", "agents": [agent]})


def preview(client, text):
    return client.post("/import/", {"text": text}, headers={"HX-Request": "true"})


def confirm(client, text):
    return client.post("/import/", {"text": text, "confirm": "1"}, follow=True)


# -- export ---------------------------------------------------------------------------------------


def test_an_agent_exports_its_bases_by_reference_never_their_documents(owner, base):
    agent = make_agent(owner)
    policies = knowledge_base_create(owner=owner, name="Policies")
    knowledge_link_add(
        target=agent, user=owner, knowledge_base=base, mode="tool", top_k=6, score_threshold=0.2
    )
    knowledge_link_add(target=agent, user=owner, knowledge_base=policies)
    client = client_for(owner)
    data = export(client, agent)
    assert data["agents"][0]["knowledge_bases"] == [
        ref(base, mode="tool", top_k=6, score_threshold=0.2),
        ref(policies),
    ]
    text = client.get(f"/agents/{agent.public_id}/export/").content.decode()
    assert "nine sharp" not in text and "hours.txt" not in text


def test_an_agent_without_knowledge_exports_as_before(owner):
    data = export(client_for(owner), make_agent(owner))
    assert "knowledge_bases" not in data["agents"][0]


def test_a_base_hidden_from_the_exporter_is_left_out_of_their_file(owner, base):
    agent = make_agent(owner)
    knowledge_link_add(target=agent, user=owner, knowledge_base=base)
    viewer = staff("vi")
    share_add(obj=agent, actor=owner, role="viewer", user=viewer)
    mine = knowledge_base_create(owner=viewer, name="Mine")
    knowledge_link_add(target=agent, user=viewer, knowledge_base=mine)  # the service; the role is the view's
    client = client_for(viewer)
    text = client.get(f"/agents/{agent.public_id}/export/").content.decode()
    assert yaml.safe_load(text)["agents"][0]["knowledge_bases"] == [ref(mine)]
    assert "Handbook" not in text and str(base.public_id) not in text


def test_a_system_exports_its_bases_and_its_members_bases(owner, base):
    entry = make_agent(owner, slug="router", name="Router")
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=entry, members={})
    knowledge_link_add(target=system, user=owner, knowledge_base=base, mode="both")
    policies = knowledge_base_create(owner=owner, name="Policies")
    knowledge_link_add(target=entry, user=owner, knowledge_base=policies, top_k=2)
    data = export(client_for(owner), system)
    assert data["system"]["knowledge_bases"] == [ref(base, mode="both")]
    assert data["agents"][0]["knowledge_bases"] == [ref(policies, top_k=2)]


# -- import ---------------------------------------------------------------------------------------


def test_agent_round_trip_reattaches_its_bases_with_their_settings(owner, base):
    agent = make_agent(owner)
    knowledge_link_add(
        target=agent, user=owner, knowledge_base=base, mode="tool", top_k=6, score_threshold=0.2
    )
    client = client_for(owner)
    text = yaml.safe_dump(export(client, agent)).replace("helper", "helper2")
    shown = preview(client, text).content.decode()
    assert "attach knowledge base Handbook (mode tool, top_k 6, score_threshold 0.2)" in shown
    assert not Agent.objects.filter(slug="helper2").exists()
    assert confirm(client, text).status_code == 200
    copy = Agent.objects.get(slug="helper2")
    assert links(copy) == [("Handbook", "tool", 6, 0.2)]
    assert links(agent) == [("Handbook", "tool", 6, 0.2)]  # the base is shared, not copied
    assert [(e.action, e.subject, e.actor) for e in audit_for(copy)] == [
        (AuditAction.KNOWLEDGE_ATTACHED, "Handbook", owner)
    ]
    assert (
        yaml.safe_load(text)["agents"][0]["knowledge_bases"]
        == export(client, copy)["agents"][0]["knowledge_bases"]
    )


def test_system_round_trip_reattaches_the_systems_and_the_members_bases(owner, base):
    entry = make_agent(owner, slug="router", name="Router")
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=entry, members={})
    policies = knowledge_base_create(owner=owner, name="Policies")
    knowledge_link_add(target=system, user=owner, knowledge_base=base, mode="both", score_threshold=0.3)
    knowledge_link_add(target=entry, user=owner, knowledge_base=policies, top_k=2)
    client = client_for(owner)
    text = yaml.safe_dump(export(client, system)).replace("router", "router2").replace("desk", "desk2")
    confirm(client, text)
    copy = AgentSystem.objects.get(slug="desk2")
    assert links(copy) == [("Handbook", "both", 4, 0.3)]
    assert links(copy.entry_agent) == [("Policies", "auto", 2, 0.0)]
    assert SystemKnowledge.objects.count() == 2 and AgentKnowledge.objects.count() == 2


def test_import_onto_an_existing_agent_changes_settings_and_never_detaches(owner, base):
    agent = make_agent(owner)
    knowledge_link_add(target=agent, user=owner, knowledge_base=base)
    policies = knowledge_base_create(owner=owner, name="Policies")
    client = client_for(owner)
    data = export(client, agent)
    data["agents"][0]["knowledge_bases"][0]["top_k"] = 8
    text = yaml.safe_dump(data)
    knowledge_link_add(target=agent, user=owner, knowledge_base=policies)  # attached after the export
    shown = preview(client, text).content.decode()
    assert "knowledge base Handbook: top_k 4 → 8" in shown and "changes nothing" not in shown
    confirm(client, text)
    assert links(agent) == [("Handbook", "auto", 8, 0.0), ("Policies", "auto", 4, 0.0)]
    assert audit_for(agent).first().detail == "top_k 4 → 8"
    # the same file again: nothing to change, nothing recorded
    assert "changes nothing" in preview(client, text).content.decode()
    entries = audit_for(agent).count()
    confirm(client, text)
    assert audit_for(agent).count() == entries


def test_an_older_file_without_knowledge_bases_imports_and_leaves_attachments_alone(owner, base):
    agent = make_agent(owner)
    knowledge_link_add(target=agent, user=owner, knowledge_base=base, top_k=3)
    client = client_for(owner)
    old = agent_file(slug="helper", config={"system_prompt": "Older words."})
    assert "knowledge_bases" not in old
    confirm(client, old)
    agent.refresh_from_db()
    assert agent.draft.config["system_prompt"] == "Older words."
    assert links(agent) == [("Handbook", "auto", 3, 0.0)]
    confirm(client, agent_file(slug="fresh"))
    assert links(Agent.objects.get(slug="fresh")) == []


def test_bases_that_do_not_exist_or_are_hidden_are_skipped_with_a_reason(owner, other_staff, base):
    secret = knowledge_base_create(owner=other_staff, name="Secret plans")
    gone = uuid.UUID(int=7)
    refs = [ref(base, top_k=5), ref(secret), {"id": str(gone), "name": "Old handbook"}]
    text = agent_file(refs=refs)
    client = client_for(owner)
    reason = "is not attached: there is no knowledge base with the id {} here that you can see; ask its owner to share it, then attach it on the Knowledge page"
    shown = preview(client, text).content.decode()
    assert escape(f"'Secret plans' {reason.format(secret.public_id)}") in shown
    assert escape(f"'Old handbook' {reason.format(gone)}") in shown
    assert "attach knowledge base Handbook (mode auto, top_k 5" in shown

    done = confirm(client, text).content.decode()
    assert "Imported 1 item(s)." in done
    assert escape(f"Agent helper2: knowledge base 'Secret plans' {reason.format(secret.public_id)}.") in done
    assert escape(f"knowledge base 'Old handbook' {reason.format(gone)}") in done
    assert links(Agent.objects.get(slug="helper2")) == [("Handbook", "auto", 5, 0.0)]


def test_a_base_shared_with_the_importer_is_attached(owner, other_staff, base):
    share_add(obj=base, actor=owner, role="viewer", user=other_staff)
    confirm(client_for(other_staff), agent_file(refs=[ref(base, mode="tool")]))
    assert links(Agent.objects.get(slug="helper2")) == [("Handbook", "tool", 4, 0.0)]


BAD = [
    (
        {"mode": "sometimes"},
        "knowledge_bases[1].mode: Unknown mode 'sometimes'; use one of auto, tool, both.",
    ),
    ({"top_k": 0}, "knowledge_bases[1].top_k: Passages per question must be a whole number from 1 to 20."),
    ({"top_k": 21}, "knowledge_bases[1].top_k: Passages per question must be a whole number from 1 to 20."),
    (
        {"top_k": "many"},
        "knowledge_bases[1].top_k: Passages per question must be a whole number from 1 to 20.",
    ),
    ({"score_threshold": 2}, "knowledge_bases[1].score_threshold: The minimum similarity must be between 0"),
    (
        {"id": "handbook"},
        "knowledge_bases[1].id: 'handbook' is not a knowledge base id; export the file again.",
    ),
    ({"id": None}, "knowledge_bases[1].id is missing: the knowledge base's id; export the file again."),
    ({"name": ["x"]}, "knowledge_bases[1].name must be a text."),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_a_bad_value_names_its_place_and_saves_nothing(owner, base, change, message):
    client = client_for(owner)
    response = preview(client, agent_file(refs=[ref(base) | change]))
    assert response.status_code == 422
    assert escape(f"agents[1] (helper2).{message}") in response.content.decode()
    done = client.post("/import/", {"text": agent_file(refs=[ref(base) | change]), "confirm": "1"})
    assert done.status_code == 422 and not Agent.objects.filter(slug="helper2").exists()
    assert not AgentKnowledge.objects.exists()


@pytest.mark.parametrize(
    ("refs", "message"),
    [
        ("Handbook", "agents[1] (helper2).knowledge_bases must be a list of knowledge bases"),
        (["Handbook"], "agents[1] (helper2).knowledge_bases[1] must be a mapping with id, name"),
        ("twice", "agents[1] (helper2).knowledge_bases[2].id: the knowledge base Handbook is listed twice."),
    ],
)
def test_a_malformed_list_names_its_place(owner, base, refs, message):
    refs = [ref(base), ref(base, top_k=5)] if refs == "twice" else refs
    response = preview(client_for(owner), agent_file(refs=refs))
    assert response.status_code == 422 and escape(message) in response.content.decode()


def test_a_bad_value_in_the_systems_list_names_the_system(owner, base):
    entry = make_agent(owner, slug="router", name="Router")
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=entry, members={})
    client = client_for(owner)
    data = export(client, system)
    data["system"]["knowledge_bases"] = [ref(base, mode="never")]
    text = yaml.safe_dump(data).replace("router", "router2").replace("desk", "desk2")
    response = preview(client, text)
    assert response.status_code == 422
    assert escape("system.knowledge_bases[1].mode: Unknown mode 'never'") in response.content.decode()
    assert client.post("/import/", {"text": text, "confirm": "1"}).status_code == 422
    assert not AgentSystem.objects.filter(slug="desk2").exists()
