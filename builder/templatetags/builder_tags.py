from __future__ import annotations

from django import template

from builder.access import role_label
from builder.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: object) -> str:
    return render_markdown(text)


@register.simple_tag
def role_of(user: object, obj: object) -> str:
    """The user's role on a row of a list page (read from the row's ``access_rank``)."""
    return role_label(user, obj)  # type: ignore[arg-type]
