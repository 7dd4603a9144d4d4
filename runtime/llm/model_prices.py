"""Model prices an operator entered on the model settings page (``runtime.models.ModelPrice``).

:func:`stored` is what runtime/llm/pricing.py consults after ``AGENT_MODEL_PRICES`` (the
environment wins). Like the provider keys (runtime/llm/credentials.py), the rows are read at
most every ``AGENT_MODEL_PRICES_CACHE_SECONDS`` (default 5) per process, so a price saved on
the page reaches every web process and worker without a restart; :func:`forget` drops this process's copy at once. Reads
from async code (the providers price their calls there) go through one helper thread, since
the ORM is sync-only.

:func:`model_price_save` and :func:`model_price_remove` are the writes; each checks its input
and the user's ``runtime.manage_providers`` permission before it touches a row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from runtime import conf
from runtime.llm.stored_table import StoredTable

logger = logging.getLogger(__name__)

MAX_PRICE = Decimal("100000")  # dollars per million tokens; far above any model sold today
MAX_NAME = 200
PERMISSION = "runtime.manage_providers"


@dataclass
class PriceInputError(ValueError):
    """A price that cannot be saved; ``field`` names what to fix."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class NotAllowed(PermissionError):
    """The user may not set model prices."""


def _load() -> dict[str, dict[str, float]]:
    from runtime.models import ModelPrice  # app loading: keeps runtime.llm importable before setup

    return {row.model: row.as_entry() for row in ModelPrice.objects.all()}


_table = StoredTable("model-prices", _load, lambda: conf.setting("AGENT_MODEL_PRICES_CACHE_SECONDS"))
#: ``{model: {"input": ..., "output": ..., "cached_input": ...}}``, dollars per million tokens
stored = _table.get
forget = _table.forget


def from_environment(model: str) -> bool:
    """Whether ``AGENT_MODEL_PRICES`` names this model (it then wins over the stored price)."""
    name = model.strip().lower()
    return any(str(key).strip().lower() == name for key in conf.setting("AGENT_MODEL_PRICES"))


def clean_model_name(value: Any) -> str:
    name = str(value or "").strip().lower()
    if not name:
        raise PriceInputError("model", "Write the model's name as agents use it, e.g. openai:my-finetune.")
    if any(c.isspace() for c in name):
        raise PriceInputError("model", "A model name has no spaces, e.g. litellm:ollama/llama3.")
    if len(name) > MAX_NAME:
        raise PriceInputError("model", f"Use at most {MAX_NAME} characters.")
    return name


def clean_price(value: Any, field: str, *, required: bool = True) -> Decimal | None:
    """Dollars per million tokens: ``2.5``, ``$2.50``, ``0`` (a free local model)."""
    text = str(value if value is not None else "").strip().lstrip("$").strip()
    if not text:
        if required:
            raise PriceInputError(field, "Write dollars per million tokens, e.g. 2.50 (0 for a free model).")
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise PriceInputError(
            field, "Write a number of dollars per million tokens, e.g. 2.50 (0 for a free model)."
        ) from None
    if not amount.is_finite():
        raise PriceInputError(field, "Write a number of dollars per million tokens, e.g. 2.50.")
    if amount < 0:
        raise PriceInputError(field, "A price cannot be negative; write 0 for a free model.")
    if amount > MAX_PRICE:
        raise PriceInputError(field, f"Write at most {MAX_PRICE:,} dollars per million tokens.")
    if amount != amount.quantize(Decimal("0.0001")):
        raise PriceInputError(field, "Use at most four decimals, e.g. 0.0375.")
    return amount


def _check(user: Any) -> None:
    if not getattr(user, "is_authenticated", False) or not user.has_perm(PERMISSION):
        raise NotAllowed("Only superusers or staff allowed to manage providers set model prices.")


@transaction.atomic
def model_price_save(
    *, model: Any, input_per_million: Any, output_per_million: Any, cached_input_per_million: Any, user: Any
) -> tuple[Any, bool]:
    """Add or change the price of ``model``; every value is checked before anything is saved.
    Returns ``(row, created)``."""
    from runtime.models import ModelPrice  # app loading: keeps runtime.llm importable before setup

    _check(user)
    name = clean_model_name(model)
    values = {
        "input_per_million": clean_price(input_per_million, "input_per_million"),
        "output_per_million": clean_price(output_per_million, "output_per_million"),
        "cached_input_per_million": clean_price(
            cached_input_per_million, "cached_input_per_million", required=False
        ),
        "updated_by": user,
    }
    row, created = ModelPrice.objects.update_or_create(model=name, defaults=values)
    forget()  # this process reads its own write at once,
    transaction.on_commit(forget)  # and again once every connection sees it
    return row, created


@transaction.atomic
def model_price_remove(*, model: Any, user: Any) -> bool:
    """Remove the stored price of ``model``; False when there was none."""
    from runtime.models import ModelPrice  # app loading: keeps runtime.llm importable before setup

    _check(user)
    deleted, _ = ModelPrice.objects.filter(model=str(model or "").strip().lower()).delete()
    forget()
    transaction.on_commit(forget)
    return bool(deleted)
