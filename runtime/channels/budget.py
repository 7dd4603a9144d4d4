"""The daily budget of an agent, in dollars, in tokens or both, enforced before a run starts.

A run's cost is known only when it finishes, so a run started through a channel first
*reserves* an estimate of its cost and of its tokens on its agent's row for the day
(``AgentDailySpend``), and its real cost and token count replace the estimates when it is
*settled*. A run may start only if, for each budget that is set,

    spent (settled runs) + reserved (runs in flight) + its own estimate <= daily budget

and that check and the reservation are one conditional ``UPDATE`` of the day's row, so two
requests racing for the last cents (or tokens) queue on the row lock and the second sees the
first's reservation: both cannot pass. The estimates are the larger of
``AGENT_BUDGET_MIN_RESERVE_USD`` (default $0.01) / ``AGENT_BUDGET_MIN_RESERVE_TOKENS`` (default
1,000) and the average cost / tokens of the agent's runs settled that day.

Settling is exactly once per reservation (an ``UPDATE ... WHERE settled_at IS NULL``) and
happens twice over: the endpoint that started the run settles it when it sees the run end,
and every later reservation first settles the agent's finished runs, so a client that went
away (or a web process that died) cannot leave a reservation open for long. A run that costs
more than its estimate can take the day's spend past the budget; every later request that day
is then refused.

Tokens of models without a known price cost no dollars (runtime/llm/pricing.py), so a budget in
dollars alone cannot hold for such a model and refuses it, saying why: before the run when the
agent's own model has no price (``BudgetUnpriced``), and for the rest of the day once a settled
run is found to have spent unpriced tokens anyway, e.g. through a sub-agent
(``BudgetUnpricedSpend``). A budget in tokens counts every token, priced or not, so it holds for
any model.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from runtime import conf, registry
from runtime.channels.api_key_models import AgentBudget, AgentDailySpend, SpendReservation
from runtime.llm.base import parse_model
from runtime.llm.pricing import price_for
from runtime.models import TERMINAL_STATUSES


class BudgetExceeded(Exception):
    """The agent's daily budget is spent (or reserved by runs still going). ``unit``: "usd" or
    "tokens", the budget that refused."""

    def __init__(
        self,
        *,
        agent_key: str,
        budget: Decimal | int,
        used: Decimal | int,
        retry_after: int,
        unit: str = "usd",
    ) -> None:
        self.agent_key = agent_key
        self.budget = budget
        self.used = used
        self.retry_after = retry_after
        self.unit = unit
        if unit == "tokens":
            amount, spent = f"{budget:,} tokens", f"{used:,} tokens"
        else:
            amount, spent = f"${budget:.2f}", f"${used:.2f}"
        super().__init__(
            f"The daily budget of {amount} for this agent is used up ({spent} spent or reserved "
            "by runs in progress); it resets at midnight UTC."
        )


@dataclass(frozen=True)
class Reservation:
    agent_key: str
    day: dt.date
    amount: Decimal
    tokens: int = 0


def today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def seconds_to_midnight() -> int:
    now = timezone.now().astimezone(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return max(1, int((midnight - now).total_seconds()) + 1)


def min_reserve() -> Decimal:
    return Decimal(conf.setting("AGENT_BUDGET_MIN_RESERVE_USD"))


def min_reserve_tokens() -> int:
    return int(conf.setting("AGENT_BUDGET_MIN_RESERVE_TOKENS"))


_ESTIMATE = "GREATEST(%s, CASE WHEN settled_runs > 0 THEN spent_usd / settled_runs ELSE 0 END)"
_ESTIMATE_TOKENS = (
    "GREATEST(%s::bigint, CASE WHEN settled_runs > 0 THEN CEIL(spent_tokens::numeric / settled_runs)::bigint "
    "ELSE 0 END)"
)
_TERMINAL = list(str(status) for status in TERMINAL_STATUSES)
_SETTLE_SQL = f"""
WITH done AS (
    UPDATE {SpendReservation._meta.db_table} AS r SET settled_at = now()
    FROM {SpendReservation._meta.db_table} AS o
    LEFT JOIN runtime_agentrun AS a ON a.id = o.run_id
    WHERE r.id = o.id AND r.settled_at IS NULL AND {{where}}
      AND (a.id IS NULL OR a.status = ANY(%s))
    RETURNING r.agent_key, r.day, r.amount_usd, r.amount_tokens, COALESCE(a.cost_usd, 0) AS cost,
        COALESCE(a.prompt_tokens + a.completion_tokens, 0) AS tokens, COALESCE(a.unpriced_tokens, 0) AS unpriced
), totals AS (
    SELECT agent_key, day, SUM(amount_usd) AS reserved, SUM(cost) AS cost, COUNT(*) AS runs,
        SUM(amount_tokens) AS reserved_tokens, SUM(tokens) AS tokens, SUM(unpriced) AS unpriced
    FROM done GROUP BY agent_key, day
)
UPDATE {AgentDailySpend._meta.db_table} AS d
SET reserved_usd = GREATEST(d.reserved_usd - t.reserved, 0), spent_usd = d.spent_usd + t.cost,
    reserved_tokens = GREATEST(d.reserved_tokens - t.reserved_tokens, 0),
    spent_tokens = d.spent_tokens + t.tokens, unpriced_tokens = d.unpriced_tokens + t.unpriced,
    settled_runs = d.settled_runs + t.runs
