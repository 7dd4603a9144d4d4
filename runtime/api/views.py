"""The REST API's base classes; a host project subclasses them and mounts them.

    class AgentRunViewSet(BaseAgentRunViewSet):
        permission_classes = [IsAuthenticated]

Authentication and permissions are the host project's ``REST_FRAMEWORK`` defaults unless a
subclass sets them (as the original package's setup guide relies on); ``runtime/api/urls.py``
sets ours. Whatever lets a request through, a run still belongs to a signed-in user or an
anonymous session, so a request with neither is a 401.

Every object is looked up through one selector per resource that answers 404
for anything the caller does not own, so ids cannot be probed.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from runtime import selectors
from runtime.api import serializers as s
from runtime.api.credentials import CachedTokenAuthentication
from runtime.api.errors import exception_handler
from runtime.api.parsers import SafeJSONParser
from runtime.api.permissions import AnonymousSessionAuthentication, Caller, IsAuthenticatedOrAnonymousSession
from runtime.api.services import conversation_delete, conversation_rename
from runtime.api.streams import async_event_stream, sync_event_stream
from runtime.api.uploads import attach_files, run_request_data
from runtime.channels.auth import ApiKeyAuthentication, ApiKeyRateThrottle, BudgetRefused
from runtime.channels.budget import BudgetExceeded, reserve_for_run
from runtime.channels.identity import SESSION_KEY
from runtime.llm import list_models
from runtime.models import AgentConversation, AgentRun, RunStatus
from runtime.policy import unknown_agent
from runtime.services import conversation_create, run_cancel, run_create, run_retry

__all__ = [
    "BaseAgentConversationViewSet",
    "BaseAgentRunViewSet",
    "ModelListView",
    "async_event_stream",
    "sync_event_stream",
]

# What runtime/api/urls.py mounts; the base classes use the host's REST_FRAMEWORK defaults.
DEFAULT_AUTHENTICATION_CLASSES = [
    CachedTokenAuthentication,
    SessionAuthentication,
    AnonymousSessionAuthentication,
    ApiKeyAuthentication,
]
DEFAULT_PERMISSION_CLASSES = [IsAuthenticatedOrAnonymousSession]
# Only API keys are limited here (their requests per minute); other callers pass.
DEFAULT_THROTTLE_CLASSES = [ApiKeyRateThrottle]
ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Invalid input; `fields` names each bad field."),
    401: OpenApiResponse(s.ErrorSerializer, description="No valid credentials."),
    404: OpenApiResponse(s.ErrorSerializer, description="Not found, or not yours."),
}


class ApiPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class ApiView:
    """What every API view shares: JSON errors and the caller."""

    # Bad JSON (runaway nesting, lone surrogates, NULs) is a 400 naming the field, whatever the
    # host project's parser defaults are.
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]

    def get_exception_handler(self):  # noqa: D102 - DRF hook
        return exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # PostgreSQL cannot compare text with a NUL character: a filter holding one is bad input.
        for name, value in request.query_params.items():
            if "\x00" in value:
                raise exceptions.ValidationError(
                    {name: ["Remove the NUL character (\\u0000) from this value."]}
                )

    def get_caller(self) -> Caller:
        return Caller.from_request(self.request)

    def start_run(self, caller: Caller, agent_key: str, create_run: Any) -> tuple[AgentRun, bool]:
        """``create_run()``, and for an API key: only its agents, within the agent's daily budget.
        A web widget's visitor token starts runs only through the widget (its limits apply there)."""
        session = getattr(self.request, "auth", None)
        if caller.anonymous_session_id is not None and (getattr(session, "metadata", None) or {}).get(
            SESSION_KEY
        ):
            raise exceptions.PermissionDenied(
                "This is a web widget's visitor token: it starts runs only through the widget "
                "(/api/widget/messages/), where the widget's limits apply."
            )
        if caller.api_key is None:
            return create_run()

        if agent_key not in caller.api_key.agent_keys:
            raise unknown_agent(agent_key)  # like an unknown key: a key's scope does not leak
        try:
            return reserve_for_run(agent_key=agent_key, create_run=create_run)
        except BudgetExceeded as exc:
            raise BudgetRefused(exc) from None

    def is_schema_view(self) -> bool:
        return getattr(self, "swagger_fake_view", False)


