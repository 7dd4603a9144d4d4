"""Sign-in hardening: throttling with lockout (django-axes) and real password validators."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user(
        "alice", "alice@example.com", "right-horse-battery", is_staff=True
    )


def _sign_in(client: Client, password: str, username: str = "alice", next_url: str = "/"):
    return client.post(f"{LOGIN}?next={next_url}", {"username": username, "password": password})


@pytest.mark.parametrize("next_url", ["/", "/admin/"], ids=["builder", "admin"])
def test_wrong_passwords_lock_the_sign_in_with_a_readable_page(alice, settings, next_url):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, "wrong", next_url=next_url).status_code == 200  # the form again
    locked = _sign_in(client, "wrong", next_url=next_url)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page
    assert "as <strong>alice</strong>" in page and "after 5 wrong passwords" in page
    assert "Try again in 15 minutes" in page
    assert "manage.py axes_reset_username" in page
    # even the right password is refused while locked
    assert _sign_in(client, "right-horse-battery", next_url=next_url).status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lock_is_per_username_and_address(alice, settings):
    get_user_model().objects.create_user("bob", "bob@example.com", "another-good-phrase", is_staff=True)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "wrong")
    assert _sign_in(client, "another-good-phrase", username="bob").status_code == 302
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    assert _sign_in(elsewhere, "right-horse-battery").status_code == 302


def test_an_administrator_unlocks_with_the_documented_command(alice, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "wrong")
    assert _sign_in(client, "right-horse-battery").status_code == 429
    call_command("axes_reset_username", "alice")
    assert _sign_in(client, "right-horse-battery").status_code == 302


def test_a_successful_sign_in_resets_the_count(alice, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "wrong")
    assert _sign_in(client, "right-horse-battery").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "wrong")
    assert _sign_in(client, "right-horse-battery").status_code == 302


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Tr0ub4dor&", "too short"),
        ("password1234", "too common"),
        ("583920174635", "entirely numeric"),
        ("alexandra.smith1", "too similar to the username"),
    ],
)
def test_weak_passwords_are_refused(password, problem):
    user = get_user_model()(username="alexandra.smith", email="alexandra.smith@example.com")
    with pytest.raises(ValidationError) as refused:
        validate_password(password, user)
    assert problem in " ".join(refused.value.messages)


def test_the_admin_password_form_applies_the_validators(admin_client, alice):
    response = admin_client.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": "583920174635", "password2": "583920174635", "usable_password": "true"},
    )
    assert response.status_code == 200
    assert "This password is entirely numeric." in response.content.decode()


def test_the_staff_password_dev_prints_passes_them():
    from builder.management.commands.dev import staff_password

    admin = get_user_model()(username="admin", email="admin@example.com")
    for _ in range(50):
        validate_password(staff_password(), admin)


def test_tests_keep_the_fast_hasher(settings):
    assert settings.PASSWORD_HASHERS == ["django.contrib.auth.hashers.MD5PasswordHasher"]
