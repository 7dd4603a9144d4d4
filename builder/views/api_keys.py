"""An agent's (or a multi-agent system's) API keys page: create (the key shown once), list,
revoke, limits and daily budget. ``kind`` ("agent" or "system") comes from the URL.

Owners only (``perms.publish`` from ``builder/access.py``; the runtime's services ask
``runtime.access`` again). Every change is a POST with CSRF; a bad value answers 422 with the
message next to its field, which htmx swaps in (builder.js).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from builder.access import get_agent_for_user, get_system_for_user
from builder.views.common import go, page, staff_view
from runtime import conf
from runtime.agents import ToolCallingAgent
from runtime.channels import api_keys as keys
from runtime.channels.budget import spend_today, unpriced_model


class KeyCreateForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=keys.MAX_NAME,
        help_text="Who or what will use it, e.g. “Shop website” or “Support bot”.",
        widget=forms.TextInput(attrs={"class": "b-input", "autocomplete": "off"}),
    )
    requests_per_minute = forms.CharField(
        label="Requests per minute",
        initial=60,
        help_text=f"The most this key may send in any minute (1 to {keys.MAX_RPM}); more get error 429.",
        widget=forms.TextInput(attrs={"class": "b-input", "inputmode": "numeric"}),
    )

    def clean_requests_per_minute(self) -> int:
        try:
            return keys.clean_requests_per_minute(self.cleaned_data["requests_per_minute"])
        except keys.ChannelInputError as exc:
            raise forms.ValidationError(exc.message) from None


class KeyLimitForm(forms.Form):
    requests_per_minute = KeyCreateForm.base_fields["requests_per_minute"]
    clean_requests_per_minute = KeyCreateForm.clean_requests_per_minute


class BudgetForm(forms.Form):
    daily_budget_usd = forms.CharField(
        label="Daily budget (US dollars)",
        required=False,
        help_text="The most runs through API keys and the web widget may cost per day (UTC). Blank: "
        "no budget in dollars. Once it is used up, programs get error 429 and visitors a polite "
        "message until midnight UTC.",
        widget=forms.TextInput(
            attrs={"class": "b-input", "inputmode": "decimal", "placeholder": "e.g. 5.00"}
        ),
    )
    daily_budget_tokens = forms.CharField(
        label="Daily budget (tokens)",
        required=False,
        help_text="The most tokens (sent and received, any model) those runs may use per day, "
        "e.g. 200000 or 200k. Blank: no budget in tokens. Needed for a model without a known price, "
        "whose cost a budget in dollars cannot count.",
        widget=forms.TextInput(attrs={"class": "b-input", "placeholder": "e.g. 200k"}),
    )

    def clean_daily_budget_usd(self) -> Any:
        try:
            return keys.clean_daily_budget(self.cleaned_data["daily_budget_usd"])
        except keys.ChannelInputError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_daily_budget_tokens(self) -> Any:
        try:
            return keys.clean_daily_budget_tokens(self.cleaned_data["daily_budget_tokens"])
        except keys.ChannelInputError as exc:
            raise forms.ValidationError(exc.message) from None


def _caps(kind: str, obj: Any) -> dict[str, Any]:
    """The caps every run of the published version has already (shown, not set, here)."""
    config = obj.published_version.config if kind == "agent" and obj.published_version_id else {}
    return {
        "steps": ToolCallingAgent.max_iterations,
        "max_tokens": config.get("max_tokens"),
        "timeout": conf.get("RUN_TIMEOUT_SECONDS"),
        "retries": conf.get("MAX_RETRIES"),
    }


def _owned(request: HttpRequest, kind: str, public_id: str):
    getter = get_agent_for_user if kind == "agent" else get_system_for_user
    obj, perms = getter(request.user, public_id)
    if not perms.publish:
        raise PermissionDenied(f"Only the {kind}'s owners manage its API keys.")
    return obj


def _url(kind: str, name: str, obj: Any, *extra: Any) -> str:
    return reverse(f"builder:{kind}-{name}", args=[obj.public_id, *extra])


def _published(kind: str, obj: Any) -> bool:
    return obj.published_version_id is not None if kind == "agent" else obj.published_at is not None


def _render(
    request: HttpRequest,
    kind: str,
    agent: Any,
    *,
    create_form: KeyCreateForm | None = None,
    budget_form: BudgetForm | None = None,
    limit_forms: dict[str, KeyLimitForm] | None = None,
    new_token: str = "",
    status: int = 200,
) -> HttpResponse:
    budget = keys.budgets_for(agent.slug)
    agent_keys = list(keys.keys_for_agent(agent.slug))
    limit_forms = limit_forms or {}
    rows = [
        {
            "key": key,
            "limit_url": _url(kind, "api-key-limit", agent, key.pk),
            "revoke_url": _url(kind, "api-key-revoke", agent, key.pk),
            "form": limit_forms.get(str(key.pk))
            or KeyLimitForm(
                initial={"requests_per_minute": key.requests_per_minute}, prefix=f"k{key.pk.hex[:8]}"
            ),
        }
        for key in agent_keys
    ]
    context = {
        "agent": agent,
        "rows": rows,
        "create_form": create_form or KeyCreateForm(),
        "budget_form": budget_form
        or BudgetForm(
            initial={
                "daily_budget_usd": budget.daily_budget_usd if budget.daily_budget_usd is not None else "",
                "daily_budget_tokens": budget.daily_budget_tokens
                if budget.daily_budget_tokens is not None
                else "",
            }
        ),
        "budget": budget,
        "unpriced_model": unpriced_model(agent.slug),
        "spend": spend_today(agent.slug),
        "new_token": new_token,
        "kind": kind,
        "page_url": _url(kind, "api-keys", agent),
        "budget_url": _url(kind, "api-budget", agent),
        "published": _published(kind, agent),
        "base_url": request.build_absolute_uri("/v1"),
        "caps": _caps(kind, agent),
        "title": f"{agent.name}: API keys",
        "section": f"{kind}s",
    }
    return page(request, "builder/api_keys.html", context, partial="keys", status=status)


@staff_view
@require_http_methods(["GET", "POST"])
def api_keys_view(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    """The page, and (POST) a new key: the answer shows the key once and never again."""
    agent = _owned(request, kind, public_id)
    if request.method == "GET":
        return _render(request, kind, agent)
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        return _render(request, kind, agent, create_form=form, status=422)
    try:
        _, token = keys.api_key_create(
            name=form.cleaned_data["name"],
            agent_keys=[agent.slug],
            user=request.user,
            requests_per_minute=form.cleaned_data["requests_per_minute"],
        )
    except keys.ChannelInputError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _render(request, kind, agent, create_form=form, status=422)
    except keys.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    response = _render(request, kind, agent, new_token=token, status=201 if request.htmx else 200)
    response["Cache-Control"] = "no-store"  # the key must not be kept by any cache
    return response


@staff_view
@require_POST
def api_key_budget_view(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    agent = _owned(request, kind, public_id)
    form = BudgetForm(request.POST)
    if not form.is_valid():
        return _render(request, kind, agent, budget_form=form, status=422)
    try:
        keys.agent_budget_set(
            agent_key=agent.slug,
            user=request.user,
            daily_budget_usd=form.cleaned_data["daily_budget_usd"],
            daily_budget_tokens=form.cleaned_data["daily_budget_tokens"],
        )
    except keys.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    amount, tokens = form.cleaned_data["daily_budget_usd"], form.cleaned_data["daily_budget_tokens"]
    parts = [f"${amount:.2f}"] if amount is not None else []
    parts += [f"{tokens:,} tokens"] if tokens is not None else []
    messages.success(request, f"Daily budget set to {' and '.join(parts)}." if parts else "No daily budget.")
    return go(request, _url(kind, "api-keys", agent))


def _key(agent: Any, key_id: Any):
    key = keys.key_for_agent(agent.slug, key_id)
    if key is None:
        raise Http404("No such key.")
    return key


@staff_view
@require_POST
def api_key_limit_view(request: HttpRequest, public_id: str, key_id: str, kind: str) -> HttpResponse:
    agent = _owned(request, kind, public_id)
    key = _key(agent, key_id)
    form = KeyLimitForm(request.POST, prefix=f"k{key.pk.hex[:8]}")
    if not form.is_valid():
        return _render(request, kind, agent, limit_forms={str(key.pk): form}, status=422)
    try:
        keys.api_key_set_limit(
            key=key, user=request.user, requests_per_minute=form.cleaned_data["requests_per_minute"]
        )
    except keys.NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    messages.success(request, f"“{key.name}” may send {key.requests_per_minute} requests per minute.")
    return go(request, _url(kind, "api-keys", agent))


@staff_view
@require_http_methods(["GET", "POST"])
def api_key_revoke_view(request: HttpRequest, public_id: str, key_id: str, kind: str) -> HttpResponse:
    """GET: the confirmation dialog. POST: revoke."""
    agent = _owned(request, kind, public_id)
    key = _key(agent, key_id)
    if request.method == "POST":
        try:
            keys.api_key_revoke(key=key, user=request.user)
        except keys.NotAllowed as exc:
            raise PermissionDenied(str(exc)) from None
        messages.success(request, f"Revoked “{key.name}”. Programs using it are refused from now on.")
        return go(request, _url(kind, "api-keys", agent))
    context = {
        "agent": agent,
        "key": key,
        "action": _url(kind, "api-key-revoke", agent, key.pk),
        "title": f"Revoke {key.name}",
        "section": f"{kind}s",
    }
    return page(request, "builder/api_key_revoke_modal.html", context, partial="dialog")
