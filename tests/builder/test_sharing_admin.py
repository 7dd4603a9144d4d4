"""The admin follows the same roles: a viewer sees an agent shared with them read-only, an editor may
change it, only owners publish or delete; the audit log is filterable and scoped per user."""

from __future__ import annotations

import pytest
from django.test import Client

from builder.models import Agent, AuditEntry
from builder.services import agent_publish
from builder.services.sharing import share_add, share_change
from tests.builder.test_sharing import staff

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_admin_rows_and_rights_follow_the_role(owner, agent):
    ana = staff("ana")
    client = logged_in(ana)
    assert b"Helper" not in client.get("/admin/builder/agent/").content
    share_add(obj=agent, actor=owner, role="viewer", user=ana)
    listing = client.get("/admin/builder/agent/").content.decode()
    assert "Helper" in listing and "viewer" in listing
    change_url = f"/admin/builder/agent/{agent.pk}/change/"
    assert client.get(change_url).status_code == 200  # read-only view
    refused = client.post(change_url, {"name": "Renamed", "slug": agent.slug, "icon": "x", "owner": owner.pk})
    assert refused.status_code == 403
    assert Agent.objects.get(pk=agent.pk).name == "Helper"
    assert client.post(f"/admin/builder/agent/{agent.pk}/delete/", {"post": "yes"}).status_code == 403
    share_change(obj=agent, actor=owner, role="editor", user=ana)
    assert client.post(f"/admin/builder/agent/{agent.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/builder/agent/{agent.pk}/publish/").status_code == 403
    assert agent.versions.count() == 0


def test_audit_admin_is_scoped_and_filterable(owner, agent):
    ana, zed = staff("ana"), staff("zed")
    share_add(obj=agent, actor=owner, role="viewer", user=ana)
    agent_publish(agent=agent, user=owner)
    assert AuditEntry.objects.count() == 2
    assert "Helper" in logged_in(owner).get("/admin/builder/auditentry/?action=published").content.decode()
    # ana may see the agent, so its history; zed may not
    assert logged_in(ana).get("/admin/builder/auditentry/").content.decode().count("Helper") >= 2
    assert "Helper" not in logged_in(zed).get("/admin/builder/auditentry/").content.decode()
    entry = AuditEntry.objects.first()
    assert (
        logged_in(zed).get(f"/admin/builder/auditentry/{entry.pk}/change/").status_code == 302
    )  # "does not exist"
    assert (
        logged_in(owner).post(f"/admin/builder/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )


def test_deleting_from_the_admin_is_audited(owner, agent):
    response = logged_in(owner).post(f"/admin/builder/agent/{agent.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="deleted", target_id=agent.public_id, actor=owner).exists()
