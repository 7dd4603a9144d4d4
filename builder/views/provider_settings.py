"""Model keys entered in the UI: superusers or holders of ``runtime.manage_providers``.

Keys are write-only (never sent back to the browser) and stored encrypted; an environment
variable of the same name wins and is shown as such.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from unfold.widgets import UnfoldAdminTextInputWidget

from builder.views.common import go, page, staff_view
from runtime.llm import list_models
from runtime.llm.credentials import NAMES, credentials_save, from_environment, stored

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


@staff_view
@require_http_methods(["GET", "POST"])
def provider_settings_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("runtime.manage_providers"):
        raise PermissionDenied("Only superusers or staff allowed to manage providers can see model keys.")
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
    context = {
        "form": form,
        "rows": rows,
        "models": [m for m in list_models()["models"] if not m["is_demo"]],
        "title": "Model keys",
        "section": "settings",
    }
    return page(request, "builder/provider_settings.html", context, status=422 if form.errors else 200)
