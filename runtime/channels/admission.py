"""Who may start a run as an anonymous visitor, and the limits every such run meets.

One rule for every entry point that starts a run for an anonymous session (our widget's
messages, the REST API and the agent-frontend routes with a general anonymous session, a
retry): ``run_create`` calls :func:`visitor_admission` for each top-level run whose caller is an
anonymous session, and

1. the agent must have a web-widget channel that is switched on, and be published;
2. the session must belong to that channel: a widget visitor's session names its channel (which
   must be this agent's); a general anonymous session (``/api/accounts/anonymous-session/``,
   what the agent-frontend widget mints) recorded the ``Origin`` it was minted from, and that
   origin must be on the channel's allowed list (or be this server's own, as for our widget);
3. then the channel's limits apply exactly as for our widget: messages per visitor per minute
   and per day, and the agent's daily budget, reserved in the same transaction as the run.

The visitor's session row is locked from the checks to the insert, so concurrent sends of one
visitor queue and the counts hold; the counts are of the runs themselves, so every process
(and every entry point) sees the same numbers without a cache. A refusal is a
:class:`VisitorRefused` (a ``RunInputError`` with an HTTP status and, for limits, a
``Retry-After``); nothing is written then.

The run records the channel it counted against (``metadata.widget_channel``) and the channel's
caps per run (``metadata.run_caps``: steps, tokens, seconds), both set here, over anything the
caller sent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from runtime import access, registry
from runtime.channels.budget import BudgetExceeded, budget_reserve, reservation_attach, settle_finished
from runtime.channels.caps import caps_apply
from runtime.channels.identity import ORIGIN_KEY, SAME_ORIGIN_KEY, SESSION_KEY, anonymous_session
from runtime.channels.models import WidgetChannel
from runtime.channels.origins import origin_allowed
from runtime.models import AgentRun
from runtime.services import RunInputError

logger = logging.getLogger(__name__)


@dataclass
class VisitorRefused(RunInputError):
    """An anonymous visitor may not start this run: ``status`` for HTTP, ``retry_after`` for limits."""

    status: int = 403
    retry_after: int | None = None

    def __str__(self) -> str:
        return self.message


def _unpublished() -> VisitorRefused:
    return VisitorRefused(
        "agent_key", "This assistant is not published right now.", code="agent_unpublished", status=403
    )


def channel_for_run(*, session: Any, agent_key: str) -> WidgetChannel:
    """The enabled widget channel this session may run ``agent_key`` through (rules 1 and 2)."""
    metadata = getattr(session, "metadata", None) or {}
    bound = metadata.get(SESSION_KEY)
    if bound:
        channel = WidgetChannel.objects.filter(pk=bound).first()
        if channel is None or channel.agent_key != agent_key:
            # a visitor of one widget cannot talk to another agent: like an unknown key, no leak
            raise VisitorRefused(
                "agent_key",
                f"No agent is registered with the key {agent_key!r}.",
                code="unknown_agent",
                status=400,
            )
    else:
        channel = WidgetChannel.objects.filter(agent_key=agent_key).first()
        if channel is None:
            raise VisitorRefused(
                "agent_key",
                "This agent is not published for visitors without an account: its owner has not "
                "added a web widget on its Publish page.",
                code="no_widget_channel",
            )
        origin = metadata.get(ORIGIN_KEY) or ""
        if not (
            metadata.get(SAME_ORIGIN_KEY) or (origin and origin_allowed(origin, channel.allowed_origins))
        ):
            shown = origin or "a page that sent no Origin"
            raise VisitorRefused(
                "origin",
                f"This website ({shown}) is not allowed to use this agent's chat. Its owner can add it "
                "to the allowed origins on the agent's Publish page; then start a new session.",
                code="origin_not_allowed",
            )
    if not channel.enabled:
        raise VisitorRefused(
            "agent_key", "This chat is switched off by the site's owner.", code="channel_disabled"
        )
    stored = access.stored_agent(channel.agent_key)
    if not (stored.published if stored is not None else registry.is_code_agent(channel.agent_key)):
        raise _unpublished()
    return channel


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _check_limits(*, session: Any, channel: WidgetChannel, now: datetime) -> None:
    """Rule 3's counts: messages per visitor per minute and per day (429 with Retry-After)."""
    runs = AgentRun.objects.filter(
        anonymous_session_id=session.pk,
        parent_run__isnull=True,
        created_at__gte=min(_day_start(now), now - timedelta(minutes=1)),
        **{f"metadata__{SESSION_KEY}": str(channel.pk)},
    )
    minute_ago = now - timedelta(minutes=1)
    recent = sorted(t for t in runs.values_list("created_at", flat=True) if t > minute_ago)
    per_minute = channel.requests_per_minute_per_visitor
    if len(recent) >= per_minute:
        # the oldest message in the window leaves it first
        wait = recent[len(recent) - per_minute] + timedelta(minutes=1) - now
        raise VisitorRefused(
            "message",
            f"You are sending messages faster than this chat allows ({per_minute} a minute); "
            "wait a moment and send it again.",
            code="rate_limited",
            status=429,
            retry_after=max(1, int(wait.total_seconds()) + 1),
        )
    today = runs.filter(created_at__gte=_day_start(now)).count()
    if today >= channel.messages_per_visitor_per_day:
        tomorrow = _day_start(now) + timedelta(days=1)
        raise VisitorRefused(
            "message",
            f"You have sent {channel.messages_per_visitor_per_day} messages today, the most this chat "
            "allows; come back tomorrow.",
            code="daily_limit",
            status=429,
            retry_after=max(1, int((tomorrow - now).total_seconds())),
        )