FROM totals AS t WHERE d.agent_key = t.agent_key AND d.day = t.day
"""  # noqa: S608 - table names and a placeholder only


def settle_finished(*, agent_key: str) -> None:
    """Settle every open reservation of ``agent_key`` whose run has ended (or was deleted)."""
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_SQL.format(where="r.agent_key = %s"), [agent_key, _TERMINAL])


def settle_run(*, run_id: Any) -> None:
    """Settle the reservation of one run if it has ended; a no-op otherwise, or when done already."""
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_SQL.format(where="r.run_id = %s"), [str(run_id), _TERMINAL])


class BudgetUnpriced(BudgetExceeded):
    """The agent's model has no known price: a budget in dollars cannot hold, so nothing runs."""

    def __init__(self, *, agent_key: str, model: str, budget: Decimal) -> None:
        super().__init__(agent_key=agent_key, budget=budget, used=Decimal("0"), retry_after=3600)
        self.model = model
        self.args = (
            f"This agent's model {model!r} has no known price, so its daily budget of ${budget:.2f} "
            "cannot hold. Set a price for the model (the model settings page or AGENT_MODEL_PRICES), "
            "give the agent a daily budget in tokens, or remove the budget.",
        )


class BudgetUnpricedSpend(BudgetExceeded):
    """Runs settled today used models without a price (a sub-agent's, or a name the provider
    answered with): a budget in dollars alone cannot count them, so nothing more runs today."""

    def __init__(self, *, agent_key: str, budget: Decimal, tokens: int) -> None:
        super().__init__(
            agent_key=agent_key, budget=budget, used=Decimal("0"), retry_after=seconds_to_midnight()
        )
        self.args = (
            f"This agent's runs used {tokens:,} tokens today on models without a known price, which its "
            f"daily budget of ${budget:.2f} cannot count. Give the agent a daily budget in tokens, or set "
            "the models' prices (the model settings page or AGENT_MODEL_PRICES); it resets at midnight UTC.",
        )


def unpriced_model(agent_key: str) -> str:
    """The model the agent's published version calls, if no source knows its price; else ""."""
    try:
        runtime = registry.get_runtime(agent_key)
    except registry.UnknownAgent:
        return ""
    provider, model = parse_model(getattr(runtime, "model", None))
    if provider == "demo" or any(
        price_for(name) is not None for name in (f"{provider}:{model}", f"{provider}/{model}")
    ):
        return ""
    return f"{provider}:{model}"


