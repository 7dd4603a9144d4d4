"""Files attached to a chat message, read the way knowledge documents are.

Registered as the runtime's file reader (``runtime.attachments.set_file_reader``) in
``RagConfig.ready``: the type is sniffed from the content (``rag.sniff``: a PNG named
``.pdf`` is refused, Office zip bombs are refused from the archive's directory) and the text is
extracted in a contained child process (``rag.contain``: memory limit, and the message's
remaining time as the deadline). Each refusal is a ``FileRefused`` naming the file and the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import IO

from django.conf import settings

from rag.contain import extract_contained
from rag.extract import ExtractionError, Section
from rag.sniff import FileRejected, sniff
from runtime.attachments import FileRefused

logger = logging.getLogger(__name__)
HEAD_BYTES = 8192
_PLACES = {"pdf": "Page", "pptx": "Slide"}


def _text(kind: str, sections: list[Section]) -> str:
    """The sections as one text; pages and slides are marked so the model can say where."""
    parts = []
    for section in sections:
        body = section.text.strip()
        if kind in _PLACES and section.page:
            parts.append(f"[{_PLACES[kind]} {section.page}]\n{body}")
        elif kind == "xlsx" and section.heading:
            parts.append(f"[{section.heading}]\n{body}")
        else:
            parts.append(body)
    return "\n\n".join(parts)


def read_attachment(
    *, name: str, size: int, open_file: Callable[[], IO[bytes]], timeout: float
) -> tuple[str, str]:
    """``(kind, text)`` of an attached file; raises ``FileRefused`` with the file's name and why."""
    with open_file() as source:
        head = source.read(HEAD_BYTES)
    try:
        kind = sniff(name=name, head=head, open_file=open_file)
        sections = extract_contained(
            kind=kind,
            name=name,
            open_file=open_file,
            timeout=round(min(timeout, settings.RAG_PARSE_TIMEOUT), 1),
        )
    except (FileRejected, ExtractionError) as exc:
        raise FileRefused(str(exc)) from None
    except OSError:  # no process could be started for the parser (a process or memory limit)
        logger.exception("Could not start a parser for an attached file")
        raise FileRefused(
            f"{name}: the file could not be read just now (the server could not start its reader); "
            "try again in a moment."
        ) from None
    return kind, _text(kind, sections)
