"""The widget's API (``/api/widget/``): what ``widget.js`` calls from pages on other sites.

``POST session/`` trades a publishable key for a visitor token (an anonymous session, sent
back as ``X-Anonymous-Token``, or ``?anonymous_token=`` on the event stream); every other route
needs that token, and answers only the visitor's own conversations and runs. ``POST messages/``
also takes a multipart form with ``files`` parts when the widget's owner allows files
(``runtime.channels.files``). Refusals are ``{"error": {"code", "message", "fields"}}`` with the
status the code implies, never a 500.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from runtime import conf, selectors
from runtime.api.errors import error_body, error_response, exception_handler
from runtime.api.parsers import SafeJSONParser
from runtime.api.permissions import AnonymousSessionAuthentication, Caller, session_for_token
from runtime.api.serializers import ErrorSerializer
from runtime.api.streams import async_event_stream
from runtime.api.uploads import run_request_data
from runtime.attachments import split_attachments
from runtime.channels.cors import own_origin, visitor_token
from runtime.channels.files import attachment_limits, widget_body_check
from runtime.channels.models import WidgetChannel, WidgetFeedback
from runtime.channels.services import ChannelError
from runtime.channels.visitors import (
    channel_for_session,
    origin_ok,
    visitor_session_mint,
    visitor_session_refresh,
    widget_feedback_set,
    widget_message_send,
)
from runtime.models import AgentConversation, AgentEvent, AgentMessage, AgentRun, RunStatus


class WidgetSessionMintThrottle(SimpleRateThrottle):
    """Visitor tokens one address may mint (``WIDGET_SESSION_MINT_RATE``), in Django's cache."""

    scope = "widget_session_mint"

    def get_rate(self) -> str:
        return conf.setting("WIDGET_SESSION_MINT_RATE")

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def widget_config(channel: WidgetChannel) -> dict[str, Any]:
    """What the widget shows; nothing about the agent beyond it (no key, no model, no owner)."""
    return {
        "title": channel.title,
        "colour": channel.colour,
        "position": channel.position,
        "greeting": channel.greeting,
        "suggested_questions": channel.suggested_questions,
        "show_sources": channel.show_sources,
        # what a visitor may attach to a message, or None (no attach button)
        "attachments": _attachments_config(channel),
    }


def _attachments_config(channel: WidgetChannel) -> dict[str, Any] | None:
    limits = attachment_limits(channel)
    if limits is None:
        return None
    return {key: limits[key] for key in ("max_files", "max_bytes", "max_size")}


def session_body(session: Any, channel: WidgetChannel) -> dict[str, Any]:
    visitor = (session.metadata or {}).get("visitor") or None
    latest = None
    if visitor:
        # an identified visitor on another device picks up where they left off
        latest = (
            AgentConversation.objects.filter(anonymous_session_id=session.pk, user__isnull=True)
            .order_by("-updated_at")
            .values_list("pk", flat=True)
            .first()
        )
    return {
        "token": session.token,
        "expires_at": session.expires_at.isoformat(),
        "visitor": visitor,
        "latest_conversation_id": str(latest) if latest else None,
        "config": widget_config(channel),
    }


class AttachmentsConfigSerializer(serializers.Serializer):
    max_files = serializers.IntegerField(help_text="Files per message.")
    max_bytes = serializers.IntegerField(help_text="Bytes per file.")
    max_size = serializers.CharField(help_text="The same, for people: 10 MB.")


class WidgetConfigSerializer(serializers.Serializer):
    title = serializers.CharField()
    colour = serializers.CharField()
    position = serializers.CharField()
    greeting = serializers.CharField()
    suggested_questions = serializers.ListField(child=serializers.CharField())
    show_sources = serializers.BooleanField()
    attachments = AttachmentsConfigSerializer(
        allow_null=True, help_text="What a visitor may attach to a message; null: attachments are off."
    )


class VisitorSessionSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send it as X-Anonymous-Token (or ?anonymous_token= on the stream)."
    )
    expires_at = serializers.DateTimeField()
    visitor = serializers.CharField(allow_null=True, help_text="The identified visitor's user id, or null.")
    latest_conversation_id = serializers.UUIDField(
        allow_null=True, help_text="An identified visitor's most recent conversation (any device)."
    )
    config = WidgetConfigSerializer()


class SentSerializer(serializers.Serializer):
    run_id = serializers.UUIDField()
    conversation_id = serializers.UUIDField()


class AttachedFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField()


class WidgetMessageOutSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField(help_text="What was typed (a user message's files are under files).")
    files = AttachedFileSerializer(many=True, help_text="The files attached to a user message.")
    run_id = serializers.UUIDField(allow_null=True)
    rating = serializers.CharField(allow_null=True)
    citations = serializers.ListField(child=serializers.DictField())


class WidgetConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    messages = WidgetMessageOutSerializer(many=True)
    running_run_id = serializers.UUIDField(allow_null=True)


class RatingSerializer(serializers.Serializer):
    run_id = serializers.UUIDField()
    rating = serializers.CharField()


ERRORS = {
    status_code: OpenApiResponse(ErrorSerializer, description=text)
    for status_code, text in {
        400: "Invalid input; `fields` names each bad field.",
        401: "No valid visitor token.",
        403: "Origin not allowed, channel switched off, or agent not published.",
        404: "Unknown key, or not this visitor's.",
        429: "Too many mints from this address, or the visitor's daily limit; see Retry-After.",
    }.items()
}


class WidgetView(APIView):
    """JSON errors; a ``ChannelError`` is answered with its own status and code."""

    parser_classes = [SafeJSONParser]
    authentication_classes = [AnonymousSessionAuthentication]
    permission_classes: list = []

    def get_exception_handler(self):
        return exception_handler

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ChannelError):
            response = Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
            if exc.retry_after:
                response["Retry-After"] = str(exc.retry_after)
            return response
        return super().handle_exception(exc)

    def visitor(self, request: Request) -> tuple[Any, WidgetChannel]:
        """The visitor's session and channel; the browser's Origin must be one the channel allows."""
        session = request.auth
        if session is None:
            raise exceptions.NotAuthenticated(
                "Send the visitor token in X-Anonymous-Token; mint one at /api/widget/session/."
            )
        channel = channel_for_session(session)
        origin = request.headers.get("Origin", "")
        if origin and not origin_ok(channel, origin, own_origin(request)):
            raise ChannelError(403, "origin_not_allowed", f"This website ({origin}) may not use this chat.")
        return session, channel


class SessionMintSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=100, help_text="The channel's publishable key, pk_...")
    user_token = serializers.CharField(
        required=False,
        max_length=4096,
        help_text="Identified visitors: an HS256 JWT (sub = your user's id, exp within a day) signed "
        "with the widget's identity secret.",
    )


