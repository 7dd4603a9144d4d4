"""The daily budget's reservation and settlement, against the database."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import override_settings

from runtime.channels.api_key_models import AgentBudget, AgentDailySpend, SpendReservation
from runtime.channels.budget import BudgetExceeded, budget_reserve, reserve_for_run, settle_finished
from runtime.models import AgentRun
from runtime.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)


def _create():
    return run_create(
        agent_key="echo", messages=[{"role": "user", "content": "hi"}], channel_caller="apikey:test"
    )


@override_settings(AGENT_BUDGET_MIN_RESERVE_USD="0.02")
def test_reservations_stop_at_the_budget_and_settle_at_the_real_cost():
    AgentBudget.objects.create(agent_key="echo", daily_budget_usd=Decimal("0.05"))
    first, _ = reserve_for_run(agent_key="echo", create_run=_create)
    reserve_for_run(agent_key="echo", create_run=_create)
    with pytest.raises(BudgetExceeded) as refused:
        reserve_for_run(agent_key="echo", create_run=_create)
    assert refused.value.retry_after > 0 and "$0.05" in str(refused.value)
    assert AgentRun.objects.count() == 2  # the refused request created nothing
    spend = AgentDailySpend.objects.get()
    assert spend.reserved_usd == Decimal("0.04")
    AgentRun.objects.filter(pk=first.pk).update(status="succeeded", cost_usd=Decimal("0.001"))
    settle_finished(agent_key="echo")
    settle_finished(agent_key="echo")  # exactly once
    spend.refresh_from_db()
    assert (spend.spent_usd, spend.reserved_usd, spend.settled_runs) == (Decimal("0.001"), Decimal("0.02"), 1)
    assert SpendReservation.objects.filter(settled_at__isnull=True).count() == 1


def test_no_budget_reserves_nothing():
    assert budget_reserve(agent_key="echo") is None


@override_settings(AGENT_BUDGET_MIN_RESERVE_USD="0.02")
def _race_for_the_last_of_the_budget() -> tuple[object, object]:
    """Two transactions reserve from agent "echo"'s day; the second waits while the first holds
    the day's row. Returns what each got (a reservation or the ``BudgetExceeded``)."""
    holding = threading.Event()
    release = threading.Event()
    outcome: list[object] = []

    def first() -> None:
        with transaction.atomic():
            outcome.append(budget_reserve(agent_key="echo"))
            holding.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    second: list[object] = []

    def contender() -> None:
        try:
            with transaction.atomic():
                second.append(budget_reserve(agent_key="echo"))
        except BudgetExceeded as exc:
            second.append(exc)
        finally:
            connection.close()

    waiter = threading.Thread(target=contender)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # queued on the day's row while the first holds it
    release.set()
    thread.join(10)
    waiter.join(10)
    return outcome[0], second[0]


def test_two_transactions_cannot_both_take_the_last_cents():
    AgentBudget.objects.create(agent_key="echo", daily_budget_usd=Decimal("0.03"))
    first, second = _race_for_the_last_of_the_budget()
    assert first is not None and isinstance(second, BudgetExceeded)


def test_a_money_budget_refuses_an_agent_whose_model_has_no_price(django_user_model):
    """An unpriced model would spend without limit (its runs cost "unknown", not dollars): a budget
    in dollars refuses it with the reason, until the operator sets a price."""
    from builder.services import agent_publish
    from tests.builder.conftest import make_agent

    owner = django_user_model.objects.create_user("own", "own@example.com", "x", is_staff=True)
    agent = make_agent(owner, slug="local-llm", model="openai:my-finetune-2031")
    agent_publish(agent=agent, user=owner)
    AgentBudget.objects.create(agent_key="local-llm", daily_budget_usd=Decimal("5.00"))
    with pytest.raises(BudgetExceeded) as refused:
        budget_reserve(agent_key="local-llm")
    assert "'openai:my-finetune-2031' has no known price" in str(refused.value)
    assert not AgentDailySpend.objects.exists()
    prices = {"my-finetune-2031": {"input": 1.0, "output": 2.0}}
    with override_settings(AGENT_MODEL_PRICES=prices):
        assert budget_reserve(agent_key="local-llm") is not None


# -- budgets in tokens -------------------------------------------------------------------------


@override_settings(AGENT_BUDGET_MIN_RESERVE_TOKENS=1000)
def test_a_token_budget_reserves_and_settles_at_the_real_token_count():
    AgentBudget.objects.create(agent_key="echo", daily_budget_tokens=2500)
    first, _ = reserve_for_run(agent_key="echo", create_run=_create)
    reserve_for_run(agent_key="echo", create_run=_create)
    with pytest.raises(BudgetExceeded) as refused:
        reserve_for_run(agent_key="echo", create_run=_create)
    assert refused.value.unit == "tokens" and "2,500 tokens" in str(refused.value)
    assert "2,000 tokens spent or reserved" in str(refused.value)
    assert AgentRun.objects.count() == 2
    spend = AgentDailySpend.objects.get()
    assert spend.reserved_tokens == 2000
    AgentRun.objects.filter(pk=first.pk).update(status="succeeded", prompt_tokens=300, completion_tokens=40)
    settle_finished(agent_key="echo")
    settle_finished(agent_key="echo")  # exactly once
    spend.refresh_from_db()
    assert (spend.spent_tokens, spend.reserved_tokens, spend.settled_runs) == (340, 1000, 1)
    # 340 spent + 1000 in flight + 1000 for the next run fits in 2500 now
    reserve_for_run(agent_key="echo", create_run=_create)


