"""Reads for the owner's view: an agent's (or system's) conversations from every channel, one
conversation as a read-only transcript with its steps, and usage per day.

A conversation's source is read from what the runtime recorded, not from anything a caller sent:
the builder's playground marks its conversations (``metadata.playground``); a run started with an
API key (the REST API or ``/v1``) records ``caller = "apikey:<id>"``; a web widget visitor's run
records ``caller = "anon:<session>"`` and ``metadata.channel = "widget"``. Everything else came
through the REST API (a user's token or an anonymous session).

Every page costs the same number of queries however many conversations it shows: counts,
feedback and the first run's caller are subqueries of the one list query, and the names of API
keys and identified visitors are read in one query each for the whole page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    JSONNull,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from builder.services.playground import Turn, playground_turns
from runtime.api.permissions import anonymous_session_model
from runtime.channels.api_key_models import ApiKey
from runtime.channels.models import WidgetFeedback
from runtime.models import AgentConversation, AgentEvent, AgentMessage, AgentRun

PER_PAGE = 25
MAX_QUERY = 200
USAGE_DAYS = 30

PLAYGROUND, WIDGET, API_KEY, API = "playground", "widget", "api_key", "api"
SOURCES = ((PLAYGROUND, "Playground"), (WIDGET, "Web widget"), (API_KEY, "API key"), (API, "API"))
SOURCE_LABELS = dict(SOURCES)
# What the transcript shows behind its toggle: the events of a run that are steps, not the answer.
STEP_TYPES = (
    "tool.call",
    "tool.result",
    "sub_agent.start",
    "sub_agent.end",
    "retrieval",
    "run.retrying",
    "run.failed",
    "run.timed_out",
    "error",
)


@dataclass(frozen=True)
class Filters:
    q: str = ""
    source: str = ""
    since: date | None = None
    until: date | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, params: Any) -> Filters:
        """The list's filters from ``request.GET``; a bad date is named, never a 500."""
        errors: dict[str, str] = {}
        q = (params.get("q") or "").replace("\x00", "").strip()[:MAX_QUERY]
        source = params.get("source") or ""
        if source not in SOURCE_LABELS:
            if source:
                errors["source"] = "Pick a source from the list."
            source = ""
        dates: dict[str, date | None] = {}
        for name, label in (("since", "From"), ("until", "To")):
            raw = (params.get(name) or "").strip()
            dates[name] = None
            if raw:
                try:
                    dates[name] = date.fromisoformat(raw)
                except ValueError:
                    errors[name] = f"{label}: write the date as YYYY-MM-DD, e.g. 2026-01-31."
        since, until = dates["since"], dates["until"]
        if since and until and since > until:
            errors["until"] = "To: pick a day on or after the From day."
            until = None
        return cls(q=q, source=source, since=since, until=until, errors=errors)

    @property
    def active(self) -> bool:
        return bool(self.q or self.source or self.since or self.until)


def _first_run(column: str) -> Subquery:
    runs = AgentRun.objects.filter(conversation=OuterRef("pk"), parent_run__isnull=True).order_by(
        "created_at"
    )
    return Subquery(runs.values(column)[:1])