def budget_reserve(*, agent_key: str) -> Reservation | None:
    """Reserve this run's estimates of the agent's budgets for today, or raise ``BudgetExceeded``.

    Call inside the transaction that creates the run, then ``reservation_attach`` it: if the
    run is not created, the reservation rolls back with it. None: the agent has no budget.
    Both estimates are reserved whichever budget is set, so a budget set later in the day
    finds the runs in flight already counted.
    """
    limits = (
        AgentBudget.objects.filter(agent_key=agent_key)
        .values_list("daily_budget_usd", "daily_budget_tokens")
        .first()
    )
    budget, token_budget = limits or (None, None)
    if budget is None and token_budget is None:
        return None
    if token_budget is None:  # dollars only: a model without a price would spend without limit
        unpriced = unpriced_model(agent_key)
        if unpriced:
            raise BudgetUnpriced(agent_key=agent_key, model=unpriced, budget=budget)
    day = today()
    reserve, reserve_tokens = min_reserve(), min_reserve_tokens()
    conditions, params = [], []
    if budget is not None:
        conditions.append(f"spent_usd + reserved_usd + {_ESTIMATE} <= %s")
        params += [reserve, budget]
        if token_budget is None:  # dollars only: tokens nobody could price stop the day's runs
            conditions.append("unpriced_tokens = 0")
    if token_budget is not None:
        conditions.append(f"spent_tokens + reserved_tokens + {_ESTIMATE_TOKENS} <= %s")
        params += [reserve_tokens, token_budget]
    table = AgentDailySpend._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (agent_key, day, spent_usd, reserved_usd, spent_tokens, "  # noqa: S608
            "reserved_tokens, unpriced_tokens, settled_runs) VALUES (%s, %s, 0, 0, 0, 0, 0, 0) "
            "ON CONFLICT (agent_key, day) DO NOTHING",
            [agent_key, day],
        )
        # SET, WHERE and RETURNING see the newest row version (a waiter re-reads it after the
        # lock holder commits); the estimates use spent_* and settled_runs, which this leaves alone.
        cursor.execute(
            f"UPDATE {table} SET reserved_usd = reserved_usd + {_ESTIMATE}, "  # noqa: S608
            f"reserved_tokens = reserved_tokens + {_ESTIMATE_TOKENS} "
            f"WHERE agent_key = %s AND day = %s AND {' AND '.join(conditions)} "
            f"RETURNING {_ESTIMATE}, {_ESTIMATE_TOKENS}",
            [reserve, reserve_tokens, agent_key, day, *params, reserve, reserve_tokens],
        )
        row = cursor.fetchone()
    if row is None:
        raise _refusal(agent_key, day, budget, token_budget)
    return Reservation(agent_key=agent_key, day=day, amount=Decimal(row[0]), tokens=int(row[1]))


def _refusal(
    agent_key: str, day: dt.date, budget: Decimal | None, token_budget: int | None
) -> BudgetExceeded:
    """Which budget refused: tokens when they would run over, else dollars."""
    spend = AgentDailySpend.objects.filter(agent_key=agent_key, day=day).first()
    used = (spend.spent_usd + spend.reserved_usd) if spend else Decimal("0")
    used_tokens = (spend.spent_tokens + spend.reserved_tokens) if spend else 0
    wait = seconds_to_midnight()
    if token_budget is None and spend is not None and spend.unpriced_tokens:
        return BudgetUnpricedSpend(agent_key=agent_key, budget=budget, tokens=spend.unpriced_tokens)
    if token_budget is not None:
        average = -(-spend.spent_tokens // spend.settled_runs) if spend and spend.settled_runs else 0
        if budget is None or used_tokens + max(min_reserve_tokens(), average) > token_budget:
            return BudgetExceeded(
                agent_key=agent_key, budget=token_budget, used=used_tokens, retry_after=wait, unit="tokens"
            )
    return BudgetExceeded(agent_key=agent_key, budget=budget, used=used, retry_after=wait)


def reservation_attach(*, reservation: Reservation | None, run: Any) -> None:
    if reservation is None:
        return
    SpendReservation.objects.create(
        run=run,
        agent_key=reservation.agent_key,
        day=reservation.day,
        amount_usd=reservation.amount,
        amount_tokens=reservation.tokens,
    )


def spend_today(agent_key: str) -> AgentDailySpend | None:
    return AgentDailySpend.objects.filter(agent_key=agent_key, day=today()).first()


def reserve_for_run(*, agent_key: str, create_run: Any) -> Any:
    """Settle finished runs, then reserve and create the run in one transaction.

    ``create_run()`` returns ``(run, created)`` (``run_create``'s answer). A run returned again
    for a repeated idempotency key reserves nothing.
    """
    settle_finished(agent_key=agent_key)
    with transaction.atomic():
        reservation = budget_reserve(agent_key=agent_key)
        run, created = create_run()
        if created:
            reservation_attach(reservation=reservation, run=run)
        elif reservation is not None:
            transaction.set_rollback(True)  # nothing new runs: give the reservation back
    return run, created
