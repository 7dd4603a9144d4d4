"""Invitations by email: an expiring, single-use signed link; the invitee chooses a password, is
signed in and lands on the shared object with the role; every bad link or input says what to do."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from builder.access import perms_for
from builder.models import Agent, AuditEntry, Invitation
from tests.builder.test_sharing import client_for, staff

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-passphrase-42"


def invite(owner, agent, email="newbie@example.com", role="editor"):
    response = client_for(owner).post(
        f"/agents/{agent.public_id}/sharing/invite/", {"email": email, "invite_role": role}
    )
    return response


def link_path() -> str:
    url = re.search(r"https?://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)
    return "/" + url.split("/", 3)[3]


def accept(path, username="newbie", password=PASSWORD, password2=None) -> tuple[Client, object]:
    client = Client()
    response = client.post(
        path,
        {"username": username, "first_name": "New", "password": password, "password2": password2 or password},
    )
    return client, response


def test_invite_accept_land_on_the_object_with_the_role(owner, agent):
    response = invite(owner, agent)
    assert response.status_code == 200 and "Invited newbie@example.com as editor" in response.content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newbie@example.com"]
    path = link_path()
    page = Client().get(path)
    assert page.status_code == 200 and "Join Helper" in page.content.decode()
    client, response = accept(path)
    assert response.status_code == 302 and response["Location"] == f"/agents/{agent.public_id}/"
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "newbie@example.com" and user.is_staff and not user.is_superuser
    assert perms_for(user, Agent.objects.get(pk=agent.pk)).role == "editor"
    assert client.get(f"/agents/{agent.public_id}/").status_code == 200  # signed in
    # sees only that agent
    other = staff("someone")
    from tests.builder.conftest import make_agent

    make_agent(other, slug="not-yours", name="Not yours")
    listing = client.get("/").content.decode()
    assert "Helper" in listing and "Not yours" not in listing
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("pk")) == ["invited", "shared"]
    # the link works once
    again = Client().get(path)
    assert again.status_code == 410 and "already used" in again.content.decode()


def test_an_expired_or_tampered_link_is_refused(owner, agent):
    invite(owner, agent)
    path = link_path()
    broken = Client().get(path[:-6] + "xxxxx/")
    assert broken.status_code == 404 and "not valid" in broken.content.decode()
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    client, response = accept(path)
    assert response.status_code == 410 and "has expired" in response.content.decode()
    assert not get_user_model().objects.filter(username="newbie").exists()


@pytest.mark.parametrize(
    ("data", "field_message"),
    [
        ({"password2": "something-else-entirely-9"}, "The two passwords differ"),
        ({"password": "short", "password2": "short"}, "too short"),
        ({"username": "owner"}, "is taken"),
        ({"username": "bad name!"}, "letters, digits"),
    ],
)
def test_bad_account_input_says_why_and_creates_nothing(owner, agent, data, field_message):
    invite(owner, agent)
    path = link_path()
    before = get_user_model().objects.count()
    client, response = accept(path, **{k: v for k, v in data.items()})
    assert response.status_code == 422 and field_message in response.content.decode()
    assert get_user_model().objects.count() == before
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.parametrize(
    ("email", "role", "message"),
    [
        ("not-an-email", "viewer", "Enter an email address"),
        ("owner@example.com", "viewer", "already has an account"),
        ("x@example.com", "god", "Choose a role"),
    ],
)
def test_bad_invitations_say_why(owner, agent, email, role, message):
    response = invite(owner, agent, email=email, role=role)
    assert response.status_code == 422 and message in response.content.decode()
    assert not Invitation.objects.exists() and not mail.outbox


def test_inviting_twice_and_inviting_without_owning(owner, agent):
    invite(owner, agent)
    again = invite(owner, agent)
    assert again.status_code == 422 and "already invited" in again.content.decode()
    viewer = staff("vic")
    from builder.services.sharing import share_add

    share_add(obj=agent, actor=owner, role="editor", user=viewer)
    refused = invite(viewer, agent, email="other@example.com")
    assert refused.status_code == 403
    assert Invitation.objects.count() == 1
