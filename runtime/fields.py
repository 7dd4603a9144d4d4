"""Model fields for data that must be encrypted at rest (tool secrets).

``EncryptedJSONField`` stores a Fernet token in a text column and gives Python
a JSON value (usually ``{"Authorization": "Bearer ..."}``). It cannot be
queried by content, on purpose. Keys and rotation: see ``runtime/secrets.py``.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.db.models.functions import Cast

from runtime import secrets


class EncryptedJSONField(models.TextField):
    description = "JSON encrypted with the AGENT_SECRET_KEYS"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None
        return secrets.decrypt_json(value)

    def to_python(self, value: Any) -> Any:
        # Forms and deserialisation hand us Python values already; tokens only come from the DB.
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return secrets.encrypt_json(value)

    def value_to_string(self, obj: models.Model) -> str:
        # dumpdata writes the token, never the plaintext.
        value = self.value_from_object(obj)
        return "" if value is None else secrets.encrypt_json(value)

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)


def encrypted_fields(model: type[models.Model]) -> list[EncryptedJSONField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedJSONField)]


def rotate_encrypted_fields(model: type[models.Model], *, batch_size: int = 500) -> int:
    """Re-encrypt every stored token of ``model`` under the newest key; returns rows touched.

    Works on the raw tokens (a cast to plain text skips ``from_db_value``), so
    the plaintext is never materialised.
    """
    fields = encrypted_fields(model)
    if not fields:
        return 0
    names = [f.attname for f in fields]
    touched = 0
    pks = list(model._base_manager.values_list("pk", flat=True).order_by("pk"))
    for start in range(0, len(pks), batch_size):
        chunk = pks[start : start + batch_size]
        with transaction.atomic():
            raw = {f"_raw_{n}": Cast(n, output_field=models.TextField()) for n in names}
            rows = (
                model._base_manager.filter(pk__in=chunk)
                .select_for_update()
                .annotate(**raw)
                .values_list("pk", *raw)
            )
            for pk, *tokens in rows:
                updates = {n: secrets.rotate(t) for n, t in zip(names, tokens, strict=True) if t}
                if updates:
                    # .update() bypasses get_prep_value, so the rotated token is stored as is.
                    model._base_manager.filter(pk=pk).update(**{n: _Raw(v) for n, v in updates.items()})
                    touched += 1
    return touched


def rotate_all_encrypted_fields() -> dict[str, int]:
    """Rotate every model with an EncryptedJSONField; for a ``rotate_secrets`` command."""
    return {
        model._meta.label: rotate_encrypted_fields(model)
        for model in apps.get_models()
        if encrypted_fields(model)
    }


class _Raw(models.Value):
    """A value written to the column verbatim (an already-encrypted token)."""

    def __init__(self, token: str) -> None:
        super().__init__(token, output_field=models.TextField())
