from __future__ import annotations

from django import template

from builder.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: object) -> str:
    return render_markdown(text)
