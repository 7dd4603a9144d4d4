"""Forms collect input; the rules live in ``builder/schema.py`` and the services.

A form turns its fields into the config dict the schema validates; when a
service raises ``ConfigError`` the view hands the errors back with
:func:`apply_errors`, so each message lands next to its field.
"""

from __future__ import annotations

from typing import Any

from django import forms
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from builder.schema import CONTEXT_MODES, INVOCATION_MODES, MEMORY_SCOPES, ConfigError
from builder.services.memory import MANUAL_SCOPES

# schema field -> form field that shows its error
_ERROR_FIELD = {"memory": "memory_scope", "config": None, "agent": None, "version": None}


def apply_errors(form: forms.Form, exc: ConfigError) -> None:
    for name, message in exc.errors.items():
        target = _ERROR_FIELD.get(name, name)
        form.add_error(target if target in form.fields else None, message)


def _text(**kwargs: Any) -> forms.CharField:
    return forms.CharField(widget=UnfoldAdminTextInputWidget, **kwargs)


KEY_HELP = (
    "Filled in from the name; change it if you like. 3-64 lowercase letters, digits and hyphens, "
    "starting and ending with a letter or digit. The API and the widget use it; it cannot change later."
)


MODE_CHOICES = [(m, m.title()) for m in INVOCATION_MODES]
CONTEXT_CHOICES = [(c, c.replace("_", " ").title()) for c in CONTEXT_MODES]


class AgentIdentityForm(forms.Form):
    name = _text(max_length=200, help_text="What people call it, e.g. Support bot.")
    # Blank: derived from the name (builder.js fills it in live; the view does it without JS).
    slug = _text(label="Key", max_length=64, required=False, help_text=KEY_HELP)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slug"].widget.attrs.update({"data-key-from": "name", "autocapitalize": "none"})


class AgentForm(forms.Form):
    name = _text(max_length=200, required=False)
    icon = _text(max_length=16, required=False, help_text="An emoji shown in lists.")
    description = forms.CharField(required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))
    system_prompt = forms.CharField(
        required=False,
        label="Instructions (system prompt)",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 10}),
        help_text="Who the agent is, what it should do, what it must never do.",
    )
    # A CharField with a select widget: the schema, not Django's choice check, judges the model,
    # so an unknown model gets the schema's message.
    model = forms.CharField(required=False, widget=UnfoldAdminSelectWidget)
    temperature = forms.CharField(
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text="0 = focused, 2 = creative. Blank: default.",
    )
    max_tokens = forms.CharField(
        required=False,
        label="Max tokens per reply",
        widget=UnfoldAdminTextInputWidget,
        help_text="Blank: default.",
    )
    http_tools = forms.MultipleChoiceField(
        required=False, label="HTTP tools", widget=UnfoldAdminCheckboxSelectMultipleWidget
    )
    python_tools = forms.MultipleChoiceField(
        required=False, label="Python tools", widget=UnfoldAdminCheckboxSelectMultipleWidget
    )
    sub_agents = forms.MultipleChoiceField(required=False, label="Sub-agents")
    # labelled "Greeting": a label containing "message" would clash with the playground's Message box
    opening_message = forms.CharField(
        label="Greeting",
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
        help_text="Shown as the agent's first message before anyone writes, e.g. Hi! How can I help?",
    )
    suggested_questions = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="One per line, up to 6. Shown as buttons; a click sends the question.",
    )
    memory_enabled = forms.BooleanField(
        required=False, label="Shared memory", widget=UnfoldBooleanSwitchWidget
    )
    memory_scope = forms.ChoiceField(
        required=False, choices=[(s, s.title()) for s in MEMORY_SCOPES], widget=UnfoldAdminSelectWidget
    )

    def __init__(
        self,
        *args: Any,
        models: list[dict[str, Any]],
        http_tools: list[str],
        python_tools: list[dict[str, Any]],
        agents: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].widget.choices = [("", "Default model")] + [
            (m["id"], f"{m.get('name') or m['id']}{' — demo, offline' if m.get('is_demo') else ''}")
            for m in models
        ]
        self.fields["http_tools"].choices = [(name, name) for name in http_tools]
        self.fields["python_tools"].choices = [(t["name"], t["name"]) for t in python_tools]
        self.fields["sub_agents"].choices = agents
        self._sub_agents = agents
        self.mode_choices = MODE_CHOICES
        self.context_choices = CONTEXT_CHOICES

    @property
    def sub_agent_rows(self) -> list[dict[str, Any]]:
        """One row per chosen sub-agent (plain inputs, not widgets); more are added through the
        searchable picker, so a site with thousands of agents never renders one row per agent."""
        labels = dict(self._sub_agents)
        source = self.data if self.is_bound else self.initial
        if self.is_bound:
            chosen = self.data.getlist("sub_agents") if hasattr(self.data, "getlist") else []
        else:
            chosen = list(self.initial.get("sub_agents", []))
        return [
            {
                "key": k,
                "label": labels[k],
                "checked": True,
                "mode": source.get(f"sub_mode__{k}", "delegate"),
                "context": source.get(f"sub_context__{k}", "full"),
            }
            for k in dict.fromkeys(chosen)
            if k in labels
        ]

    @property
    def has_sub_agent_choices(self) -> bool:
        return bool(self._sub_agents)

    @staticmethod
    def initial_from(agent: Any, config: dict[str, Any]) -> dict[str, Any]:
        initial = {
            "name": agent.name,
            "icon": agent.icon,
            "description": agent.description,
            "system_prompt": config.get("system_prompt", ""),
            "model": config.get("model", ""),
            "temperature": "" if config.get("temperature") is None else config["temperature"],
            "max_tokens": "" if config.get("max_tokens") is None else config["max_tokens"],
            "http_tools": config.get("http_tools", []),
            "python_tools": config.get("python_tools", []),
            "sub_agents": [link["agent_key"] for link in config.get("sub_agents", [])],
            "memory_enabled": config.get("memory", {}).get("enabled", False),
            "memory_scope": config.get("memory", {}).get("scope", "conversation"),
            "opening_message": config.get("opening_message", ""),
            "suggested_questions": "\n".join(config.get("suggested_questions", [])),
        }
        for link in config.get("sub_agents", []):
            initial[f"sub_mode__{link['agent_key']}"] = link.get("mode", "delegate")
            initial[f"sub_context__{link['agent_key']}"] = link.get("context", "full")
        return initial

    def to_config(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "system_prompt": data.get("system_prompt", ""),
            "model": data.get("model", ""),
            "temperature": data.get("temperature") or None,
            "max_tokens": data.get("max_tokens") or None,
            "http_tools": data.get("http_tools", []),
            "python_tools": data.get("python_tools", []),
            # mode and context are plain inputs (see sub_agent_rows); the schema validates them
            "sub_agents": [
                {
                    "agent_key": key,
                    "mode": self.data.get(f"sub_mode__{key}") or "delegate",
                    "context": self.data.get(f"sub_context__{key}") or "full",
                }
                for key in data.get("sub_agents", [])
            ],
            "memory": {
                "enabled": data.get("memory_enabled", False),
                "scope": data.get("memory_scope") or "conversation",
            },
            "opening_message": data.get("opening_message", ""),
            "suggested_questions": data.get("suggested_questions", "").splitlines(),
        }


