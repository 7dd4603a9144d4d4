"""LLM output as sanitised HTML: markdown rendered, then cleaned by nh3 (allow-list).

The model is assumed hostile: raw HTML in its reply is escaped by markdown's
``escape`` handling, and whatever survives goes through nh3 with a small tag
allow-list and http/https/mailto links only, so ``<img onerror>`` and
``javascript:`` links come out inert.
"""

from __future__ import annotations

import threading

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
    "del",
}
ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


class _EscapeHtml(md.extensions.Extension):
    """Treat raw HTML in the source as text, not markup."""

    def extendMarkdown(self, m: md.Markdown) -> None:  # noqa: N802 - markdown's API
        m.preprocessors.deregister("html_block")
        m.inlinePatterns.deregister("html")


_local = threading.local()


def _converter() -> md.Markdown:
    """This thread's converter. Building one (its parser and four extensions) took longer than
    converting a short reply, and a page renders one per message; a converter is not safe to
    share between threads, and ``reset()`` before each use clears what the last text left behind
    (reference links, for one)."""
    converter = getattr(_local, "converter", None)
    if converter is None:
        converter = _local.converter = md.Markdown(
            extensions=[_EscapeHtml(), "fenced_code", "tables", "sane_lists"]
        )
    return converter


def render_markdown(text: object) -> SafeString:
    source = text if isinstance(text, str) else ("" if text is None else str(text))
    html = _converter().reset().convert(source)
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - nh3 output is the sanitised form
