"""Token-aware chunking that keeps structure.

A "token" here is a word or a punctuation mark (``\\w+|[^\\w\\s]``): tiktoken needs to
download its encodings at run time, which this product must not do, and for English
prose this count is within about 20% of a BPE tokenizer's. Chunks never cross a
section (a page, slide, sheet or heading); inside a section a chunk ends at a line
or sentence break when one is near, and the next chunk repeats ``overlap`` tokens.
Offsets are characters in the document's extracted text (sections joined by a blank line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.extract import Section

_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = {".", "!", "?", ";", ":"}
SECTION_GAP = "\n\n"


@dataclass
class ChunkDraft:
    ordinal: int
    text: str
    page: int | None
    section: str
    char_start: int
    char_end: int
    token_count: int

    def embedding_text(self) -> str:
        """The heading travels with the passage, so a question about it finds the passage."""
        return f"{self.section}\n{self.text}" if self.section and self.section not in self.text else self.text


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def _break_at(text: str, spans: list[tuple[int, int]], start: int, end: int, size: int) -> int:
    """The best token index to end a window [start, end) at: a line break, then a sentence end."""
    floor = start + max(1, int(size * 0.6))
    for want_newline in (True, False):
        for j in range(end, floor, -1):
            last = spans[j - 1]
            if want_newline:
                following = text[last[1] : spans[j][0]] if j < len(spans) else "\n"
                if "\n" in following:
                    return j
            elif text[last[0] : last[1]] in _SENTENCE_END:
                return j
    return end


def chunk_sections(sections: list[Section], *, size: int, overlap: int) -> list[ChunkDraft]:
    size = max(size, 8)
    overlap = min(max(overlap, 0), size // 2)
    drafts: list[ChunkDraft] = []
    base = 0
    for section in sections:
        text = section.text
        spans = [m.span() for m in _TOKEN.finditer(text)]
        i = 0
        while i < len(spans):
            end = min(i + size, len(spans))
            if end < len(spans):
                end = _break_at(text, spans, i, end, size)
            start_char, end_char = spans[i][0], spans[end - 1][1]
            drafts.append(
                ChunkDraft(
                    ordinal=len(drafts),
                    text=text[start_char:end_char],
                    page=section.page,
                    section=section.heading[:500],
                    char_start=base + start_char,
                    char_end=base + end_char,
                    token_count=end - i,
                )
            )
            if end >= len(spans):
                break
            i = max(end - overlap, i + 1)
        base += len(text) + len(SECTION_GAP)
    return drafts