class PublishForm(forms.Form):
    note = _text(max_length=500, required=False, help_text="What changed, for the version list.")


class DuplicateForm(AgentIdentityForm):
    pass


class ToolForm(forms.Form):
    name = _text(max_length=64, help_text="The name the model sees, e.g. get_weather.")
    description = forms.CharField(
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}), help_text="Tell the model when to use this tool."
    )
    method = forms.ChoiceField(
        choices=[(m, m) for m in ("GET", "POST", "PUT", "PATCH", "DELETE")], widget=UnfoldAdminSelectWidget
    )
    url = _text(label="URL", max_length=2000, help_text="https://… ; use {param} for path parameters.")
    headers = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text='JSON object of headers; reference a secret as "{{secret:NAME}}".',
    )
    parameters = forms.CharField(
        label="JSON Schema",
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 6}),
        help_text='Used only when the box below is ticked, e.g. {"type": "object", "properties": {"city": {"type": "string"}}}',
    )
    parameters_as_json = forms.BooleanField(
        required=False,
        label="Edit the parameters as a JSON Schema instead of the list",
        help_text="For schemas the list cannot show (nested objects, fixed choices).",
    )
    secrets = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2, "autocomplete": "off"}),
        help_text="NAME=value per line. Write-only: stored encrypted, never shown again. Blank keeps the current ones.",
    )


class CurlImportForm(forms.Form):
    curl = forms.CharField(
        label="cURL command",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="e.g. curl -H 'Authorization: Bearer KEY' 'https://api.example.com/v1/search?q=shoes'",
    )


class OpenAPIImportForm(forms.Form):
    file = forms.FileField(required=False, label="OpenAPI file", help_text="A .json, .yaml or .yml file.")
    document = forms.CharField(
        required=False,
        label="OpenAPI document",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="…or paste it here (JSON or YAML).",
    )
    server = _text(
        required=False,
        max_length=2000,
        label="Base URL",
        help_text="Blank: the first server the document names.",
    )


class TryToolForm(forms.Form):
    arguments = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="JSON object of arguments.",
    )


class ImportForm(forms.Form):
    file = forms.FileField(
        required=False, label="Exported file", help_text="A .yaml or .json file exported from this builder."
    )
    text = forms.CharField(
        required=False,
        label="Or paste the export",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 8}),
        help_text="The file's contents, as text (YAML or JSON).",
    )


class SystemForm(forms.Form):
    slug = _text(label="Key", max_length=64, required=False)
    name = _text(max_length=200)
    description = forms.CharField(required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}))
    entry_agent = forms.ChoiceField(widget=UnfoldAdminSelectWidget, help_text="The agent that answers first.")
    members = forms.MultipleChoiceField(required=False, widget=UnfoldAdminCheckboxSelectMultipleWidget)
    roles = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="agent-key: role, one per line (e.g. billing: answers billing questions).",
    )

    def __init__(self, *args: Any, agents: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entry_agent"].choices = agents
        self.fields["entry_agent"].error_messages["invalid_choice"] = (
            "No agent of yours has the key %(value)s; type part of its name and pick it from the list."
        )
        self.fields["members"].choices = agents
        self.fields["members"].error_messages["invalid_choice"] = (
            "No agent of yours has the key %(value)s; find it with the search box and add it."
        )


class MemoryAddForm(forms.Form):
    key = _text(max_length=200, help_text="A short name for the fact, e.g. preferred_language.")
    value = forms.CharField(
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}), help_text="Plain text, or JSON."
    )
    scope = forms.ChoiceField(
        label="Who it is for", choices=MANUAL_SCOPES, initial="system", widget=UnfoldAdminSelectWidget
    )


class MemoryEntryForm(forms.Form):
    # not required here: the service's message ("Enter a value, or delete the entry") says what to do
    value = forms.CharField(
        required=False, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}), help_text="JSON or plain text."
    )