@contextlib.contextmanager
def visitor_admission(
    *, anonymous_session_id: Any, agent_key: str, metadata: dict[str, Any]
) -> Iterator[Callable[[AgentRun, bool], None]]:
    """Admit a run of ``agent_key`` for an anonymous session, or raise ``VisitorRefused``.

    Use around the run's insert: ``with visitor_admission(...) as admitted: ...; admitted(run,
    created)``. ``metadata`` (the run's) gains the channel and its caps. Everything (the lock,
    the budget reservation, the run) commits or rolls back together.
    """
    session = anonymous_session(anonymous_session_id)
    if session is None:
        raise VisitorRefused(
            "anonymous_session", "This visitor session no longer exists; start a new one.", status=401
        )
    channel = channel_for_run(session=session, agent_key=agent_key)
    settle_finished(agent_key=channel.agent_key)  # runs that ended give back their reservations
    with transaction.atomic():
        type(session)._default_manager.select_for_update().filter(pk=session.pk).first()
        _check_limits(session=session, channel=channel, now=timezone.now())
        try:
            # the agent's daily budget, shared with its API keys, reserved in this transaction
            reservation = budget_reserve(agent_key=channel.agent_key)
        except BudgetExceeded as exc:
            logger.warning("Visitor's message refused: %s (agent %s)", exc, channel.agent_key)
            raise VisitorRefused(
                "message",
                "This assistant has answered all it can for today. Please come back tomorrow.",
                code="budget_exhausted",
                status=429,
                retry_after=exc.retry_after,
            ) from None
        metadata[SESSION_KEY] = str(channel.pk)
        caps_apply(metadata, channel)

        def admitted(run: AgentRun, created: bool) -> None:
            if created:
                reservation_attach(reservation=reservation, run=run)
            elif reservation is not None:
                transaction.set_rollback(True)  # nothing new runs: give the reservation back

        yield admitted


def visitor_admission_check(*, anonymous_session_id: Any, agent_key: str) -> None:
    """Would a run be admitted now? The same checks as :func:`visitor_admission` (channel, origin,
    limits, budget), and nothing kept: for a caller with costly work to do before the run (the
    widget reads attached files first), so a visitor who would be refused is refused before it.
    ``run_create`` admits the run itself again afterwards."""
    with visitor_admission(anonymous_session_id=anonymous_session_id, agent_key=agent_key, metadata={}):
        transaction.set_rollback(True)  # its transaction (the lock, the budget reservation) rolls back
