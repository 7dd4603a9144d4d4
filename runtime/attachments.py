"""Files attached to a chat message: their text goes into the user's message, so the model reads
it for the rest of the conversation.

Reading a file is a seam. On its own the runtime reads UTF-8 text files; an app that can read
documents registers a reader in its ``AppConfig.ready`` with :func:`set_file_reader` (``rag``
does: pdf, docx, xlsx, pptx, html, csv, json, md and txt, the type sniffed from the content,
each file parsed in a contained child process). Callers (the run API's multipart form, the
builder's playground) call :func:`read_attachments` before they write anything, then
:func:`with_attachments` to build the message; a refusal is :class:`AttachmentRefused`, whose
messages each name the file and the reason.

Reading happens in the request, before the run exists: that is what lets a bad file be a 4xx
that leaves nothing behind (doing it in the worker would mean a run and a message first, then a
failed run). The request's thread only waits on the reader (rag's parser runs in a child
process with a deadline), and the wait is bounded by ``AGENT_ATTACHMENT_TIMEOUT`` for all the
files of one message. The API's views run on its thread pool and the builder's sync views each
on their own thread, never on the event loop.

Caps (``runtime.conf``): ``AGENT_ATTACHMENT_MAX_FILES`` per message, ``AGENT_ATTACHMENT_MAX_BYTES``
per file, ``AGENT_ATTACHMENT_MAX_CHARS`` of extracted text for all the files of one message,
``AGENT_ATTACHMENT_TIMEOUT`` seconds to read them.

In the stored message each file is a fenced block after what the user typed::

    What does the contract say about refunds?

    <attached_file name="contract.pdf" type="pdf" size="48213">
    [Page 1]
    ...
    </attached_file>

so a conversation reloaded later still shows which files were attached (:func:`split_attachments`).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from runtime import conf

MAX_NAME = 200


class AttachmentRefused(ValueError):
    """One or more attached files cannot be used; ``messages`` name each file and the reason."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__(" ".join(messages))
        self.messages = list(messages)


class FileRefused(ValueError):
    """What a reader raises for one file; the message names the file and the reason."""


@dataclass(frozen=True)
class Attachment:
    name: str
    kind: str
    size: int
    text: str


@dataclass(frozen=True)
class AttachedFile:
    """A file named in a stored message (its text stays in the message)."""

    name: str
    kind: str
    size: int


class FileReader(Protocol):
    def __call__(
        self, *, name: str, size: int, open_file: Callable[[], IO[bytes]], timeout: float
    ) -> tuple[str, str]:
        """``(kind, text)`` of the file, within ``timeout`` seconds; raises :class:`FileRefused`."""


def read_text_file(
    *, name: str, size: int, open_file: Callable[[], IO[bytes]], timeout: float
) -> tuple[str, str]:
    """The runtime's own reader: UTF-8 text files only."""
    with open_file() as source:
        raw = source.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused(
            f"{name}: this is not a text file; only UTF-8 text files (.txt, .md, .csv, .json...) can be "
            "attached here. Paste what matters into the message instead."
        ) from None
    if "\x00" in text:
        raise FileRefused(f"{name}: the file holds a NUL character; attach plain text.")
    kind = name.rsplit(".", 1)[-1].lower() if "." in name else "txt"
    return (kind if kind.isalnum() and len(kind) <= 8 else "txt"), text


_reader: FileReader = read_text_file


def set_file_reader(reader: FileReader | None) -> None:
    """Register the function that reads attached files (None: back to UTF-8 text only)."""
    global _reader
    _reader = reader or read_text_file


def file_reader() -> FileReader:
    return _reader


