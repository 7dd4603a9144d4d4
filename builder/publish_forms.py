"""The widget channel's settings form on the Publish page. The rules live in the runtime's
``widget_settings_clean``; this form only lays the fields out and puts each error by its field."""

from __future__ import annotations

from typing import Any

from django import forms
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanWidget,
)

from runtime.attachments import limits as attachment_limits
from runtime.channels.models import WidgetChannel, WidgetPosition
from runtime.channels.services import widget_settings_clean


class WidgetSettingsForm(forms.Form):
    allowed_origins = forms.CharField(
        required=False,
        label="Allowed websites (origins)",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3, "spellcheck": "false", "autocapitalize": "none"}),
        help_text=(
            "One per line, scheme and host only: https://shop.example.com (add :8080 for a port). "
            "https://*.example.com allows every subdomain of example.com. Pages elsewhere are refused."
        ),
    )
    title = forms.CharField(widget=UnfoldAdminTextInputWidget, help_text="Shown at the top of the chat.")
    colour = forms.CharField(
        widget=UnfoldAdminTextInputWidget(attrs={"autocapitalize": "none"}),
        help_text="A hex colour for the button and header, like #2563eb.",
    )
    position = forms.ChoiceField(choices=WidgetPosition.choices, widget=UnfoldAdminSelectWidget)
    greeting = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
        help_text="The first message visitors see.",
    )
    suggested_questions = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Up to 4, one per line; a visitor can click one instead of typing.",
    )
    show_sources = forms.BooleanField(
        required=False,
        widget=UnfoldBooleanWidget,
        label="Show sources",
        help_text="List the knowledge documents an answer used.",
    )
    messages_per_visitor_per_day = forms.CharField(
        label="Messages per visitor per day",
        widget=UnfoldAdminIntegerFieldWidget(attrs={"inputmode": "numeric"}),
        help_text="A visitor who reaches it is told to come back tomorrow.",
    )
    requests_per_minute_per_visitor = forms.CharField(
        label="Messages per visitor per minute",
        widget=UnfoldAdminIntegerFieldWidget(attrs={"inputmode": "numeric"}),
        help_text="Faster senders are asked to wait a moment (error 429 with Retry-After).",
    )
    max_steps_per_run = forms.CharField(
        required=False,
        label="Most steps per answer",
        widget=UnfoldAdminIntegerFieldWidget(
            attrs={"inputmode": "numeric", "placeholder": "agent's own (10)"}
        ),
        help_text="Model calls (tool-calling steps) one answer may take, 1-50. Blank: the agent's own limit.",
    )
    max_tokens_per_run = forms.CharField(
        required=False,
        label="Most tokens per answer",
        widget=UnfoldAdminIntegerFieldWidget(attrs={"inputmode": "numeric", "placeholder": "no cap"}),
        help_text="Tokens (prompt and reply, all steps) one answer may use, 100-1,000,000; the agent stops "
        "at its next step once over. Blank: no cap.",
    )
    max_seconds_per_run = forms.CharField(
        required=False,
        label="Most seconds per answer",
        widget=UnfoldAdminIntegerFieldWidget(attrs={"inputmode": "numeric", "placeholder": "server's own"}),
        help_text="An answer still running after this is stopped, 5-3,600. Blank: the server's run timeout.",
    )

    attachments_enabled = forms.BooleanField(
        required=False,
        widget=UnfoldBooleanWidget,
        label="Visitors may attach files",
        help_text=(
            "Off by default: anyone who opens your site could send files, and reading each one takes "
            "the server's time. When on, the chat shows an attach button; a file's text (PDF, Word, "
            "Excel, PowerPoint, HTML, CSV, JSON, Markdown or plain text) goes to the agent with the "
            "message, and it is not kept as a file."
        ),
    )
    attachment_max_files = forms.CharField(
        required=False,
        label="Most files per message",
        widget=UnfoldAdminIntegerFieldWidget(attrs={"inputmode": "numeric"}),
    )
    attachment_max_mb = forms.CharField(
        required=False,
        label="Largest file (MB)",
        widget=UnfoldAdminTextInputWidget(attrs={"inputmode": "decimal"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the server's caps, which these may only tighten
        server = attachment_limits()
        files, size = self.fields["attachment_max_files"], self.fields["attachment_max_mb"]
        files.widget.attrs["placeholder"] = f"server's own ({server['max_files']})"
        files.help_text = f"1 to {server['max_files']}. Blank: the server's limit ({server['max_files']})."
        size.widget.attrs["placeholder"] = f"server's own ({server['max_size']})"
        size.help_text = f"Up to {server['max_size']}, e.g. 2 or 0.5. Blank: the server's limit."

    @classmethod
    def for_channel(cls, channel: WidgetChannel, data: Any = None) -> WidgetSettingsForm:
        initial = {
            "allowed_origins": "\n".join(channel.allowed_origins),
            "title": channel.title,
            "colour": channel.colour,
            "position": channel.position,
            "greeting": channel.greeting,
            "suggested_questions": "\n".join(channel.suggested_questions),
            "show_sources": channel.show_sources,
            "messages_per_visitor_per_day": channel.messages_per_visitor_per_day,
            "requests_per_minute_per_visitor": channel.requests_per_minute_per_visitor,
            "max_steps_per_run": channel.max_steps_per_run or "",
            "max_tokens_per_run": channel.max_tokens_per_run or "",
            "max_seconds_per_run": channel.max_seconds_per_run or "",
            "attachments_enabled": channel.attachments_enabled,
            "attachment_max_files": channel.attachment_max_files or "",
            "attachment_max_mb": f"{channel.attachment_max_mb.normalize():f}"
            if channel.attachment_max_mb
            else "",
        }
        return cls(data, initial=initial)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        cleaned, errors = widget_settings_clean({k: v for k, v in data.items() if k in self.fields})
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
        self.settings = cleaned
        return data
