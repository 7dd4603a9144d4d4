"""Tool secrets at rest: encrypted, rotatable, masked; the model field stores only tokens."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models

from runtime import secrets
from runtime.fields import EncryptedJSONField, rotate_encrypted_fields

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


class SecretHolder(models.Model):
    # A table made by the test itself (app label outside INSTALLED_APPS, so no migration).
    values = EncryptedJSONField(null=True)

    class Meta:
        app_label = "tests_tools"

    def __str__(self) -> str:
        return f"holder {self.pk}"


@pytest.fixture
def holder_table(db):
    with connection.schema_editor() as editor:
        editor.create_model(SecretHolder)
    yield SecretHolder
    # The test transaction rolls the table back.


def test_round_trip_and_tokens_do_not_contain_the_plaintext(settings):
    settings.AGENT_SECRET_KEYS = [OLD_KEY]
    token = secrets.encrypt("sk-plain-value")
    assert "sk-plain" not in token
    assert secrets.decrypt(token) == "sk-plain-value"
    assert secrets.decrypt_json(secrets.encrypt_json({"a": "b"})) == {"a": "b"}


def test_rotation_new_key_first_old_still_decrypts_then_old_can_go(settings):
    settings.AGENT_SECRET_KEYS = [OLD_KEY]
    token = secrets.encrypt("value")

    settings.AGENT_SECRET_KEYS = [NEW_KEY, OLD_KEY]
    assert secrets.decrypt(token) == "value"
    rotated = secrets.rotate(token)

    settings.AGENT_SECRET_KEYS = [NEW_KEY]
    assert secrets.decrypt(rotated) == "value"
    with pytest.raises(secrets.SecretDecryptError, match="AGENT_SECRET_KEYS"):
        secrets.decrypt(token)


def test_passphrase_keys_and_the_dev_default(settings):
    settings.AGENT_SECRET_KEYS = ["a long operator passphrase"]
    assert secrets.decrypt(secrets.encrypt("x")) == "x"
    settings.AGENT_SECRET_KEYS = ["short"]
    with pytest.raises(ImproperlyConfigured, match="at least 16 characters"):
        secrets.encrypt("x")
    settings.AGENT_SECRET_KEYS = []
    token = secrets.encrypt("x")
    settings.SECRET_KEY = "another-secret-key-entirely"
    with pytest.raises(secrets.SecretDecryptError):
        secrets.decrypt(token)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("", ""), ("short", "••••••••"), ("sk-live-0123456789abcd", "••••••••abcd")],
)
def test_mask_never_shows_more_than_four_characters(value, shown):
    assert secrets.mask(value) == shown


def test_field_stores_tokens_and_rotation_rewrites_them(holder_table, settings):
    settings.AGENT_SECRET_KEYS = [OLD_KEY]
    row = holder_table.objects.create(values={"Authorization": "Bearer sk-field-secret"})
    empty = holder_table.objects.create(values=None)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT values FROM {holder_table._meta.db_table} WHERE id = %s", [row.pk])
        (stored,) = cursor.fetchone()
    assert "sk-field-secret" not in stored
    assert holder_table.objects.get(pk=row.pk).values == {"Authorization": "Bearer sk-field-secret"}
    assert holder_table.objects.get(pk=empty.pk).values is None

    settings.AGENT_SECRET_KEYS = [NEW_KEY, OLD_KEY]
    assert rotate_encrypted_fields(holder_table) == 1
    settings.AGENT_SECRET_KEYS = [NEW_KEY]
    assert holder_table.objects.get(pk=row.pk).values == {"Authorization": "Bearer sk-field-secret"}


def test_field_refuses_content_lookups(holder_table):
    with pytest.raises(Exception, match="Unsupported lookup 'contains'"):
        list(holder_table.objects.filter(values__contains="sk-"))
    assert list(holder_table.objects.filter(values__isnull=True)) == []


def test_rotate_secrets_command_reencrypts_stored_tool_secrets(owner, settings):
    from io import StringIO

    from django.core.management import call_command

    from builder.models import ToolDefinition

    settings.AGENT_SECRET_KEYS = [OLD_KEY]
    tool = ToolDefinition.objects.create(
        owner=owner, name="crm", kind="http", spec={}, secrets={"token": "s3cret"}
    )
    settings.AGENT_SECRET_KEYS = [NEW_KEY, OLD_KEY]
    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    assert "builder.ToolDefinition: 1 row(s) re-encrypted" in out.getvalue()
    settings.AGENT_SECRET_KEYS = [NEW_KEY]  # the old key is gone and the secret still reads
    assert ToolDefinition.objects.get(pk=tool.pk).secrets == {"token": "s3cret"}
