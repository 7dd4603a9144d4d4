"""Text out of a stored file, as sections that keep their page, slide, sheet or heading.

``extract(*, kind, name, open_file) -> list[Section]``. Every failure a user can fix
(an encrypted or damaged PDF, a zip bomb, a file with no text) is an
:class:`ExtractionError` whose message names the file and the reason; the
ingestion job marks that document failed and nothing else. Parsers run in the
worker; caps (``RAG_MAX_PAGES``, ``RAG_MAX_UNZIPPED_BYTES``) bound their work.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings

from rag.sniff import FileRejected, check_zip


class ExtractionError(ValueError):
    """The document cannot be indexed; the message says why, for the user."""


@dataclass
class Section:
    text: str
    page: int | None = None
    heading: str = ""


def _read_text(source: IO[bytes]) -> str:
    raw = source.read()
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("utf-8", errors="replace")
    return text.replace("\x00", "")


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _markdown(text: str) -> list[Section]:
    sections: list[Section] = []
    matches = list(_MD_HEADING.finditer(text))
    if not matches or matches[0].start() > 0:
        sections.append(Section(text[: matches[0].start() if matches else len(text)]))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        sections.append(Section(text[match.start() : end], heading=match.group(2)))
    return sections


def _csv(text: str) -> list[Section]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = rows[0]
    lines = []
    for row in rows[1:]:
        cells = [
            f"{header[i] if i < len(header) else i + 1}: {value}" for i, value in enumerate(row) if value
        ]
        lines.append("; ".join(cells))
    # each row on its own line, so chunks end between rows
    return [Section("\n".join(lines) if lines else ", ".join(header), heading=", ".join(header)[:500])]


def _json_lines(value: object, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_lines(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_lines(item, f"{path}[{index}]")
    else:
        yield f"{path}: {value}" if path else str(value)


def _json(name: str, text: str) -> list[Section]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExtractionError(f"{name}: the JSON is not valid (line {exc.lineno}: {exc.msg}).") from None
    return [Section("\n".join(_json_lines(value)))]


def _html(text: str) -> list[Section]:
    from bs4 import BeautifulSoup  # heavy: parsers load only for their own file type

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    sections: list[Section] = [Section("")]
    body = soup.body or soup
    for element in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "tr", "pre", "blockquote"]):
        if element.find_parent(["p", "li", "tr", "pre", "blockquote"]):
            continue  # nested: its text is in its parent's
        separator = " | " if element.name == "tr" else " "
        line = element.get_text(separator, strip=True)
        if not line:
            continue
        if element.name[0] == "h" and element.name[1:].isdigit():
            sections.append(Section(line + "\n", heading=line))
        else:
            sections[-1].text += line + "\n"
    if not any(s.text.strip() for s in sections):
        sections = [Section(body.get_text("\n", strip=True))]
    return sections


def _pdf(name: str, source: IO[bytes]) -> list[Section]:
    from pypdf import PdfReader  # heavy: parsers load only for their own file type
    from pypdf.errors import FileNotDecryptedError, PdfReadError  # heavy: as above

    try:
        reader = PdfReader(source)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError(f"{name}: the PDF is password protected; upload a copy without a password.")
        pages = reader.pages
        if len(pages) > settings.RAG_MAX_PAGES:
            raise ExtractionError(
                f"{name}: the PDF has {len(pages)} pages; at most {settings.RAG_MAX_PAGES}."
            )
        return [Section(page.extract_text() or "", page=number) for number, page in enumerate(pages, 1)]
    except FileNotDecryptedError:
        raise ExtractionError(
            f"{name}: the PDF is password protected; upload a copy without a password."
        ) from None
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise ExtractionError(
            f"{name}: the PDF is damaged and cannot be read ({type(exc).__name__})."
        ) from None


def _docx(source: IO[bytes]) -> list[Section]:
    import docx  # heavy: parsers load only for their own file type

    document = docx.Document(source)
    sections = [Section("")]
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = docx.text.paragraph.Paragraph(block, document)
            text = paragraph.text.strip()
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            if text and (style.startswith("Heading") or style == "Title"):
                sections.append(Section(text + "\n", heading=text))
            elif text:
                sections[-1].text += text + "\n"
        elif tag == "tbl":
            table = docx.table.Table(block, document)
            for row in table.rows:
                cells = [cell.text.strip() for cell in row.cells]
                sections[-1].text += " | ".join(cells) + "\n"
    return sections


def _xlsx(source: IO[bytes]) -> list[Section]:
    import openpyxl  # heavy: parsers load only for their own file type

    workbook = openpyxl.load_workbook(source, read_only=True, data_only=True)
    max_rows = settings.RAG_MAX_PAGES * 100
    sections = []
    try:
        for sheet in workbook.worksheets:
            lines = []
            for count, row in enumerate(sheet.iter_rows(values_only=True)):
                if count >= max_rows:
                    break
                cells = ["" if value is None else str(value) for value in row]
                if any(cells):
                    lines.append(" | ".join(cells).rstrip(" |"))
            sections.append(Section("\n".join(lines), heading=f"Sheet {sheet.title}"))
    finally:
        workbook.close()
    return sections


def _pptx(source: IO[bytes]) -> list[Section]:
    from pptx import Presentation  # heavy: parsers load only for their own file type

    presentation = Presentation(source)
    sections = []
    for number, slide in enumerate(presentation.slides, 1):
        if number > settings.RAG_MAX_PAGES:
            break
        lines = []
        for shape in slide.shapes:
            if shape.has_text_frame:
                lines.extend(p.text for p in shape.text_frame.paragraphs if p.text.strip())
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    lines.append(" | ".join(cell.text for cell in row.cells))
        title = slide.shapes.title.text if slide.shapes.title is not None else ""
        sections.append(Section("\n".join(lines), page=number, heading=title))
    return sections


def _office(kind: str, name: str, source: IO[bytes]) -> list[Section]:
    try:
        with zipfile.ZipFile(source) as archive:
            check_zip(name, archive)
        source.seek(0)
        return {"docx": _docx, "xlsx": _xlsx, "pptx": _pptx}[kind](source)
    except FileRejected as exc:
        raise ExtractionError(str(exc)) from None
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ExtractionError(
            f"{name}: the {kind} file is damaged and cannot be read ({type(exc).__name__})."
        ) from None


def extract(*, kind: str, name: str, open_file: Callable[[], IO[bytes]]) -> list[Section]:
    with open_file() as source:
        if kind == "pdf":
            sections = _pdf(name, source)
        elif kind in ("docx", "xlsx", "pptx"):
            sections = _office(kind, name, source)
        else:
            text = _read_text(source)
            if kind == "md":
                sections = _markdown(text)
            elif kind == "csv":
                sections = _csv(text)
            elif kind == "json":
                sections = _json(name, text)
            elif kind == "html":
                sections = _html(text)
            else:
                sections = [Section(text)]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        hint = " (a scanned PDF? text recognition is not supported)" if kind == "pdf" else ""
        raise ExtractionError(f"{name}: no text was found in the file{hint}.")
    return sections
