"""The knowledge bases of an agent or a system over REST: list, attach, change, detach.

``/api/agents/<id>/knowledge/`` and ``/api/systems/<id>/knowledge/`` (``builder/api_urls.py``).
The same rules as the builder's *Knowledge* page, from the same places: who may do what from
``builder/access.py`` (viewers of the agent or system list, editors attach, change and detach;
one they may not see is a 404, a role too low a 403 saying which is needed), and what an
attachment may be from ``builder/services/knowledge.py`` (a base they can see, at least as
viewer; mode, top-k and threshold in range; not attached twice), each refusal a 400 naming the
field, changing nothing. Attachments of bases the caller cannot see are neither listed nor
touched. Staff users only, by session or ``Authorization: Token``, like ``/api/knowledge/``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from builder.access import Perms, get_agent_for_user, get_system_for_user, refusal, visible_to
from builder.models import KNOWLEDGE_MODES
from builder.schema import ConfigError
from builder.services.knowledge import (
    MAX_TOP_K,
    knowledge_link_add,
    knowledge_link_count,
    knowledge_link_remove,
    knowledge_link_update,
    visible_knowledge_links,
)
from rag.models import KnowledgeBase
from runtime.api.credentials import CachedTokenAuthentication
from runtime.api.parsers import SafeJSONParser
from runtime.api.serializers import ErrorSerializer

# Ranges are checked by the service (one place for the rules, one message per field); these
# fields only read the type, and tell the schema the range.


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_TOP_K})
class TopKField(serializers.IntegerField):
    pass


@extend_schema_field({"type": "number", "format": "double", "minimum": 0, "maximum": 1})
class ThresholdField(serializers.FloatField):
    pass


class KnowledgeLinkSerializer(serializers.Serializer):
    knowledge_base = serializers.UUIDField(
        source="knowledge_base.public_id",
        help_text="The id of a knowledge base you can see (at least as a viewer), from /api/knowledge/bases/.",
    )
    name = serializers.CharField(source="knowledge_base.name", read_only=True)
    mode = serializers.ChoiceField(
        choices=KNOWLEDGE_MODES,
        default="auto",
        help_text="auto: passages retrieved for every user message go into the prompt; tool: the model "
        "calls search_knowledge when it needs to; both.",
    )
    top_k = TopKField(default=4, help_text=f"Passages retrieved per question, 1 to {MAX_TOP_K}.")
    score_threshold = ThresholdField(
        default=0.0,
        help_text="Minimum vector similarity, 0 to 1: less similar passages are left out (0 keeps all).",
    )
    created_at = serializers.DateTimeField(read_only=True)


class KnowledgeLinkChangeSerializer(KnowledgeLinkSerializer):
    """A change: any of mode, top_k and score_threshold; the base itself cannot change."""

    knowledge_base = serializers.UUIDField(source="knowledge_base.public_id", read_only=True)


_GETTERS = {"agent": get_agent_for_user, "system": get_system_for_user}
_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input: `fields` names each field and what to do."),
    401: OpenApiResponse(ErrorSerializer, description="No valid credentials."),
    403: OpenApiResponse(
        ErrorSerializer, description="Not staff, or your role on the agent or system is too low (says which)."
    ),
    404: OpenApiResponse(
        ErrorSerializer, description="No such agent or system (or attached base) that you can see."
    ),
}
_READ_ERRORS = {code: _ERRORS[code] for code in (401, 403, 404)}


def _config_error(exc: ConfigError) -> ValidationError:
    return ValidationError({field: [message] for field, message in exc.errors.items()})


class AttachmentApiView(APIView):
    authentication_classes = [CachedTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAdminUser]
    parser_classes = [SafeJSONParser]
    kind = "agent"  # or "system"

    def target(self, public_id: Any, *, edit: bool = False) -> tuple[Model, Perms]:
        target, perms = _GETTERS[self.kind](self.request.user, public_id)
        if edit and not perms.edit:
            raise PermissionDenied(refusal(perms, target, "edit"))
        return target, perms

    def link(self, target: Model, base_id: Any) -> Model:
        link = visible_knowledge_links(target, self.request.user).filter(knowledge_base__public_id=base_id)
        found = link.first()
        if found is None:
            raise NotFound(
                f"No knowledge base with this id that you can see is attached to this {self.kind}."
            )
        return found


# How many attached knowledge bases the caller cannot see (and so are not in the list): an editor
# then knows the agent uses more than the list shows, as the builder's Knowledge page says.
HIDDEN_HEADER = "X-Hidden-Knowledge-Bases"


class AttachmentListView(AttachmentApiView):
    def get(self, request, public_id):
        target, _perms = self.target(public_id)
        links = list(visible_knowledge_links(target, request.user).order_by("knowledge_base__name", "pk"))
        response = Response(KnowledgeLinkSerializer(links, many=True).data)
        response[HIDDEN_HEADER] = str(knowledge_link_count(target) - len(links))
        return response

    def post(self, request, public_id):
        target, _perms = self.target(public_id, edit=True)
        serializer = KnowledgeLinkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        base_id = data.pop("knowledge_base")["public_id"]
        base = visible_to(request.user, KnowledgeBase.objects.all()).filter(public_id=base_id).first()
        if base is None:  # unknown and not shared look the same
            raise ValidationError(
                {
                    "knowledge_base": [
                        f"There is no knowledge base with the id {base_id} that you can see; "
                        "ask its owner to share it with you."
                    ]
                }
            )
        try:
            link = knowledge_link_add(target=target, user=request.user, knowledge_base=base, **data)
        except ConfigError as exc:
            raise _config_error(exc) from None
        return Response(KnowledgeLinkSerializer(link).data, status=status.HTTP_201_CREATED)


class AttachmentDetailView(AttachmentApiView):
    def get(self, request, public_id, base_id):
        target, _perms = self.target(public_id)
        return Response(KnowledgeLinkSerializer(self.link(target, base_id)).data)

    def patch(self, request, public_id, base_id):
        target, _perms = self.target(public_id, edit=True)
        link = self.link(target, base_id)
        serializer = KnowledgeLinkChangeSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            knowledge_link_update(link=link, user=request.user, **serializer.validated_data)
        except ConfigError as exc:
            raise _config_error(exc) from None
        return Response(KnowledgeLinkSerializer(link).data)

    def delete(self, request, public_id, base_id):
        target, _perms = self.target(public_id, edit=True)
        try:
            knowledge_link_remove(link=self.link(target, base_id), user=request.user)
        except ConfigError as exc:
            raise _config_error(exc) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


def _schemas(kind: str) -> tuple[Any, Any]:
    """The schema of each route for ``kind`` ("agent" or "system"): tags and summaries."""
    label = "an agent" if kind == "agent" else "a system"
    tags = [f"{kind}s: knowledge"]
    collection = extend_schema_view(
        get=extend_schema(
            tags=tags,
            summary=f"The knowledge bases of {label} (those you can see) and how each is used",
            responses={200: KnowledgeLinkSerializer(many=True), **_READ_ERRORS},
            parameters=[
                OpenApiParameter(
                    HIDDEN_HEADER,
                    int,
                    OpenApiParameter.HEADER,
                    response=[200],
                    description=f"How many more knowledge bases are attached to {label} that you "
                    "cannot see (they are not in the list; ask their owner to share them).",
                )
            ],
        ),
        post=extend_schema(
            tags=tags,
            summary=f"Attach a knowledge base to {label} (editors)",
            request=KnowledgeLinkSerializer,
            responses={201: KnowledgeLinkSerializer, **_ERRORS},
        ),
    )
    detail = extend_schema_view(
        get=extend_schema(
            tags=tags,
            summary=f"One knowledge base attached to {label}",
            responses={200: KnowledgeLinkSerializer, **_READ_ERRORS},
        ),
        patch=extend_schema(
            tags=tags,
            summary=f"Change how {label} uses an attached knowledge base (editors)",
            request=KnowledgeLinkChangeSerializer,
            responses={200: KnowledgeLinkSerializer, **_ERRORS},
        ),
        delete=extend_schema(
            tags=tags,
            summary=f"Detach a knowledge base from {label} (editors); the base and its documents stay",
            responses={204: None, **_READ_ERRORS},
        ),
    )
    return collection, detail


_AGENT, _SYSTEM = _schemas("agent"), _schemas("system")


@_AGENT[0]
class AgentKnowledgeListView(AttachmentListView):
    kind = "agent"


@_AGENT[1]
class AgentKnowledgeDetailView(AttachmentDetailView):
    kind = "agent"


@_SYSTEM[0]
class SystemKnowledgeListView(AttachmentListView):
    kind = "system"


@_SYSTEM[1]
class SystemKnowledgeDetailView(AttachmentDetailView):
    kind = "system"
