"""Tool secrets at rest: Fernet tokens under rotatable keys.

Keys come from ``settings.AGENT_SECRET_KEYS`` (env ``AGENT_SECRET_KEYS``,
comma-separated). The first key encrypts; every key decrypts. To rotate: put a
new key first, keep the old ones, run :func:`rotate` over stored tokens (see
``runtime.fields.rotate_encrypted_fields``), then drop the old keys. A key may
be a Fernet key (``Fernet.generate_key()``) or any passphrase of at least 16
characters, stretched with HKDF. With no keys configured, one key is derived
from ``SECRET_KEY`` so development works out of the box.
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from runtime import conf

_HKDF_INFO = b"agent-builder tool secrets v1"


class SecretDecryptError(Exception):
    """A stored secret cannot be decrypted with any configured key."""


def _stretch(passphrase: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(passphrase.encode("utf-8")))


def _as_fernet_key(raw: str) -> bytes:
    try:
        decoded = base64.urlsafe_b64decode(raw.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        decoded = b""
    if len(decoded) == 32:
        return raw.encode("ascii")
    if len(raw) < 16:
        raise ImproperlyConfigured(
            "AGENT_SECRET_KEYS: each key must be a Fernet key (Fernet.generate_key()) "
            "or a passphrase of at least 16 characters."
        )
    return _stretch(raw)


def _configured_keys() -> tuple[str, ...]:
    keys = tuple(k for k in conf.setting("AGENT_SECRET_KEYS") if k)
    return keys or (f"derived-from-SECRET_KEY:{settings.SECRET_KEY}",)


@lru_cache(maxsize=8)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_as_fernet_key(k)) for k in keys])


def fernet() -> MultiFernet:
    # Keyed by the settings value, so override_settings and key changes take effect at once.
    return _fernet_for(_configured_keys())


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError):
        raise SecretDecryptError(
            "A stored secret cannot be decrypted with the configured AGENT_SECRET_KEYS; "
            "was a key removed before rotation finished? Re-enter the secret or restore the old key."
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt a token under the first (newest) key."""
    try:
        return fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError, ValueError):
        raise SecretDecryptError(
            "A stored secret cannot be rotated: no configured key decrypts it."
        ) from None


def encrypt_json(value: Any) -> str:
    return encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))


def decrypt_json(token: str) -> Any:
    return json.loads(decrypt(token))


def mask(value: str | None) -> str:
    """What the UI shows for a saved secret: never the value, at most its last 4 characters."""
    if not value:
        return ""
    if len(value) < 12:
        return "••••••••"
    return f"••••••••{value[-4:]}"
