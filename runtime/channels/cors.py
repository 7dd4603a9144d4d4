"""CORS for the widget API, per channel, through django-cors-headers' ``check_request_enabled``
signal (the library's documented hook for origins kept in a database).

- The session mint and every preflight under the widget API answer any origin: the mint view
  itself refuses an origin that is not on the channel's list, and its refusal must be readable
  by the widget so it can tell the visitor why; a preflight reveals nothing.
- Every other widget request carries a visitor token; it is answered to the origins of that
  token's channel only (and this server's own origin: the Publish page's preview).

Other paths are left to the project's settings (``CORS_ALLOWED_ORIGINS`` / ``CORS_URLS_REGEX``).
"""

from __future__ import annotations

import functools
from typing import Any

from django.apps import apps
from django.urls import reverse

from runtime.api.permissions import ANONYMOUS_TOKEN_HEADER, ANONYMOUS_TOKEN_QUERY, anonymous_session_model
from runtime.channels.services import ChannelError
from runtime.channels.visitors import channel_for_session, origin_ok


@functools.cache
def widget_prefix() -> str:
    return reverse("widget:session").removesuffix("session/")


def own_origin(request: Any) -> str:
    return f"{request.scheme}://{request.get_host()}"


def visitor_token(request: Any) -> str:
    return (request.META.get(ANONYMOUS_TOKEN_HEADER) or request.GET.get(ANONYMOUS_TOKEN_QUERY) or "").strip()


def origin_allowed_for_token(request: Any, origin: str) -> bool:
    token = visitor_token(request)
    model = anonymous_session_model()
    if not token or "\x00" in token or model is None:
        return False
    session = model._default_manager.filter(token=token).first()
    if session is None:
        return False
    try:
        channel = channel_for_session(session)
    except ChannelError:
        return False
    return origin_ok(channel, origin, own_origin(request))


def widget_cors(sender: Any, request: Any, **kwargs: Any) -> bool:
    """``check_request_enabled`` receiver: may this widget request's Origin read the answer?"""
    if not request.path_info.startswith(widget_prefix()):
        return False
    origin = request.headers.get("Origin", "")
    if request.method == "OPTIONS" or request.path_info == reverse("widget:session"):
        return True
    # the middleware asks twice per request (enabled? then allowed?): look the token up once
    cached = getattr(request, "_widget_cors", None)
    if cached is None:
        cached = request._widget_cors = bool(origin) and origin_allowed_for_token(request, origin)
    return cached


def connect() -> None:
    if apps.is_installed("corsheaders"):
        from corsheaders.signals import check_request_enabled  # optional: only when the app is installed

        check_request_enabled.connect(widget_cors, dispatch_uid="runtime.channels.widget_cors")
