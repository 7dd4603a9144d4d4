"""Model keys and model prices entered in the UI: superusers or holders of
``runtime.manage_providers``.

Keys are write-only (never sent back to the browser) and stored encrypted; an environment
variable of the same name wins and is shown as such. Prices (dollars per million tokens) are
added, changed and removed here for models the bundled price maps do not know or price
differently; a price for the same model in ``AGENT_MODEL_PRICES`` wins and is shown as such.
Every change is a POST with CSRF; a bad value answers 422 with the message next to its field.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from unfold.widgets import UnfoldAdminTextInputWidget

from builder.views.common import go, page, staff_view
from runtime import conf
from runtime.llm import list_models, model_prices
from runtime.llm.credentials import NAMES, credentials_save, from_environment, stored
from runtime.llm.pricing import MILLION, price_for
from runtime.models import ModelPrice

SECRET_FIELDS = {"OPENAI_API_KEY": "OpenAI API key", "ANTHROPIC_API_KEY": "Anthropic API key"}


class ProviderSettingsForm(forms.Form):
    OPENAI_API_KEY = forms.CharField(
        required=False,
        label="OpenAI API key",
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "class": "b-plain-input"}),
        help_text="Starts with sk-. Blank keeps the stored key.",
    )
    OPENAI_BASE_URL = forms.CharField(
        required=False,
        label="OpenAI-compatible base URL",
        widget=UnfoldAdminTextInputWidget,
        help_text="For Ollama, vLLM or another compatible server, e.g. http://gpu-box:8000/v1. Blank: OpenAI itself.",
    )
    ANTHROPIC_API_KEY = forms.CharField(
        required=False,
        label="Anthropic API key",
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "class": "b-plain-input"}),
        help_text="Starts with sk-ant-. Blank keeps the stored key.",
    )
    clear = forms.MultipleChoiceField(
        required=False, choices=[(n, n) for n in NAMES], widget=forms.CheckboxSelectMultiple
    )

    def clean_OPENAI_BASE_URL(self) -> str:  # noqa: N802 - the field is named after its variable
        url = self.cleaned_data["OPENAI_BASE_URL"].strip()
        if url and not url.startswith(("http://", "https://")):
            raise forms.ValidationError("Write the full URL, starting with http:// or https://.")
        return url

    def clean(self) -> dict:
        data = super().clean()
        for name in SECRET_FIELDS:
            value = (data.get(name) or "").strip()
            if any(c.isspace() for c in value):
                self.add_error(name, "A key has no spaces or line breaks; paste only the key.")
        return data


def _price_field(label: str, help_text: str) -> forms.CharField:
    # "required" is the service's check too, so a blank value gets its message, not Django's
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.TextInput(attrs={"class": "b-input", "inputmode": "decimal", "autocomplete": "off"}),
    )


class PriceForm(forms.Form):
    """One model's price; the checks are the service's (``runtime.llm.model_prices``)."""

    model = forms.CharField(
        label="Model",
        help_text="As agents name it, e.g. openai:my-finetune or litellm:ollama/llama3. "
        "The same name again changes its price.",
        widget=forms.TextInput(attrs={"class": "b-input", "autocomplete": "off", "spellcheck": "false"}),
        error_messages={"required": "Write the model's name as agents use it, e.g. openai:my-finetune."},
    )
    input_per_million = _price_field("Input, $ per million tokens", "0 for a free local model.")
    output_per_million = _price_field("Output, $ per million tokens", "Reasoning tokens cost as output.")
    cached_input_per_million = _price_field(
        "Cached input, $ per million tokens",
        "Optional: input read from the provider's prompt cache. Blank: priced as input.",
    )

    def clean(self) -> dict:
        data = super().clean()
        checks = {
            "model": model_prices.clean_model_name,
            "input_per_million": lambda v: model_prices.clean_price(v, "input_per_million"),
            "output_per_million": lambda v: model_prices.clean_price(v, "output_per_million"),
            "cached_input_per_million": lambda v: model_prices.clean_price(
                v, "cached_input_per_million", required=False
            ),
        }
        for name, check in checks.items():
            if name in data:
                try:
                    data[name] = check(data[name])
                except model_prices.PriceInputError as exc:
                    self.add_error(name, exc.message)
        return data


def _may_manage(request: HttpRequest) -> None:
    if not request.user.has_perm("runtime.manage_providers"):
        raise PermissionDenied("Only superusers or staff allowed to manage providers can see model keys.")


def _dollars(amount: float | Decimal | None) -> str:
    """Dollars per million tokens as people read them: "$2.50", "$0.0375", "$10.00"."""
    if amount is None:
        return ""
    text = f"{Decimal(str(amount)):.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def _plain(amount: Decimal | None) -> str:
    """2.5000 -> "2.5", 10.0000 -> "10", None -> ""."""
    return "" if amount is None else format(amount.normalize(), "f")


def _price_rows() -> list[dict]:
    """Stored prices, and those the environment sets (which win), by model name."""
    environment = {
        str(name).strip().lower(): entry for name, entry in conf.setting("AGENT_MODEL_PRICES").items()
    }

    def shown(entry: dict | None) -> dict | None:
        if entry is None:
            return None
        return {
            "input": _dollars(entry.get("input")),
            "output": _dollars(entry.get("output")),
            "cached_input": _dollars(entry.get("cached_input", entry.get("cache_read"))) or "as input",
        }

    rows = [
        {
            "model": row.model,
            "row": shown(row.as_entry()),
            "environment": shown(environment.get(row.model)),
        }
        for row in ModelPrice.objects.all()
    ]
    stored_names = {r["model"] for r in rows}
    rows += [
        {"model": name, "row": None, "environment": shown(entry)}
        for name, entry in sorted(environment.items())
        if name not in stored_names
    ]
    return sorted(rows, key=lambda r: r["model"])


def _model_rows() -> list[dict]:
    """Each model offered now with the price in use, or "price unknown"."""
    rows = []
    for model in list_models()["models"]:
        if model["is_demo"]:
            continue
        price = price_for(model["id"])
        rows.append(
            {
                "id": model["id"],
                "price": price,
                "input": _dollars(price.input * MILLION) if price else "",
                "output": _dollars(price.output * MILLION) if price else "",
            }
        )
    return rows


def _render(
    request: HttpRequest,
    *,
    form: ProviderSettingsForm | None = None,
    price_form: PriceForm | None = None,
    status: int = 200,
) -> HttpResponse:
    form = form or ProviderSettingsForm()
    saved = stored()
    rows = [
        {
            "name": name,
            "label": form.fields[name].label,
            "environment": from_environment(name),
            "stored": bool(saved.get(name)),
        }
        for name in NAMES
    ]
    if not form.is_bound:
        form.initial["OPENAI_BASE_URL"] = saved.get("OPENAI_BASE_URL", "")
    if price_form is None:
        editing = ModelPrice.objects.filter(model=request.GET.get("edit", "").strip().lower()).first()
        price_form = PriceForm(
            initial={
                "model": editing.model,
                "input_per_million": _plain(editing.input_per_million),
                "output_per_million": _plain(editing.output_per_million),
                "cached_input_per_million": _plain(editing.cached_input_per_million),
            }
            if editing
            else None
        )
    context = {
        "form": form,
        "rows": rows,
        "price_form": price_form,
        "price_rows": _price_rows(),
        "models": _model_rows(),
        "title": "Model keys and prices",
        "section": "settings",
    }
    return page(request, "builder/provider_settings.html", context, status=status)


@staff_view
@require_http_methods(["GET", "POST"])
def provider_settings_view(request: HttpRequest) -> HttpResponse:
    _may_manage(request)
    form = ProviderSettingsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        changes: dict[str, str | None] = {name: None for name in data["clear"]}
        for name in SECRET_FIELDS:
            if data[name].strip():
                changes[name] = data[name].strip()
        if (
            data["OPENAI_BASE_URL"] != stored().get("OPENAI_BASE_URL", "")
            and "OPENAI_BASE_URL" not in data["clear"]
        ):
            changes["OPENAI_BASE_URL"] = data["OPENAI_BASE_URL"] or None
        credentials_save(values=changes)
        messages.success(request, "Saved. The model picker offers the new providers now.")
        return go(request, reverse("builder:provider-settings"))
    return _render(request, form=form, status=422 if form.errors else 200)


@staff_view
@require_POST
def model_price_view(request: HttpRequest) -> HttpResponse:
    """Add or change one model's price."""
    _may_manage(request)
    form = PriceForm(request.POST)
    if not form.is_valid():
        return _render(request, price_form=form, status=422)
    data = form.cleaned_data
    try:
        row, created = model_prices.model_price_save(
            model=data["model"],
            input_per_million=data["input_per_million"],
            output_per_million=data["output_per_million"],
            cached_input_per_million=data["cached_input_per_million"],
            user=request.user,
        )
    except model_prices.PriceInputError as exc:  # the form checks the same; kept for safety
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _render(request, price_form=form, status=422)
    except model_prices.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    note = f"{'Added' if created else 'Changed'} the price of {row.model}; runs use it within seconds."
    if model_prices.from_environment(row.model):
        messages.warning(
            request,
            f"Saved, but AGENT_MODEL_PRICES in the server's environment also prices {row.model}, "
            "and that price wins until it is removed there.",
        )
    else:
        messages.success(request, note)
    return go(request, reverse("builder:provider-settings"))


@staff_view
@require_POST
def model_price_remove_view(request: HttpRequest) -> HttpResponse:
    _may_manage(request)
    name = request.POST.get("model", "")
    try:
        removed = model_prices.model_price_remove(model=name, user=request.user)
    except model_prices.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    if removed:
        messages.success(request, f"Removed the price of {name.strip().lower()}.")
    else:
        messages.error(request, "There was no stored price for that model; nothing changed.")
    return go(request, reverse("builder:provider-settings"))
