"""DOCX (python-docx): headings in the brand colour, metrics as a two-column table, tables
with a shaded header row, charts as pictures, bullets as list paragraphs."""

from __future__ import annotations

import io

from docx import Document
from docx.document import Document as WordDocument
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from docx.table import _Cell

from doorstep.reports.document import ReportDocument, Table
from doorstep.reports.render.images import ChartImages
from doorstep.reports.render.zipfix import reproducible_zip

CHART_WIDTH = Cm(16)
LOGO_HEIGHT = Cm(1.6)
GREY = RGBColor(0x4B, 0x55, 0x63)


def _shade(cell: _Cell, rgb: str) -> None:
    """Fill a table cell (python-docx has no API for cell shading)."""
    properties = cell._tc.get_or_add_tcPr()
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), rgb)
    properties.append(shading)


def _cell_text(
    cell: _Cell,
    text: str,
    *,
    bold: bool = False,
    right: bool = False,
    color: RGBColor | None = None,
    size: Pt | None = None,
) -> None:
    paragraph = cell.paragraphs[0]
    run = paragraph.add_run(text)
    run.bold = bold
    if color is not None:
        run.font.color.rgb = color
    if size is not None:
        run.font.size = size
    if right:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT


def _add_table(document: WordDocument, table: Table, brand: str) -> None:
    caption = document.add_paragraph()
    caption.add_run(table.title).bold = True
    numeric = table.numeric_columns()
    grid = document.add_table(rows=1 + len(table.rows), cols=len(table.columns))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    white = RGBColor(0xFF, 0xFF, 0xFF)
    for i, column in enumerate(table.columns):
        cell = grid.rows[0].cells[i]
        _shade(cell, brand)
        _cell_text(cell, column, bold=True, right=numeric[i], color=white, size=Pt(9))
    for r, row in enumerate(table.text_rows(), start=1):
        cells = grid.rows[r].cells
        for i, text in enumerate(row):
            _cell_text(cells[i], text, right=numeric[i], size=Pt(9))
    # The header repeats when the table runs over a page.
    header = grid.rows[0]._tr.get_or_add_trPr()
    repeat = OxmlElement("w:tblHeader")
    repeat.set(qn("w:val"), "true")
    header.append(repeat)
    document.add_paragraph()


def render_docx(doc: ReportDocument, *, images: ChartImages | None = None) -> bytes:
    images = images or ChartImages()
    brand = RGBColor.from_string(doc.branding.rgb)
    document = Document()
    for name in ("Title", "Heading 1", "Heading 2", "Heading 3"):
        document.styles[name].font.color.rgb = brand
    section = document.sections[0]
    # A4 with 2 cm margins: a 17 cm text column for the 16 cm charts.
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(2))

    properties = document.core_properties
    properties.title = doc.title
    properties.subject = doc.subject
    properties.author = doc.branding.name
    properties.last_modified_by = doc.branding.name
    properties.comments = doc.subtitle
    properties.category = doc.template
    properties.created = properties.modified = doc.generated_at
    properties.revision = 1

    if doc.branding.logo is not None:
        document.add_picture(io.BytesIO(doc.branding.logo), height=LOGO_HEIGHT)
    document.add_heading(doc.title, level=0)
    if doc.subtitle:
        subtitle = document.add_paragraph()
        run = subtitle.add_run(doc.subtitle)
        run.font.size, run.font.color.rgb = Pt(13), GREY
    subject = document.add_paragraph()
    run = subject.add_run(doc.subject)
    run.bold, run.font.size, run.font.color.rgb = True, Pt(16), brand
    facts = document.add_paragraph()
    facts.add_run("Period: ").bold = True
    facts.add_run(doc.period_label)
    facts.add_run("    Generated: ").bold = True
    facts.add_run(doc.generated_at.strftime("%d %b %Y, %H:%M %Z").strip())
    facts.add_run("    Prepared by: ").bold = True
    facts.add_run(doc.branding.name)

    for part in doc.sections:
        document.add_heading(part.title, level=1)
        if part.metrics:
            grid = document.add_table(rows=len(part.metrics), cols=2)
            grid.style = "Table Grid"
            for metric, row in zip(part.metrics, grid.rows, strict=True):
                label = metric.label if metric.note is None else f"{metric.label} ({metric.note})"
                _cell_text(row.cells[0], label, color=GREY)
                _cell_text(row.cells[1], metric.value, bold=True, right=True, size=Pt(12))
            document.add_paragraph()
        for paragraph in part.paragraphs:
            document.add_paragraph(paragraph)
        for bullet in part.bullets:
            document.add_paragraph(bullet, style="List Bullet")
        for chart in part.charts:
            caption = document.add_paragraph()
            caption_run = caption.add_run(chart.title)
            caption_run.bold, caption_run.font.color.rgb = True, brand
            document.add_picture(io.BytesIO(images.png(chart)), width=CHART_WIDTH)
            document.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
        for table in part.tables:
            _add_table(document, table, doc.branding.rgb)

    out = io.BytesIO()
    document.save(out)
    return reproducible_zip(out.getvalue())