@extend_schema_view(
    list=extend_schema(
        summary="The caller's runs, newest first",
        parameters=[
            OpenApiParameter("agent_key", str, description="Only runs of this agent."),
            OpenApiParameter(
                "conversation_id", OpenApiTypes.UUID, description="Only runs of this conversation."
            ),
            OpenApiParameter(
                "status", str, enum=list(RunStatus.values), description="Only runs in this status."
            ),
        ],
        responses={200: s.RunSerializer(many=True), 401: ERRORS[401]},
    ),
    retrieve=extend_schema(summary="One run", responses={200: s.RunSerializer, **ERRORS}),
)
class BaseAgentRunViewSet(ApiView, viewsets.GenericViewSet):
    serializer_class = s.RunSerializer
    pagination_class = ApiPagination
    lookup_url_kwarg = "pk"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if self.is_schema_view():
            return AgentRun.objects.none()
        queryset = selectors.runs_for_caller(caller=self.get_caller())
        params = self.request.query_params
        if params.get("agent_key"):
            queryset = queryset.filter(agent_key=params["agent_key"])
        if params.get("conversation_id"):
            conversation = selectors.conversation_for_caller(
                caller=self.get_caller(), conversation_id=params["conversation_id"]
            )
            queryset = queryset.filter(conversation=conversation)
        if params.get("status"):
            if params["status"] not in RunStatus.values:
                raise exceptions.ValidationError({"status": [f"Use one of {', '.join(RunStatus.values)}."]})
            queryset = queryset.filter(status=params["status"])
        return queryset

    def get_object(self) -> AgentRun:
        run = selectors.run_for_caller(caller=self.get_caller(), run_id=self.kwargs["pk"])
        self.check_object_permissions(self.request, run)
        return run

    def list(self, request: Request, format: str | None = None) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str, format: str | None = None) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        summary="Start a run",
        description=(
            "Stores the messages in the conversation (created when `conversation_id` is absent) and queues "
            "the run. Repeating an `idempotency_key` returns the run it first created, with status 200. "
            "Files: send the same keys as a `multipart/form-data` form (`messages`, `metadata` and "
            "`params` as JSON text) with one `files` part per file; each file's text is added to the "
            "last user message. A file that cannot be used is a 400 naming `files`, the file and the "
            "reason, and nothing is created."
        ),
        request=s.RunCreateSerializer,
        responses={201: s.RunSerializer, 200: s.RunSerializer, **ERRORS},
    )
    def create(self, request: Request, format: str | None = None) -> Response:
        incoming = s.RunCreateSerializer(data=run_request_data(request.data))
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        caller = self.get_caller()
        conversation = None
        if data.get("conversation_id"):
            # someone else's conversation is 404 like a missing one
            conversation = selectors.conversation_for_caller(
                caller=caller, conversation_id=data["conversation_id"]
            )
        # read only once the request is otherwise good: parsing a document is the costly part
        messages = attach_files(data["messages"], request.FILES)
        metadata = data.get("metadata") or {}
        if caller.api_key is not None:
            metadata = {**metadata, "channel": "api", "api_key_id": str(caller.api_key.pk)}
        run, created = self.start_run(
            caller,
            data["agent_key"],
            lambda: run_create(
                agent_key=data["agent_key"],
                messages=messages,
                user=caller.user,
                anonymous_session_id=caller.anonymous_session_id,
                conversation=conversation,
                params=data.get("params") or {},
                metadata=metadata,
                idempotency_key=data.get("idempotency_key") or None,
                model=data.get("model") or "",
                channel_caller=caller.channel_caller,
            ),
        )
        return Response(
            self.get_serializer(run).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        summary="Cancel a run",
        description="A queued run is cancelled at once; a running one within a heartbeat. 409 if it has finished.",
        request=None,
        responses={200: s.RunSerializer, 409: OpenApiResponse(s.ErrorSerializer), **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str, format: str | None = None) -> Response:
        run = run_cancel(run=self.get_object())
        return Response(self.get_serializer(run).data)

    @extend_schema(
        summary="Run again with the same input",
        request=None,
        responses={201: s.RunSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str, format: str | None = None) -> Response:
        run = self.get_object()
        new_run, _ = self.start_run(self.get_caller(), run.agent_key, lambda: (run_retry(run=run), True))
        return Response(self.get_serializer(new_run).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="The caller's conversations, most recently active first",
        parameters=[OpenApiParameter("agent_key", str, description="Only conversations with this agent.")],
        responses={200: s.ConversationSerializer(many=True), 401: ERRORS[401]},
    ),
    create=extend_schema(
        summary="Start an empty conversation",
        request=s.ConversationCreateSerializer,
        responses={201: s.ConversationSerializer, **ERRORS},
    ),
    retrieve=extend_schema(
        summary="A conversation with one page of its messages",
        parameters=[
            OpenApiParameter("limit", int, description="Messages per page (1-500, default 50)."),
            OpenApiParameter("offset", int, description="Messages to skip (default 0)."),
        ],
        responses={200: s.ConversationDetailSerializer, **ERRORS},
    ),
    partial_update=extend_schema(
        summary="Rename a conversation",
        request=s.ConversationUpdateSerializer,
        responses={200: s.ConversationSerializer, **ERRORS},
    ),
    update=extend_schema(
        summary="Rename a conversation",
        request=s.ConversationUpdateSerializer,
        responses={200: s.ConversationSerializer, **ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete a conversation, its messages and runs", responses={204: None, **ERRORS}
    ),
)
class BaseAgentConversationViewSet(
    ApiView,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.ConversationSerializer
    pagination_class = ApiPagination
    lookup_value_regex = "[^/]+"
    # True: a message page's offset counts back from the newest message (a chat window's order).
    message_pages_from_newest = False

    def get_queryset(self):
        if self.is_schema_view():
            return AgentConversation.objects.none()
        return selectors.conversations_for_caller(
            caller=self.get_caller(), agent_key=self.request.query_params.get("agent_key") or None
        )

    def get_object(self) -> AgentConversation:
        conversation = selectors.conversation_for_caller(
            caller=self.get_caller(), conversation_id=self.kwargs["pk"]
        )
        self.check_object_permissions(self.request, conversation)
        return conversation

    def create(self, request: Request, format: str | None = None) -> Response:
        incoming = s.ConversationCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        caller = self.get_caller()
        if caller.api_key is not None:
            raise exceptions.PermissionDenied(
                "An API key starts a conversation by starting a run without conversation_id."
            )
        conversation = conversation_create(
            agent_key=incoming.validated_data["agent_key"],
            user=caller.user,
            anonymous_session_id=caller.anonymous_session_id,
            title=incoming.validated_data["title"],
            metadata=incoming.validated_data["metadata"],
        )
        return Response(s.ConversationSerializer(conversation).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str, format: str | None = None) -> Response:
        conversation = self.get_object()
        query = s.MessagePageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit, offset = query.validated_data["limit"], query.validated_data["offset"]
        messages, total = selectors.conversation_messages(
            conversation=conversation, limit=limit, offset=offset, from_newest=self.message_pages_from_newest
        )
        page = {"messages": messages, "total": total, "limit": limit, "offset": offset}
        return Response(s.ConversationDetailSerializer(conversation, context={"page": page}).data)

    def update(self, request: Request, pk: str, format: str | None = None, partial: bool = False) -> Response:
        conversation = self.get_object()
        incoming = s.ConversationUpdateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        conversation = conversation_rename(conversation=conversation, title=incoming.validated_data["title"])
        return Response(s.ConversationSerializer(conversation).data)

    def partial_update(self, request: Request, pk: str, format: str | None = None) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str, format: str | None = None) -> Response:
        conversation_delete(conversation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelListView(ApiView, APIView):
    """The models the configured providers offer, and the default one."""

    @extend_schema(summary="Available models", responses={200: s.ModelListSerializer, 401: ERRORS[401]})
    def get(self, request: Request, format: str | None = None) -> Response:
        data: dict[str, Any] = list_models()
        return Response(s.ModelListSerializer(data).data)
