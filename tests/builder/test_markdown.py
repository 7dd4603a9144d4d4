"""Replies rendered as markdown: one converter per thread, and nothing of one reply reaches the next."""

from __future__ import annotations

import threading

from builder.markdown import render_markdown


def test_a_reference_defined_in_one_reply_is_unknown_in_the_next():
    first = render_markdown("See [the docs][d].\n\n[d]: https://example.com/docs")
    assert '<a href="https://example.com/docs"' in first
    second = render_markdown("Also see [the docs][d].")
    assert "href" not in second and "[the docs][d]" in second


def test_raw_html_and_script_links_stay_inert_on_a_reused_converter():
    for _ in range(2):  # the second conversion uses the converter the first one built
        html = render_markdown('<img src=x onerror="alert(1)"> [x](javascript:alert(2)) **ok**')
        assert "<img" not in html and "javascript:" not in html and "<strong>ok</strong>" in html


def test_threads_render_at_the_same_time_without_mixing_replies():
    texts = [f"Reply **{n}** with [a link][l].\n\n[l]: https://example.com/{n}" for n in range(8)]
    results: dict[int, str] = {}
    barrier = threading.Barrier(len(texts))

    def render(n: int) -> None:
        barrier.wait(timeout=10)
        for _ in range(50):
            results[n] = render_markdown(texts[n])

    threads = [threading.Thread(target=render, args=(n,)) for n in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for n in range(len(texts)):
        assert f"<strong>{n}</strong>" in results[n] and f"https://example.com/{n}" in results[n]
