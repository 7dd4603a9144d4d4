"""The runtime's tables: conversations, messages, runs, events, checkpoints, memory.

A run is a row that is also its own queue entry (``status``/``available_at``) and
lease (``lease_owner``/``lease_token``/``lease_expires_at``). Every write a worker
makes after claiming a run is conditioned on ``lease_token``, the fencing token
minted at claim time, so a worker that lost its lease can write nothing.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import connections, models, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from runtime.engine.queue import get_queue
from runtime.fields import EncryptedJSONField
from runtime.messages import append_messages


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


TERMINAL_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT}
)


class AgentConversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="agent_conversations",
    )
    # The anonymous-session model is configurable, so it is referenced by id only.
    anonymous_session_id = models.UUIDField(null=True, blank=True, db_index=True)
    agent_key = models.CharField(max_length=200, db_index=True)
    title = models.CharField(max_length=300, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The agent that currently holds the conversation after a hand-off (blank: agent_key).
    active_agent_key = models.CharField(max_length=200, blank=True)
    # The seq of the newest message: writers bump it to reserve seqs (see runtime.messages).
    last_message_seq = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["user", "-updated_at"]),
            # an agent's conversations, newest message first (the builder's owner's view)
            models.Index(fields=["agent_key", "-updated_at"], name="conversation_agent_recent_idx"),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.agent_key} conversation"

    def get_message_history(self, include_failed_runs: bool = False) -> list[dict]:
        """Every message (user, assistant, tool calls, tool results) in order.

        Messages written by runs that did not succeed are left out unless
        ``include_failed_runs`` is true; messages without a run (user input) stay.
        """
        messages = self.messages.select_related("run").order_by("seq")
        if not include_failed_runs:
            messages = messages.filter(Q(run__isnull=True) | Q(run__status=RunStatus.SUCCEEDED))
        return [message.as_dict() for message in messages]

    def get_last_assistant_message(self) -> dict | None:
        message = (
            self.messages.filter(role="assistant")
            .filter(Q(run__isnull=True) | Q(run__status=RunStatus.SUCCEEDED))
            .order_by("-seq")
            .first()
        )
        return message.as_dict() if message else None

    def usage_totals(self) -> dict:
        totals = self.runs.aggregate(
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            cost=Sum("cost_usd"),
            unpriced_tokens=Sum("unpriced_tokens"),
        )
        return {
            "prompt_tokens": totals["prompt_tokens"] or 0,
            "completion_tokens": totals["completion_tokens"] or 0,
            "cost_usd": totals["cost"] or Decimal("0"),
            "unpriced_tokens": totals["unpriced_tokens"] or 0,
        }


class AgentMessage(models.Model):
    """One message of a conversation, in the provider-neutral format."""

    conversation = models.ForeignKey(AgentConversation, on_delete=models.CASCADE, related_name="messages")
    run = models.ForeignKey(
        "AgentRun", null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=20)
    content = models.JSONField(null=True, blank=True)
    tool_calls = models.JSONField(null=True, blank=True)
    tool_call_id = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=200, blank=True)
    agent_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique")]

    def __str__(self) -> str:
        return f"{self.role} #{self.seq}"

    def as_dict(self) -> dict:
        data: dict = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = self.tool_calls
        if self.tool_call_id:
            data["tool_call_id"] = self.tool_call_id
        if self.name:
            data["name"] = self.name
        return data


class AgentRunManager(models.Manager):
    def create(self, **kwargs):
        """``AgentRun.objects.create(conversation=..., agent_key=..., input={"messages": [...]})``,
        as the original README shows: like ``run_create``, a queued top-level run of a
        conversation stores its input messages in the conversation (so ``get_message_history()``
        has the user's turn) and is enqueued, in one transaction. ``run_create`` is the checked path.
        """
        using = self._db or "default"
        with transaction.atomic(using=using):
            run = super().create(**kwargs)
            if run.status == RunStatus.QUEUED and run.conversation_id and run.parent_run_id is None:
                raw = run.input.get("messages") if isinstance(run.input, dict) else None
                messages = [m for m in raw or [] if isinstance(m, dict)]
                with connections[using].cursor() as cursor:
                    if messages:
                        append_messages(cursor, run.conversation_id, run.pk, messages)
                    get_queue().enqueue(cursor, run)
        return run


class AgentRun(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        AgentConversation, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    parent_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    agent_key = models.CharField(max_length=200, db_index=True)
    # The exact definition a database agent runs: "version:<uuid>" or "draft:<uuid>@<revision>".
    agent_version = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agent_runs"
    )
    anonymous_session_id = models.UUIDField(null=True, blank=True, db_index=True)

    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    # Only ever a user-safe {"code": ..., "message": ...}; details go to the log.
    error = models.JSONField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=4)
    available_at = models.DateTimeField(default=timezone.now)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # Next event sequence number; bumped under the lease in the same transaction as the events.
    next_seq = models.PositiveIntegerField(default=0)

    # "user:<id>", "anon:<uuid>" or "system": idempotency keys are unique per caller.
    caller = models.CharField(max_length=100, default="system")
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: no key

    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    # Tokens spent on models with no known price: cost_usd leaves them out, so a run with
    # any is shown as "price unknown", never as a cost that looks complete.
    unpriced_tokens = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = AgentRunManager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["caller", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_idempotency_per_caller",
            ),
        ]
        indexes = [
            # the claim query: queued runs in available_at order
            models.Index(fields=["available_at"], condition=Q(status="queued"), name="run_queued_idx"),
            # the rescue sweep: running runs by lease expiry
            models.Index(fields=["lease_expires_at"], condition=Q(status="running"), name="run_lease_idx"),
            models.Index(fields=["user", "-created_at"]),
            # the admin's and the builder's run lists, newest first
            models.Index(fields=["-created_at"], name="run_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_key} run {self.id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_known(self) -> bool:
        return self.unpriced_tokens == 0

    @property
    def cost_label(self) -> str:
        """The cost as people read it: "$0.0012", or "price unknown" when any model had none."""
        if self.cost_known:
            return f"${self.cost_usd:.4f}"
        if self.cost_usd:
            return f"${self.cost_usd:.4f} + price unknown for {self.unpriced_tokens:,} tokens"
        return "price unknown"


class AgentEvent(models.Model):
    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, blank=True)
    visibility = models.CharField(max_length=20, default="user")
    attempt = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="event_seq_unique")]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.seq}"

    def as_dict(self) -> dict:
        return {
            "run_id": str(self.run_id),
            "seq": self.seq,
            "type": self.event_type,
            "payload": self.payload,
            "ts": self.created_at.isoformat(),
            "attempt": self.attempt,
        }


class AgentCheckpoint(models.Model):
    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="checkpoints")
    seq = models.PositiveIntegerField()
    state = models.JSONField(default=dict)
    attempt = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="checkpoint_seq_unique")]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} of {self.run_id}"


class MemoryScope(models.TextChoices):
    CONVERSATION = "conversation", "Conversation"
    USER = "user", "User"
    SYSTEM = "system", "System"


class MemoryEntry(models.Model):
    """Shared memory: a key/value an agent remembered, within one scope.

    The scope fields that do not apply are NULL; uniqueness treats NULLs as equal
    (``nulls_distinct=False``) so "one entry per key per scope" really holds.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=20, choices=MemoryScope.choices)
    conversation = models.ForeignKey(
        AgentConversation, null=True, blank=True, on_delete=models.CASCADE, related_name="memory"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="agent_memory"
    )
    system_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: not system scope
    # User scope only: whose agents share it ("owner:<id>" for stored agents, "" for code agents),
    # so what a user told one owner's agent never reaches another owner's agents.
    namespace = models.CharField(max_length=100, blank=True, default="")
    # User scope of a widget's identified visitor (no account here): "<channel id>:<host site's
    # user id>", with ``user`` NULL. "" for everyone else.
    visitor = models.CharField(max_length=300, blank=True, default="")
    key = models.CharField(max_length=200)
    value = models.JSONField()
    agent_key = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        verbose_name_plural = "memory entries"
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "conversation", "user", "visitor", "namespace", "system_key", "key"],
                name="memory_unique_per_scope",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class ProviderCredential(models.Model):
    """A model provider's key or base URL entered in the UI, encrypted like tool secrets.

    The environment variable of the same name wins when it is set (runtime/llm/credentials.py).
    """

    name = models.CharField(max_length=64, unique=True)  # OPENAI_API_KEY, OPENAI_BASE_URL, ...
    value = EncryptedJSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("manage_providers", "Can enter model provider keys")]

    def __str__(self) -> str:
        return self.name