def clean_name(raw: str) -> str:
    """The file's own name, safe inside the fence: no folders, no control characters, no quotes
    or angle brackets, at most 200 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join("_" if ch in '"<>' else ch for ch in name if ch.isprintable()).strip()
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = stem[: MAX_NAME - len(ext) - 1] + dot + ext if dot and len(ext) < 16 else name[:MAX_NAME]
    return name or "file"


def _size(size: int) -> str:
    """``12.3 MB``, ``10 MB`` (a round limit), ``48 KB``, ``900 bytes``."""
    for unit, name in ((1024 * 1024, "MB"), (1024, "KB")):
        if size >= unit:
            return (
                f"{size // unit} {name}"
                if size % unit == 0
                else f"{size / unit:.{1 if name == 'MB' else 0}f} {name}"
            )
    return f"{size} bytes"


def _opener(upload: Any) -> Callable[[], Any]:
    """Reopen an uploaded file from its start, without closing it (the caller owns it)."""

    def reopen() -> contextlib.nullcontext:
        upload.seek(0)
        return contextlib.nullcontext(upload.file)

    return reopen


def limits(*, max_files: int | None = None, max_bytes: int | None = None) -> dict[str, Any]:
    """The caps, for callers that check early (the playground's attach button). A channel may
    pass its own ``max_files`` and ``max_bytes``: they can only tighten the server's."""
    files = conf.setting("AGENT_ATTACHMENT_MAX_FILES")
    size = conf.setting("AGENT_ATTACHMENT_MAX_BYTES")
    files = min(files, max_files) if max_files else files
    size = min(size, max_bytes) if max_bytes else size
    return {
        "max_files": files,
        "max_bytes": size,
        "max_size": _size(size),
        "max_chars": conf.setting("AGENT_ATTACHMENT_MAX_CHARS"),
        "timeout": conf.setting("AGENT_ATTACHMENT_TIMEOUT"),
    }


def read_attachments(
    uploads: Sequence[Any], *, max_files: int | None = None, max_bytes: int | None = None
) -> list[Attachment]:
    """Check and read the uploaded files (Django ``UploadedFile`` objects) of one message.

    Cheap checks (count, empty, size) come first, for every file; then each file is read. Every
    file that cannot be used is reported, each message naming the file and the reason.
    ``max_files`` and ``max_bytes`` (a channel's own caps) only tighten the server's."""
    if not uploads:
        return []
    caps = limits(max_files=max_files, max_bytes=max_bytes)
    if len(uploads) > caps["max_files"]:
        raise AttachmentRefused(
            [f"Attach at most {caps['max_files']} files to one message ({len(uploads)} were sent)."]
        )
    refusals: list[str] = []
    named = []
    for upload in uploads:
        name = clean_name(getattr(upload, "name", "") or "")
        size = int(getattr(upload, "size", 0) or 0)
        if size == 0:
            refusals.append(f"{name}: the file is empty.")
        elif size > caps["max_bytes"]:
            refusals.append(
                f"{name}: the file is {_size(size)}; attach files of at most {_size(caps['max_bytes'])}."
            )
        named.append((name, size, upload))
    if refusals:
        raise AttachmentRefused(refusals)
    deadline = time.monotonic() + caps["timeout"]
    reader = file_reader()
    attachments: list[Attachment] = []
    total = 0
    for name, size, upload in named:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            refusals.append(
                f"{name}: not read; reading the files of one message may take at most "
                f"{caps['timeout']:g} seconds. Send fewer or smaller files."
            )
            continue
        try:
            kind, text = reader(name=name, size=size, open_file=_opener(upload), timeout=remaining)
        except FileRefused as exc:
            refusals.append(str(exc))
            continue
        text = _FENCE_CLOSE.sub("", text.replace("\x00", "")).strip()
        if not text:
            refusals.append(f"{name}: no text was found in the file.")
            continue
        total += len(text)
        if total > caps["max_chars"]:
            refusals.append(
                f"{name}: its text is {len(text):,} characters; the files of one message may hold at most "
                f"{caps['max_chars']:,} in all. Attach only the part that matters."
            )
            continue
        attachments.append(Attachment(name=name, kind=kind, size=size, text=text))
    if refusals:
        raise AttachmentRefused(refusals)
    return attachments


_FENCE_CLOSE = re.compile(r"</\s*attached_file\s*>", re.IGNORECASE)
_OPEN = r'<attached_file name="([^"\n]*)" type="(\w*)" size="(\d+)">\n'
# one block; its text cannot hold a closing tag (read_attachments removes them)
_BLOCK = re.compile(_OPEN + r"(?:(?!</attached_file>).)*?\n</attached_file>", re.DOTALL)


def fence(attachment: Attachment) -> str:
    return (
        f'<attached_file name="{attachment.name}" type="{attachment.kind}" size="{attachment.size}">\n'
        f"{attachment.text}\n</attached_file>"
    )


def with_attachments(text: str, attachments: Sequence[Attachment] | str) -> str:
    """The message's content: what the user typed, then each file's block. ``attachments`` may
    also be the blocks of an earlier message (``split_attachments(...).blocks``)."""
    blocks = attachments if isinstance(attachments, str) else "\n\n".join(fence(a) for a in attachments)
    return "\n\n".join(part for part in (text.strip(), blocks) if part)


@dataclass(frozen=True)
class SplitMessage:
    text: str  # what the user typed
    files: list[AttachedFile]
    blocks: str  # the files' blocks as stored


def split_attachments(content: Any) -> SplitMessage:
    """What the user typed and the files attached to a stored user message."""
    if not isinstance(content, str):
        return SplitMessage(text="" if content is None else str(content), files=[], blocks="")
    if "<attached_file " not in content:
        return SplitMessage(text=content, files=[], blocks="")
    start = 0
    while True:
        index = content.find("<attached_file ", start)
        if index < 0:
            return SplitMessage(text=content, files=[], blocks="")
        if index == 0 or content[index - 2 : index] == "\n\n":
            files = _blocks_to_end(content, index)
            if files is not None:
                return SplitMessage(text=content[:index].rstrip("\n"), files=files, blocks=content[index:])
        start = index + 1


def _blocks_to_end(content: str, index: int) -> list[AttachedFile] | None:
    files = []
    position = index
    while True:
        match = _BLOCK.match(content, position)
        if match is None:
            return None
        files.append(AttachedFile(name=match.group(1), kind=match.group(2), size=int(match.group(3))))
        position = match.end()
        if position == len(content):
            return files
        if not content.startswith("\n\n<attached_file ", position):
            return None
        position += 2
