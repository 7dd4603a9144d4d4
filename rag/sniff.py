"""What a file really is, from its bytes (the name only chooses between text formats).

``sniff(*, name, head, open_file)`` returns one of ``KINDS`` or raises
:class:`FileRejected` with a message naming the file and what to do. Office files
are zip archives: their directory is read (never the contents) to tell Word,
Excel and PowerPoint apart and to refuse zip bombs before any parser opens them.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from typing import IO

from django.conf import settings

KINDS = ("txt", "md", "csv", "json", "html", "pdf", "docx", "xlsx", "pptx")
TEXT_KINDS = {"txt", "md", "csv", "json", "html"}
_TEXT_EXTENSIONS = {
    "txt": "txt", "text": "txt", "log": "txt", "md": "md", "markdown": "md", "csv": "csv",
    "json": "json", "html": "html", "htm": "html",
}  # fmt: skip
_BINARY_NAMES = {"pdf": "PDF", "docx": "Word", "xlsx": "Excel", "pptx": "PowerPoint"}
_SIGNATURES = [
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
]
_OFFICE_PARTS = {"word/document.xml": "docx", "xl/workbook.xml": "xlsx", "ppt/presentation.xml": "pptx"}
MAX_ZIP_ENTRIES = 10_000


class FileRejected(ValueError):
    """The file cannot be used; the message names it and says why."""


def extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def check_zip(name: str, archive: zipfile.ZipFile) -> None:
    """Refuse archives that would unpack to far more than they weigh."""
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise FileRejected(f"{name}: the file has {len(entries)} parts inside; at most {MAX_ZIP_ENTRIES}.")
    total = sum(entry.file_size for entry in entries)
    limit = settings.RAG_MAX_UNZIPPED_BYTES
    if total > limit:
        raise FileRejected(
            f"{name}: the file would unpack to {total // (1024 * 1024)} MB (a zip bomb?); "
            f"the limit is {limit // (1024 * 1024)} MB."
        )


def _office_kind(name: str, source: IO[bytes]) -> str:
    try:
        with zipfile.ZipFile(source) as archive:
            check_zip(name, archive)
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        raise FileRejected(
            f"{name}: the file is a damaged zip archive; save it again and re-upload."
        ) from None
    for part, kind in _OFFICE_PARTS.items():
        if part in names:
            return kind
    raise FileRejected(
        f"{name}: this is a zip archive, not a Word, Excel or PowerPoint file; upload the documents inside it."
    )


def _decode(head: bytes) -> str | None:
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return head.decode(encoding)
        except UnicodeDecodeError:
            continue
    # a multi-byte character cut at the end of the sample is still text
    try:
        return head[:-3].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text_kind(name: str, text: str) -> str:
    stripped = text.lstrip().lower()
    claimed = _TEXT_EXTENSIONS.get(extension(name))
    if stripped.startswith(("<!doctype html", "<html")) or (claimed == "html" and stripped.startswith("<")):
        return "html"
    if claimed == "json" or (claimed is None and stripped[:1] in ("{", "[")):
        return "json"
    return claimed or "txt"


def sniff(*, name: str, head: bytes, open_file: Callable[[], IO[bytes]]) -> str:
    """The kind of the file whose first bytes are ``head``; ``open_file`` reopens it from the start."""
    claimed = extension(name)
    if head.startswith(b"%PDF-"):
        kind = "pdf"
    elif head.startswith(b"PK\x03\x04"):
        with open_file() as source:
            kind = _office_kind(name, source)
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRejected(
            f"{name}: this is an old-format Office file (.doc, .xls, .ppt) or a password-protected one; "
            "save it as .docx, .xlsx or .pptx without a password."
        )
    else:
        for signature, what in _SIGNATURES:
            if head.startswith(signature):
                raise FileRejected(f"{name}: this is {what}, which holds no text to index.")
        text = _decode(head)
        if text is None:
            raise FileRejected(
                f"{name}: the content is not text nor a supported document "
                f"({', '.join(KINDS)}); upload one of those."
            )
        kind = _text_kind(name, text)
    if claimed in _BINARY_NAMES and claimed != kind:
        raise FileRejected(
            f"{name}: the name says {_BINARY_NAMES[claimed]}, but the content is {kind.upper()}; "
            "rename it or upload the real file."
        )
    return kind


def json_pretty(raw: str) -> str:
    return json.dumps(json.loads(raw), indent=1, ensure_ascii=False)