class ModelPrice(models.Model):
    """An operator's price for a model, entered on the model settings page (dollars per million
    tokens). Read by runtime/llm/pricing.py within a few seconds in every process; a price for
    the same name in ``AGENT_MODEL_PRICES`` (the environment) wins."""

    model = models.CharField(
        max_length=200, unique=True, help_text="As agents name it, e.g. openai:my-finetune."
    )
    input_per_million = models.DecimalField(max_digits=12, decimal_places=4)
    output_per_million = models.DecimalField(max_digits=12, decimal_places=4)
    cached_input_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Blank: cached input costs as input.",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return f"price of {self.model}"

    def as_entry(self) -> dict[str, float]:
        """The entry ``pricing.Price.per_million`` reads."""
        entry = {"input": float(self.input_per_million), "output": float(self.output_per_million)}
        if self.cached_input_per_million is not None:
            entry["cached_input"] = float(self.cached_input_per_million)
        return entry


# Channel tables live in their own package; importing them here makes them the runtime app's.
# The API-key channel's tables live with the code that uses them (runtime/channels/).
from runtime.channels.api_key_models import (  # noqa: E402, F401 - registers the models
    AgentBudget,
    AgentDailySpend,
    ApiKey,
    SpendReservation,
)
from runtime.channels.models import WidgetChannel, WidgetFeedback  # noqa: E402, F401