def _feedback(rating: int) -> Coalesce:
    rows = (
        WidgetFeedback.objects.filter(run__conversation=OuterRef("pk"), rating=rating)
        .values("run__conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


# What people read: the user's messages and the agent's text answers (not a tool-calling turn's
# empty assistant message, nor tool results).
_SAID = Q(role="user") | (
    Q(role="assistant") & Q(content__isnull=False) & ~Q(content=JSONNull()) & ~Q(content="")
)


def _message_count() -> Coalesce:
    rows = (
        AgentMessage.objects.filter(conversation=OuterRef("pk"))
        .filter(_SAID)
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def _runs_where(**lookups: Any) -> Q:
    runs = AgentRun.objects.filter(conversation=OuterRef("pk"), parent_run__isnull=True, **lookups)
    return Q(Exists(runs))


def _source_q(source: str) -> Q:
    """Conversations from ``source``. A conversation's runs all come from one channel (a widget
    visitor's or a key's conversation is theirs alone), so "has such a run" is "started there";
    as semi-joins PostgreSQL answers these for 10,000 conversations in one pass over the runs."""
    playground = Q(metadata__contains={"playground": True})
    key = _runs_where(caller__startswith="apikey:")
    widget = _runs_where(metadata__contains={"channel": WIDGET}, caller__startswith="anon:")
    return {
        PLAYGROUND: playground,
        API_KEY: ~playground & key,
        WIDGET: ~playground & widget,  # its runs' caller is "anon:", so never a key's
        API: ~playground & ~key & ~widget,
    }[source]


def _source_case() -> Case:
    return Case(
        *(When(_source_q(source), then=Value(source)) for source in (PLAYGROUND, API_KEY, WIDGET)),
        default=Value(API),
    )


def conversations_of(*, key: str, filters: Filters) -> QuerySet[AgentConversation]:
    """The conversations of the agent or system ``key``, newest message first, filtered."""
    queryset = AgentConversation.objects.filter(agent_key=key)
    if filters.source:
        queryset = queryset.filter(_source_q(filters.source))
    if filters.since:
        queryset = queryset.filter(updated_at__gte=_day_start(filters.since))
    if filters.until:
        queryset = queryset.filter(updated_at__lt=_day_start(filters.until + timedelta(days=1)))
    if filters.q:
        said = AgentMessage.objects.filter(
            conversation=OuterRef("pk"), role__in=["user", "assistant"], content__icontains=filters.q
        )
        queryset = queryset.filter(Exists(said))
    return queryset.order_by("-updated_at", "-pk")


@dataclass
class Row:
    conversation: AgentConversation
    source: str
    source_label: str
    who: str
    messages: int
    thumbs_up: int
    thumbs_down: int


def _listed(queryset: QuerySet[AgentConversation]) -> QuerySet[AgentConversation]:
    """What a row shows, computed for the rows asked for only."""
    return (
        queryset.select_related("user")
        .annotate(first_caller=_first_run("caller"), source=_source_case())
        .annotate(message_count=_message_count(), thumbs_up=_feedback(1), thumbs_down=_feedback(-1))
    )


def conversation_page(*, key: str, filters: Filters, page_number: Any) -> tuple[Page, list[Row]]:
    """One page of ``conversations_of`` as rows the table shows, in a fixed number of queries:
    the count, the page's ids (cheap at any offset), then those rows with what they show."""
    ids = conversations_of(key=key, filters=filters).values_list("pk", flat=True)
    page = Paginator(ids, PER_PAGE).get_page(page_number)
    wanted = list(page.object_list)
    found = {c.pk: c for c in _listed(AgentConversation.objects.filter(pk__in=wanted))} if wanted else {}
    return page, _rows([found[pk] for pk in wanted if pk in found])


def _rows(conversations: list[AgentConversation]) -> list[Row]:
    """Rows for annotated conversations: two more queries (key names, identified visitors)."""
    key_ids = {c.first_caller.split(":", 1)[1] for c in conversations if c.source == API_KEY}
    key_names = {
        str(pk): name for pk, name in ApiKey.objects.filter(pk__in=key_ids).values_list("pk", "name")
    }
    visitors = _identified_visitors([c.anonymous_session_id for c in conversations if c.source == WIDGET])
    rows = []
    for c in conversations:
        label = SOURCE_LABELS[c.source]
        if c.source == API_KEY:
            label = f"API key “{key_names.get(c.first_caller.split(':', 1)[1], 'revoked or deleted')}”"
        rows.append(
            Row(
                conversation=c,
                source=c.source,
                source_label=label,
                who=_who(c, visitors),
                messages=c.message_count,
                thumbs_up=c.thumbs_up,
                thumbs_down=c.thumbs_down,
            )
        )
    return rows


def _identified_visitors(session_ids: list[Any]) -> dict[Any, str]:
    """Host-site user ids of identified widget visitors, by session (one query for the page)."""
    model = anonymous_session_model()
    ids = [pk for pk in session_ids if pk]
    if model is None or not ids:
        return {}
    rows = model._default_manager.filter(pk__in=ids).values_list("pk", "metadata")
    return {
        pk: str(meta.get("visitor")) for pk, meta in rows if isinstance(meta, dict) and meta.get("visitor")
    }


def _who(conversation: AgentConversation, visitors: dict[Any, str]) -> str:
    if conversation.user is not None:
        user = conversation.user
        return user.get_full_name() or user.get_username()
    if conversation.anonymous_session_id:
        identified = visitors.get(conversation.anonymous_session_id)
        if identified:
            return f"Visitor {identified}"
        return f"Anonymous visitor {str(conversation.anonymous_session_id)[:8]}"
    if conversation.source == API_KEY:
        return "A program using the key"
    return "Unknown"


# -- one conversation ------------------------------------------------------------------------------


@dataclass
class Transcript:
    conversation: AgentConversation
    row: Row
    turns: list[Turn]


def conversation_of(*, key: str, conversation_id: Any) -> Row | None:
    """One conversation of ``key`` as its list row, or None (unknown, or another agent's)."""
    try:
        conversation = _listed(AgentConversation.objects.filter(agent_key=key)).get(pk=conversation_id)
    except (AgentConversation.DoesNotExist, ValueError, TypeError):
        return None
    return _rows([conversation])[0]


def transcript(*, row: Row) -> Transcript:
    """The conversation's turns as the playground renders them, each with its steps (tool calls,
    retrievals, sub-agents, errors) from its run's events and its sub-agents' runs' events."""
    turns = playground_turns(conversation=row.conversation)
    run_ids = [turn.run.pk for turn in turns]
    events = (
        AgentEvent.objects.filter(Q(run_id__in=run_ids) | Q(run__parent_run_id__in=run_ids))
        .filter(event_type__in=STEP_TYPES)
        .select_related("run")
        .order_by("created_at", "seq")
    )
    steps: dict[Any, list[dict[str, Any]]] = {}
    for event in events:
        top = event.run.parent_run_id or event.run_id
        steps.setdefault(top, []).append(_step(event))
    feedback = dict(WidgetFeedback.objects.filter(run_id__in=run_ids).values_list("run_id", "rating"))
    for turn in turns:
        turn.steps = steps.get(turn.run.pk, [])
        turn.feedback = feedback.get(turn.run.pk, 0)
    return Transcript(conversation=row.conversation, row=row, turns=turns)


def _step(event: AgentEvent) -> dict[str, Any]:
    payload = event.payload if isinstance(event.payload, dict) else {}
    kind = event.event_type
    agent = payload.get("sub_agent_key") or ""
    labels = {
        "tool.call": f"Tool call: {payload.get('tool') or payload.get('name') or ''}",
        "tool.result": f"Tool result: {payload.get('tool') or payload.get('name') or ''}",
        "sub_agent.start": f"Agent {agent} starts ({payload.get('invocation_mode') or 'delegate'})",
        "sub_agent.end": f"Agent {agent} finished: {payload.get('status') or ''}",
        "retrieval": f"Knowledge search: {len(payload.get('citations') or [])} passage(s)",
        "run.retrying": "Retried after an error",
        "run.failed": "Failed",
        "run.timed_out": "Timed out",
        "error": "Error",
    }
    return {
        "type": kind,
        "label": labels.get(kind, kind),
        "error": kind in ("run.failed", "run.timed_out", "error"),
        "payload": payload,
        "sub_agent": event.run.parent_run_id is not None,
    }


# -- usage per day -------------------------------------------------------------------------------


@dataclass
class Day:
    day: date
    runs: int = 0
    visitors: int = 0
    tokens: int = 0
    cost: Decimal = Decimal("0")
    unpriced_tokens: int = 0
    errors: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0

    @property
    def cost_label(self) -> str:
        """ "$0.0150", "$0.0150 + price unknown for 2 tokens", or "price unknown for 2 tokens"
        when every token was on a model without a price (never "$0.0000" for those)."""
        if not self.unpriced_tokens:
            return money(self.cost)
        unknown = f"price unknown for {self.unpriced_tokens:,} tokens"
        return f"{money(self.cost)} + {unknown}" if self.cost else unknown


def money(value: Any) -> str:
    """Dollars to four places; a cost too small to show there is "< $0.0001", never "$0.0000"."""
    value = Decimal(value or 0)
    if 0 < value < Decimal("0.0001"):
        return "< $0.0001"
    return f"${value:.4f}"


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def usage_by_day(*, key: str, days: int = USAGE_DAYS, today: date | None = None) -> list[Day]:
    """The last ``days`` UTC days (oldest first) of the top-level runs of ``key``'s conversations:
    runs, distinct visitors (callers), tokens, cost, errors, and widget feedback. Two queries."""
    today = today or timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    runs = AgentRun.objects.filter(
        conversation__agent_key=key, parent_run__isnull=True, created_at__gte=_day_start(first)
    )
    rows = (
        runs.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(
            runs=Count("pk"),
            visitors=Count("caller", distinct=True),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("cost_usd"),
            unpriced=Sum("unpriced_tokens"),
            errors=Count("pk", filter=Q(status__in=["failed", "timed_out"])),
        )
    )
    table = {first + timedelta(days=i): Day(day=first + timedelta(days=i)) for i in range(days)}
    for row in rows:
        day = table.get(row["day"])
        if day is None:
            continue
        day.runs, day.visitors, day.errors = row["runs"], row["visitors"], row["errors"]
        day.tokens = (row["prompt"] or 0) + (row["completion"] or 0)
        day.cost = row["cost"] or Decimal("0")
        day.unpriced_tokens = row["unpriced"] or 0
    feedback = (
        WidgetFeedback.objects.filter(run__in=runs)
        .annotate(day=TruncDate("run__created_at", tzinfo=UTC))
        .values("day")
        .annotate(up=Count("pk", filter=Q(rating__gt=0)), down=Count("pk", filter=Q(rating__lt=0)))
    )
    for row in feedback:
        day = table.get(row["day"])
        if day is not None:
            day.thumbs_up, day.thumbs_down = row["up"], row["down"]
    return list(table.values())


@dataclass
class Chart:
    """One metric as an inline SVG bar chart (no script: the page's CSP allows none inline)."""

    title: str
    unit: str
    bars: list[dict[str, Any]]
    total: str
    width: int
    height: int


CHART_HEIGHT = 120
BAR_WIDTH = 14
BAR_GAP = 4


def chart(
    title: str, days: list[Day], value: Any, *, unit: str = "", fmt: Any = str, describe: Any = None
) -> Chart:
    """``describe(day)``, when given, is the bar's label and the total is ``describe`` of all days
    together (the cost chart says "price unknown" where a plain sum would say $0)."""
    values = [value(d) for d in days]
    top = max(values, default=0) or 1
    bars = []
    for index, (d, v) in enumerate(zip(days, values, strict=True)):
        height = round(float(v) / float(top) * (CHART_HEIGHT - 20)) if v else 0
        bars.append(
            {
                "x": index * (BAR_WIDTH + BAR_GAP),
                "y": CHART_HEIGHT - height,
                "height": height,
                "label": f"{d.day:%b %d}: {describe(d) if describe else fmt(v)}{unit}",
                "value": v,
            }
        )
    return Chart(
        title=title,
        unit=unit,
        bars=bars,
        total=describe(_sum_days(days)) if describe else fmt(sum(values)),
        width=len(days) * (BAR_WIDTH + BAR_GAP),
        height=CHART_HEIGHT,
    )


def _sum_days(days: list[Day]) -> Day:
    return Day(
        day=days[-1].day if days else timezone.now().date(),
        cost=sum((d.cost for d in days), Decimal("0")),
        unpriced_tokens=sum(d.unpriced_tokens for d in days),
    )


def usage_charts(days: list[Day]) -> list[Chart]:
    return [
        chart("Runs", days, lambda d: d.runs),
        chart("Visitors", days, lambda d: d.visitors),
        chart("Tokens", days, lambda d: d.tokens, fmt=lambda v: f"{v:,}"),
        chart("Cost", days, lambda d: d.cost, describe=lambda d: d.cost_label),
        chart("Errors", days, lambda d: d.errors),
        chart("Thumbs down", days, lambda d: d.thumbs_down),
    ]
