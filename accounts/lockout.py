"""The page django-axes shows a locked-out sign-in (``AXES_LOCKOUT_CALLABLE``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def lockout_response(request: HttpRequest, original_response: Any, credentials: dict | None) -> HttpResponse:
    """429 with a page that says how long the lock lasts and how an administrator lifts it."""
    username = (credentials or {}).get(settings.AXES_USERNAME_FORM_FIELD) or request.POST.get("username", "")
    cooloff = settings.AXES_COOLOFF_TIME
    context = {
        **admin.site.each_context(request),  # Unfold's sign-in layout, like the login page
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "minutes": max(1, round(cooloff.total_seconds() / 60)) if cooloff else 0,
    }
    return render(request, "accounts/locked_out.html", context, status=429)
