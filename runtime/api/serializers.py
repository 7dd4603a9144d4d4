"""Request and response shapes of the API (also the OpenAPI schema's source)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from runtime.models import AgentConversation, AgentMessage, AgentRun, RunStatus

MESSAGE_ROLES = ("system", "user", "assistant", "tool")


class InputMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=MESSAGE_ROLES)
    content = serializers.JSONField(
        required=False, allow_null=True, help_text="Text, or a list of content parts in the neutral format."
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    tool_call_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)


@extend_schema_field(InputMessageSerializer(many=True))
class MessageListField(serializers.Field):
    """The run's input messages. Each one is checked by ``runtime.services.validate_messages``,
    the one set of rules for every way a run starts (an error names e.g. ``messages[0].role``);
    a nested serializer here cost a third of ``POST runs/`` and said the same."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise serializers.ValidationError(
                'Send a list of messages, e.g. [{"role": "user", "content": "Hi"}].'
            )
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class RunCreateSerializer(serializers.Serializer):
    agent_key = serializers.CharField(max_length=200)
    conversation_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Continue this conversation; a new one is created when absent.",
    )
    messages = MessageListField()
    params = serializers.DictField(required=False, default=dict)
    metadata = serializers.DictField(required=False, default=dict)
    idempotency_key = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=200,
        help_text="Repeating a key returns the run it first created (status 200 instead of 201).",
    )
    model = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = serializers.DecimalField(
        max_digits=12,
        decimal_places=6,
        allow_null=True,
        help_text="Estimated, in US dollars; null when a model the run used has no known price.",
    )
    unpriced_tokens = serializers.IntegerField(help_text="Tokens spent on models with no known price.")


# Declared field by field rather than as a ModelSerializer: that one rebuilt its fields from
# the model on every response, a third of the cost of POST runs/.
class RunSerializer(serializers.Serializer):
    """A run: its status, output or error, and token usage."""

    id = serializers.UUIDField(read_only=True)
    conversation_id = serializers.UUIDField(read_only=True, allow_null=True)
    parent_run_id = serializers.UUIDField(read_only=True, allow_null=True)
    agent_key = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=RunStatus.choices, read_only=True)
    model = serializers.CharField(read_only=True)
    attempt = serializers.IntegerField(read_only=True)
    output = serializers.JSONField(read_only=True, allow_null=True)
    error = serializers.JSONField(read_only=True, allow_null=True)
    metadata = serializers.JSONField(read_only=True)
    usage = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    cancel_requested_at = serializers.DateTimeField(read_only=True, allow_null=True)

    @extend_schema_field(UsageSerializer)
    def get_usage(self, run: AgentRun) -> dict[str, Any]:
        return {
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "total_tokens": run.total_tokens,
            "cost_usd": str(run.cost_usd) if run.cost_known else None,
            "unpriced_tokens": run.unpriced_tokens,
        }


class ConversationSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentConversation
        fields = ["id", "agent_key", "title", "metadata", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ConversationCreateSerializer(serializers.Serializer):
    agent_key = serializers.CharField(max_length=200)
    title = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")
    metadata = serializers.DictField(required=False, default=dict)


class ConversationUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(allow_blank=True, max_length=300)


class MessageSerializer(serializers.ModelSerializer):
    run_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = AgentMessage
        fields = [
            "seq",
            "role",
            "content",
            "tool_calls",
            "tool_call_id",
            "name",
            "agent_key",
            "run_id",
            "created_at",
        ]
        read_only_fields = fields


class MessagePageQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=500)
    offset = serializers.IntegerField(required=False, default=0, min_value=0)


class ConversationDetailSerializer(ConversationSerializer):
    """A conversation with one page of its messages."""

    messages = serializers.SerializerMethodField()
    total = serializers.SerializerMethodField()
    has_more = serializers.SerializerMethodField()
    limit = serializers.SerializerMethodField()
    offset = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages", "total", "has_more", "limit", "offset"]

    def _page(self) -> dict[str, Any]:
        return self.context["page"]

    def get_messages(self, obj: AgentConversation) -> list[dict[str, Any]]:
        return MessageSerializer(self._page()["messages"], many=True).data

    def get_total(self, obj: AgentConversation) -> int:
        return self._page()["total"]

    def get_has_more(self, obj: AgentConversation) -> bool:
        page = self._page()
        return page["offset"] + len(page["messages"]) < page["total"]

    def get_limit(self, obj: AgentConversation) -> int:
        return self._page()["limit"]

    def get_offset(self, obj: AgentConversation) -> int:
        return self._page()["offset"]


class ModelInfoSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    provider = serializers.CharField()
    supports_tools = serializers.BooleanField()
    supports_streaming = serializers.BooleanField()
    is_demo = serializers.BooleanField(required=False)


class ModelListSerializer(serializers.Serializer):
    models = ModelInfoSerializer(many=True)
    default = serializers.CharField(allow_null=True)


class EventSerializer(serializers.Serializer):
    """The JSON in each SSE frame's ``data:`` line."""

    run_id = serializers.UUIDField()
    seq = serializers.IntegerField()
    type = serializers.CharField()
    payload = serializers.DictField()
    ts = serializers.DateTimeField()
    attempt = serializers.IntegerField()


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
