"""Fixture files the tests build with the writer libraries (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile


def upload(name: str, content: bytes | str) -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data)


def pdf_bytes(pages: list[str] | list[list[str]]) -> bytes:
    """A minimal PDF written by hand (Helvetica, uncompressed): a page is one line (a str) or a
    list of lines (set in 9 pt; the knowledge benchmarks write 100 pages of 45 lines)."""
    objects: list[bytes] = []
    kids = []
    count = len(pages)
    # 1: catalog, 2: pages, 3: font, then per page: page object and content stream
    for index, page in enumerate(pages):
        page_id, content_id = 4 + 2 * index, 5 + 2 * index
        kids.append(f"{page_id} 0 R")
        lines = [page] if isinstance(page, str) else page
        safe = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
        body = " T* ".join(f"({line})'" if i else f"({line}) Tj" for i, line in enumerate(safe))
        layout = "/F1 12 Tf 72 720 Td" if isinstance(page, str) else "/F1 9 Tf 11 TL 40 760 Td"
        stream = f"BT {layout} {body} ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    head = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate([*head, *objects], 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(offsets) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(offsets) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def encrypted_pdf_bytes() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(["secret page"]))))
    writer.encrypt(user_password="hunter2", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Refund policy", level=1)
    document.add_paragraph("Customers may return goods within 30 days for a full refund.")
    document.add_heading("Shipping", level=1)
    document.add_paragraph("Parcels leave the warehouse every weekday.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Zone", "Days"
    table.cell(1, 0).text, table.cell(1, 1).text = "Europe", "3"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Prices"
    sheet.append(["Product", "Price"])
    sheet.append(["Widget", 9.5])
    sheet.append(["Gadget", 12])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.placeholders[1].text = "Revenue grew by twelve percent."
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Outlook"
    slide.placeholders[1].text = "Hiring continues next year."
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def zip_bomb_docx() -> bytes:
    """A .docx-looking archive whose parts claim to unpack to far more than the limit."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        archive.writestr("word/padding.bin", b"\0" * (3 * 1024 * 1024))
    return out.getvalue()
