"""The playground's turn footer: a run on a model without a price reads "price unknown"."""

from __future__ import annotations

from builder.services.playground import playground_send
from runtime.models import AgentRun


def test_a_turn_on_an_unpriced_model_says_price_unknown_not_zero(owner_client, owner, agent):
    run = playground_send(user=owner, agent=agent, text="Hi")
    AgentRun.objects.filter(pk=run.pk).update(
        status="succeeded", prompt_tokens=12, completion_tokens=5, cost_usd=0, unpriced_tokens=17
    )
    body = owner_client.get(f"/playground/runs/{run.pk}/").content.decode()
    assert "12 prompt + 5 completion tokens" in body
    assert "price unknown" in body and "$0.0000" not in body
