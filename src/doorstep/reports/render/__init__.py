"""Render a `ReportDocument` to bytes: PDF, DOCX, XLSX, PPTX or JSON.

    render(doc, "pdf") -> bytes
    render_many(doc, ("pdf", "docx")) -> {"pdf": ..., "docx": ...}   # charts converted once

Charts are turned into PNG once per call (vl-convert); the XLSX draws native Excel charts from
the charts' data instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from doorstep.reports.document import ReportDocument, to_json
from doorstep.reports.render.images import ChartImages, chart_png, print_spec

Format = Literal["pdf", "docx", "xlsx", "pptx", "json"]


@dataclass(frozen=True, slots=True)
class FileFormat:
    extension: str  # without the dot
    media_type: str


_OOXML = "application/vnd.openxmlformats-officedocument"
FORMATS: dict[Format, FileFormat] = {
    "pdf": FileFormat("pdf", "application/pdf"),
    "docx": FileFormat("docx", f"{_OOXML}.wordprocessingml.document"),
    "xlsx": FileFormat("xlsx", f"{_OOXML}.spreadsheetml.sheet"),
    "pptx": FileFormat("pptx", f"{_OOXML}.presentationml.presentation"),
    "json": FileFormat("json", "application/json"),
}
assert set(FORMATS) == set(get_args(Format))


def render_json(doc: ReportDocument) -> bytes:
    return json.dumps(to_json(doc), indent=2, ensure_ascii=False).encode()


def render(doc: ReportDocument, fmt: Format, *, images: ChartImages | None = None) -> bytes:
    """The document as a file of format `fmt`. Pass `images` to share chart PNGs between
    several renders of the same document."""
    # Each writer is imported when first used: WeasyPrint alone takes a second or two to import
    # (pango, fontconfig), which a process that only lists FORMATS should not pay.
    images = images or ChartImages()
    if fmt == "pdf":
        from doorstep.reports.render.pdf import render_pdf

        return render_pdf(doc, images=images)
    if fmt == "docx":
        from doorstep.reports.render.word import render_docx

        return render_docx(doc, images=images)
    if fmt == "xlsx":
        from doorstep.reports.render.excel import render_xlsx

        return render_xlsx(doc)
    if fmt == "pptx":
        from doorstep.reports.render.slides import render_pptx

        return render_pptx(doc, images=images)
    if fmt == "json":
        return render_json(doc)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {sorted(FORMATS)}")


def render_html(doc: ReportDocument, *, images: ChartImages | None = None) -> str:
    """The HTML that the PDF is printed from (self-contained, autoescaped)."""
    from doorstep.reports.render.pdf import render_html as html

    return html(doc, images=images)


def render_many(
    doc: ReportDocument, formats: Iterable[Format] = tuple(FORMATS)
) -> dict[Format, bytes]:
    """The document in several formats, its charts converted to PNG once for all of them."""
    images = ChartImages()
    return {fmt: render(doc, fmt, images=images) for fmt in formats}


def warm_up() -> None:
    """Pay a process's one-time costs before the first real report: importing the writers,
    starting vl-convert's JavaScript engine, WeasyPrint's font set-up, compiling the template.
    For a worker process at start; about 1-2 s."""
    from datetime import UTC, datetime

    from doorstep.reports.document import Branding, Chart, Section, Table

    data = Table("warm-up", ("x", "y"), (("a", 1),))
    spec = {
        "data": {"values": [{"x": "a", "y": 1}]},
        "mark": "bar",
        "encoding": {
            "x": {"field": "x", "type": "nominal"},
            "y": {"field": "y", "type": "quantitative"},
        },
    }
    doc = ReportDocument(
        title="warm-up",
        subtitle="",
        template="warm-up",
        subject="",
        period_label="",
        generated_at=datetime(2000, 1, 1, tzinfo=UTC),
        branding=Branding("", "#000000"),
        sections=(Section("s", "s", charts=(Chart("c", spec, "bar", data),), tables=(data,)),),
    )
    render_many(doc)


def filename(doc: ReportDocument, fmt: Format) -> str:
    """A download name: "executive-summary-acme-q3-2025.pdf"."""
    words = f"{doc.title} {doc.subject} {doc.period_label}".lower()
    slug = re.sub(r"[^a-z0-9]+", "-", words).strip("-") or "report"
    return f"{slug[:80].rstrip('-')}.{FORMATS[fmt].extension}"


__all__ = [
    "FORMATS",
    "ChartImages",
    "FileFormat",
    "Format",
    "chart_png",
    "filename",
    "print_spec",
    "render",
    "render_html",
    "render_json",
    "render_many",
    "warm_up",
]
