"""Encryption of tool secrets at rest.

Uses ``runtime.secrets`` (the shared key management) when it is available, else a
Fernet key derived from ``SECRET_KEY``; the stored form is the Fernet token either way.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    digest = hashlib.sha256(("builder-tool-secrets:" + settings.SECRET_KEY).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secrets(values: dict[str, str]) -> str:
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values).encode()).decode()


def decrypt_secrets(token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError):
        # A rotated SECRET_KEY makes old secrets unreadable: treat as unset, the UI asks again.
        return {}
