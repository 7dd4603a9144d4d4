"""Sidebar callbacks for Unfold (``UNFOLD["SIDEBAR"]`` names them by dotted path)."""

from __future__ import annotations

from django.http import HttpRequest


def agents_active(request: HttpRequest) -> bool:
    # "/" is a prefix of every path, so Unfold's own prefix test would light this item everywhere.
    return request.path == "/" or request.path.startswith("/agents/")


def can_manage_providers(request: HttpRequest) -> bool:
    return request.user.has_perm("runtime.manage_providers")
