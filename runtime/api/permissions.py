"""Who is calling: a signed-in user, a token user, or an anonymous session (the widget).

An anonymous session authenticates with the ``X-Anonymous-Token`` header. The
query forms ``?anonymous_token=`` and ``?token=`` exist only because ``EventSource``
cannot set headers, so only the event-stream routes accept them
(:class:`AnonymousSessionQueryAuthentication`); anywhere else a token in a URL
would end up in logs and browser history for no reason. As in the original package,
either parameter may carry an anonymous session token or an API token: the
agent-frontend widget puts whichever token it holds in ``?anonymous_token=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth.models import AnonymousUser
from django.db import models
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from runtime import conf
from runtime.api.credentials import CachedTokenAuthentication, credentials
from runtime.channels.api_key_models import ApiKey

ANONYMOUS_TOKEN_HEADER = "HTTP_X_ANONYMOUS_TOKEN"  # noqa: S105 - a header name, not a secret
ANONYMOUS_TOKEN_QUERY = "anonymous_token"  # noqa: S105 - a parameter name
TOKEN_QUERY = "token"  # noqa: S105 - a parameter name


def anonymous_session_model() -> type[models.Model] | None:
    """The model named by ``ANONYMOUS_SESSION_MODEL``, or None when anonymous sessions are off."""
    label = conf.get("ANONYMOUS_SESSION_MODEL")
    if not label:
        return None
    return apps.get_model(label)


def session_for_token(token: str) -> Any:
    """The anonymous session holding ``token``; raises AuthenticationFailed when unknown or expired."""
    model = anonymous_session_model()
    if model is None:
        raise exceptions.AuthenticationFailed("Anonymous sessions are not enabled on this server.")
    # a NUL character cannot be in a token (and PostgreSQL cannot even compare text holding one)
    session = None if "\x00" in token else model._default_manager.filter(token=token).first()
    if session is None:
        raise exceptions.AuthenticationFailed(
            "The anonymous session token is not valid; mint a new one at /api/accounts/anonymous-session/."
        )
    if getattr(session, "is_expired", False):
        raise exceptions.AuthenticationFailed(
            "The anonymous session token has expired; mint a new one at /api/accounts/anonymous-session/."
        )
    return session


class AnonymousSessionAuthentication(BaseAuthentication):
    """Authenticates ``X-Anonymous-Token: <token>``; ``request.auth`` is the session object."""

    def get_token(self, request: Any) -> str:
        return request.META.get(ANONYMOUS_TOKEN_HEADER, "").strip()

    def authenticate(self, request: Any) -> tuple[AnonymousUser, Any] | None:
        token = self.get_token(request)
        if not token:
            return None
        return self.authenticate_token(token)

    def authenticate_token(self, token: str) -> tuple[AnonymousUser, Any]:
        # remembered for a few seconds, never past the session's expiry (runtime.api.credentials)
        remembered = credentials.get("anonymous", token)
        if remembered is not None:
            return remembered
        session = session_for_token(token)
        credentials.put(
            "anonymous", token, AnonymousUser(), session, expires_at=getattr(session, "expires_at", None)
        )
        return AnonymousUser(), session

    def authenticate_header(self, request: Any) -> str:
        return "X-Anonymous-Token"


class AnonymousSessionQueryAuthentication(AnonymousSessionAuthentication):
    """For the event-stream routes only: also ``?anonymous_token=`` or ``?token=``, holding an
    anonymous session token or an API token (``Authorization: Token``'s key)."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        if self.get_token(request):
            return super().authenticate(request)
        params = request.query_params
        token = (params.get(ANONYMOUS_TOKEN_QUERY) or params.get(TOKEN_QUERY) or "").strip()
        if not token:
            return None
        remembered = credentials.get("anonymous", token) or credentials.get("token", token)
        if remembered is not None:
            return remembered
        try:
            return self.authenticate_token(token)
        except exceptions.AuthenticationFailed:
            pass

        try:
            return CachedTokenAuthentication().authenticate_credentials(token)
        except exceptions.AuthenticationFailed:
            raise exceptions.AuthenticationFailed(
                "The token in the URL is neither a valid API token nor a valid anonymous session token; "
                "mint a new anonymous session at /api/accounts/anonymous-session/."
            ) from None


def is_anonymous_session(auth: Any) -> bool:
    model = anonymous_session_model()
    return model is not None and isinstance(auth, model)


def is_api_key(auth: Any) -> bool:
    return isinstance(auth, ApiKey)


class IsAuthenticatedOrAnonymousSession(BasePermission):
    """A signed-in user, a valid anonymous session or an agent's API key (``Bearer sk_live_...``)."""

    message = "Sign in, send an API token, or send an anonymous session token in X-Anonymous-Token."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = getattr(request, "user", None)
        auth = getattr(request, "auth", None)
        return bool(user and user.is_authenticated) or is_anonymous_session(auth) or is_api_key(auth)


@dataclass(frozen=True)
class Caller:
    """The owner a request acts for: exactly one of ``user``, ``anonymous_session_id`` and
    ``api_key`` is set. An API key (runtime/channels/) owns the runs it started (``AgentRun.caller``)
    and the conversations they belong to; it is never an editor of anything."""

    user: Any = None
    anonymous_session_id: Any = None
    api_key: Any = None

    @property
    def channel_caller(self) -> str:
        return self.api_key.caller if self.api_key is not None else ""

    @classmethod
    def from_request(cls, request: Any) -> Caller:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return cls(user=user)
        auth = getattr(request, "auth", None)
        if is_anonymous_session(auth):
            return cls(anonymous_session_id=auth.pk)
        if is_api_key(auth):
            return cls(api_key=auth)
        raise exceptions.NotAuthenticated()

    def owner_filter(self) -> dict[str, Any]:
        """ORM filter kwargs selecting this caller's runs (and, but for a key, conversations)."""
        if self.user is not None:
            return {"user": self.user}
        if self.api_key is not None:
            return {"caller": self.api_key.caller, "user__isnull": True}
        return {"anonymous_session_id": self.anonymous_session_id, "user__isnull": True}

    def conversation_filter(self) -> dict[str, Any]:
        """ORM filter kwargs selecting this caller's conversations (a key's: those its runs are in)."""
        if self.api_key is not None:
            return {"runs__caller": self.api_key.caller, "user__isnull": True}
        return self.owner_filter()