class WidgetSessionView(WidgetView):
    """Trade the publishable key for a short-lived visitor token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [WidgetSessionMintThrottle]

    @extend_schema(
        summary="Mint a widget visitor token",
        request=SessionMintSerializer,
        responses={201: VisitorSessionSerializer, **ERRORS},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        incoming = SessionMintSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        session, channel = visitor_session_mint(
            publishable_key=incoming.validated_data["key"],
            origin=request.headers.get("Origin", ""),
            own_origin=own_origin(request),
            user_token=incoming.validated_data.get("user_token"),
        )
        return Response(session_body(session, channel), status=status.HTTP_201_CREATED)


class WidgetSessionRefreshView(WidgetView):
    """A new token (and expiry) for a visitor whose token is still good."""

    @extend_schema(
        summary="Extend a widget visitor token",
        request=None,
        responses={200: VisitorSessionSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        session, channel = self.visitor(request)
        session = visitor_session_refresh(session=session)
        return Response(session_body(session, channel))


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField(trim_whitespace=False, allow_blank=True)
    conversation_id = serializers.UUIDField(required=False, allow_null=True)
    idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=200)


class MessageFormSerializer(MessageSerializer):
    files = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        help_text="One part per file, when the widget's owner allows attachments (see config.attachments).",
    )


class WidgetMessageView(WidgetView):
    """Send the visitor's message: a run of the channel's agent (published version) starts."""

    parser_classes = [SafeJSONParser, MultiPartParser]

    @extend_schema(
        summary="Send a message from the widget",
        description=(
            "JSON, or a `multipart/form-data` form with the same keys and one `files` part per "
            "attached file, when the widget's owner allows attachments (`config.attachments` in the "
            "session says how many and how large). Each file's text follows the message. A file that "
            "cannot be used is a 400 (`invalid_files`) whose `fields.files` names each file and the "
            "reason; attachments switched off is a 403 (`attachments_disabled`); a body larger than "
            "the widget takes is a 413. Nothing is created then."
        ),
        request={"application/json": MessageSerializer, "multipart/form-data": MessageFormSerializer},
        responses={201: SentSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        session, channel = self.visitor(request)
        # before the body is read: a public page must not be able to make us spool a large upload
        widget_body_check(
            channel,
            content_type=request.META.get("CONTENT_TYPE", ""),
            content_length=request.META.get("CONTENT_LENGTH"),
        )
        incoming = MessageSerializer(data=run_request_data(request.data))
        incoming.is_valid(raise_exception=True)
        strays = sorted(name for name in request.FILES if name != "files")
        if strays:
            raise exceptions.ValidationError(
                {name: ["Send each file as a part named files."] for name in strays}
            )
        data = incoming.validated_data
        conversation = None
        if data.get("conversation_id"):
            conversation = selectors.conversation_for_caller(
                caller=Caller(anonymous_session_id=session.pk), conversation_id=data["conversation_id"]
            )
        run = widget_message_send(
            session=session,
            channel=channel,
            text=data["message"],
            files=request.FILES.getlist("files"),
            conversation=conversation,
            idempotency_key=data.get("idempotency_key") or None,
        )
        return Response(
            {"run_id": str(run.pk), "conversation_id": str(run.conversation_id)},
            status=status.HTTP_201_CREATED,
        )


def _citations(run_ids: list[Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for run_id, payload in AgentEvent.objects.filter(run_id__in=run_ids, event_type="retrieval").values_list(
        "run_id", "payload"
    ):
        found[str(run_id)] = [
            {"number": c.get("number"), "document": c.get("document"), "page": c.get("page")}
            for c in (payload or {}).get("citations") or []
            if isinstance(c, dict)
        ]
    return found


def _message_out(message: dict[str, Any], ratings: dict, citations: dict) -> dict[str, Any]:
    # a user message's files: their names for the widget, their text stays with the model
    said = split_attachments(message["content"]) if message["role"] == "user" else None
    return {
        "role": message["role"],
        "content": said.text if said else message["content"],
        "files": [{"name": f.name, "size": f.size} for f in said.files] if said else [],
        "run_id": str(message["run_id"]) if message["run_id"] else None,
        "rating": {1: "up", -1: "down"}.get(ratings.get(message["run_id"])),
        "citations": citations.get(str(message["run_id"]), []),
    }


class WidgetConversationView(WidgetView):
    """The visitor's conversation as the widget shows it: questions and final answers."""

    @extend_schema(
        summary="A widget conversation's messages", responses={200: WidgetConversationSerializer, **ERRORS}
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        session, channel = self.visitor(request)
        conversation = selectors.conversation_for_caller(
            caller=Caller(anonymous_session_id=session.pk), conversation_id=conversation_id
        )
        messages = (
            AgentMessage.objects.filter(conversation=conversation, role__in=["user", "assistant"])
            .filter(Q(run__isnull=True) | Q(run__status=RunStatus.SUCCEEDED) | Q(role="user"))
            .exclude(role="assistant", content__isnull=True)
            .order_by("seq")
            .values("role", "content", "run_id")[:500]
        )
        run_ids = [m["run_id"] for m in messages if m["role"] == "assistant" and m["run_id"]]
        ratings = dict(WidgetFeedback.objects.filter(run_id__in=run_ids).values_list("run_id", "rating"))
        citations = _citations(run_ids) if channel.show_sources else {}
        unfinished = (
            AgentRun.objects.filter(
                conversation=conversation, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
            )
            .order_by("-created_at")
            .values_list("pk", flat=True)
            .first()
        )
        return Response(
            {
                "id": str(conversation.pk),
                "messages": [
                    _message_out(m, ratings, citations)
                    for m in messages
                    if isinstance(m["content"], str) and m["content"]
                ],
                # a reply still being written when the page was reloaded: the widget streams it
                "running_run_id": str(unfinished) if unfinished else None,
            }
        )


class FeedbackSerializer(serializers.Serializer):
    run_id = serializers.UUIDField()
    rating = serializers.CharField()


class WidgetFeedbackView(WidgetView):
    """Thumbs up or down on one answer."""

    @extend_schema(
        summary="Rate an answer", request=FeedbackSerializer, responses={200: RatingSerializer, **ERRORS}
    )
    def post(self, request: Request) -> Response:
        session, channel = self.visitor(request)
        incoming = FeedbackSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        run = selectors.run_for_caller(
            caller=Caller(anonymous_session_id=session.pk), run_id=incoming.validated_data["run_id"]
        )
        feedback = widget_feedback_set(
            session=session, channel=channel, run=run, rating=incoming.validated_data["rating"]
        )
        return Response({"run_id": str(run.pk), "rating": "up" if feedback.rating > 0 else "down"})


def widget_stream(request: HttpRequest, run_id: str) -> HttpResponse:
    """The run's event stream (the runtime's own SSE view), for a visitor on an allowed origin."""
    origin = request.headers.get("Origin", "")
    token = visitor_token(request)
    if token:
        try:
            session = session_for_token(token)
            channel = channel_for_session(session)
        except exceptions.AuthenticationFailed as exc:
            return error_response(401, "authentication_failed", str(exc.detail))
        except ChannelError as exc:
            return error_response(exc.status, exc.code, exc.message)
        if origin and not origin_ok(channel, origin, own_origin(request)):
            return error_response(
                403, "origin_not_allowed", f"This website ({origin}) may not use this chat."
            )
    # Visitors only: on this server's own origin (the Publish page's preview) the browser also
    # sends the builder's session cookie, which the stream would otherwise take first.
    request.user = AnonymousUser()
    return async_event_stream(request, run_id)