@override_settings(AGENT_BUDGET_MIN_RESERVE_TOKENS=100)
def test_a_token_reservation_is_the_days_average_run_when_that_is_larger():
    AgentBudget.objects.create(agent_key="echo", daily_budget_tokens=10_000)
    run, _ = reserve_for_run(agent_key="echo", create_run=_create)
    AgentRun.objects.filter(pk=run.pk).update(status="succeeded", prompt_tokens=3000, completion_tokens=1)
    settle_finished(agent_key="echo")
    second, _ = reserve_for_run(agent_key="echo", create_run=_create)
    assert second.spend_reservation.amount_tokens == 3001  # the average run, rounded up


@override_settings(AGENT_BUDGET_MIN_RESERVE_TOKENS=1000)
def test_two_transactions_cannot_both_take_the_last_tokens():
    AgentBudget.objects.create(agent_key="echo", daily_budget_tokens=1500)
    first, second = _race_for_the_last_of_the_budget()
    assert first.tokens == 1000 and isinstance(second, BudgetExceeded)
    assert second.unit == "tokens"


@pytest.fixture
def unpriced_agent(django_user_model):
    from builder.services import agent_publish
    from tests.builder.conftest import make_agent

    owner = django_user_model.objects.create_user("own", "own@example.com", "x", is_staff=True)
    agent = make_agent(owner, slug="local-llm", model="openai:my-finetune-2031")
    agent_publish(agent=agent, user=owner)
    return agent


def _create_local():
    return run_create(
        agent_key="local-llm", messages=[{"role": "user", "content": "hi"}], channel_caller="apikey:test"
    )


@override_settings(AGENT_BUDGET_MIN_RESERVE_TOKENS=1000, AGENT_BUDGET_MIN_RESERVE_USD="0.01")
def test_an_unpriced_model_runs_within_a_token_budget_and_is_counted_by_tokens(unpriced_agent):
    """The money-only refusal says how to fix it; a budget in tokens lets the model run, counted."""
    AgentBudget.objects.create(agent_key="local-llm", daily_budget_usd=Decimal("5.00"))
    with pytest.raises(BudgetExceeded) as refused:
        budget_reserve(agent_key="local-llm")
    assert "no known price" in str(refused.value) and "budget in tokens" in str(refused.value)
    AgentBudget.objects.filter(agent_key="local-llm").update(daily_budget_tokens=1500)
    run, _ = reserve_for_run(agent_key="local-llm", create_run=_create_local)
    with pytest.raises(BudgetExceeded) as over:
        reserve_for_run(agent_key="local-llm", create_run=_create_local)
    assert over.value.unit == "tokens"
    # the run's tokens had no price (cost 0, counted as unpriced): the token budget counts them
    AgentRun.objects.filter(pk=run.pk).update(
        status="succeeded", prompt_tokens=900, completion_tokens=200, unpriced_tokens=1100
    )
    settle_finished(agent_key="local-llm")
    spend = AgentDailySpend.objects.get(agent_key="local-llm")
    assert (spend.spent_tokens, spend.spent_usd, spend.reserved_tokens) == (1100, 0, 0)
    assert spend.unpriced_tokens == 1100 and spend.spent_label == "price unknown for 1,100 tokens"
    with pytest.raises(BudgetExceeded):  # 1100 spent + 1100 (the day's average run) > 1500
        reserve_for_run(agent_key="local-llm", create_run=_create_local)
    assert AgentRun.objects.count() == 1


@override_settings(AGENT_BUDGET_MIN_RESERVE_TOKENS=1000, AGENT_BUDGET_MIN_RESERVE_USD="0.02")
def test_when_both_budgets_are_set_both_hold():
    AgentBudget.objects.create(
        agent_key="echo", daily_budget_usd=Decimal("0.03"), daily_budget_tokens=100_000
    )
    reserve_for_run(agent_key="echo", create_run=_create)
    with pytest.raises(BudgetExceeded) as dollars:  # tokens to spare, dollars not
        reserve_for_run(agent_key="echo", create_run=_create)
    assert dollars.value.unit == "usd" and "$0.03" in str(dollars.value)
    AgentBudget.objects.filter(agent_key="echo").update(
        daily_budget_usd=Decimal("10"), daily_budget_tokens=1999
    )
    with pytest.raises(BudgetExceeded) as tokens:  # dollars to spare, tokens not
        reserve_for_run(agent_key="echo", create_run=_create)
    assert tokens.value.unit == "tokens" and "1,999 tokens" in str(tokens.value)
    assert AgentRun.objects.count() == 1


@override_settings(AGENT_BUDGET_MIN_RESERVE_USD="0.01")
def test_unpriced_tokens_spent_anyway_stop_a_dollars_only_budget_for_the_day():
    """The agent's own model is priced, but a run spent tokens nobody could price (a sub-agent's
    model, say): a budget in dollars cannot count them, so the day's later runs are refused with
    the reason; a budget in tokens lets them run again."""
    AgentBudget.objects.create(agent_key="echo", daily_budget_usd=Decimal("5.00"))
    run, _ = reserve_for_run(agent_key="echo", create_run=_create)
    AgentRun.objects.filter(pk=run.pk).update(
        status="succeeded", prompt_tokens=500, completion_tokens=100, unpriced_tokens=600
    )
    with pytest.raises(BudgetExceeded) as refused:
        reserve_for_run(agent_key="echo", create_run=_create)
    assert "600 tokens today on models without a known price" in str(refused.value)
    assert "budget in tokens" in str(refused.value) and AgentRun.objects.count() == 1
    AgentBudget.objects.filter(agent_key="echo").update(daily_budget_tokens=100_000)
    reserve_for_run(agent_key="echo", create_run=_create)
    assert AgentRun.objects.count() == 2
