"""PPTX (python-pptx), 16:9: a title slide, a slide per section (title, up to four metrics,
text trimmed to its box, the first chart as a picture), and a slide per further chart.

Charts are pictures of the same Vega-Lite specs as in the PDF, so the deck and the PDF look
alike; the native, editable charts are in the XLSX.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.enum.shapes import MSO_SHAPE
from pptx.enum.text import MSO_ANCHOR, PP_ALIGN
from pptx.util import Emu, Inches, Pt

from doorstep.reports.document import Chart, ReportDocument, Section, Table
from doorstep.reports.render.images import ChartImages, png_size
from doorstep.reports.render.zipfix import reproducible_zip

SLIDE_W, SLIDE_H = Emu(12_192_000), Emu(6_858_000)  # PowerPoint's 16:9, 13.33 x 7.5 in
MARGIN = Inches(0.5)
MAX_METRICS = 4
TEXT_PT = 14
TABLE_ROWS = 10
GREY = RGBColor(0x4B, 0x55, 0x63)
DARK = RGBColor(0x11, 0x18, 0x27)
WHITE = RGBColor(0xFF, 0xFF, 0xFF)


def fit_text(items: list[str], *, width: int, height: int, pt: int = TEXT_PT) -> list[str]:
    """The items that fit a box of `width` x `height` EMU at `pt` points, the last one cut
    short with an ellipsis. An estimate (average glyph 0.5 em, line 1.25 em), not a layout."""
    chars_per_line = max(int(Emu(width).pt / (pt * 0.5)), 10)
    lines_left = int(Emu(height).pt / (pt * 1.25))
    kept: list[str] = []
    for item in items:
        lines = -(-len(item) // chars_per_line) + 0.4  # paragraph spacing
        if lines <= lines_left:
            kept.append(item)
            lines_left -= int(lines + 0.6)
            continue
        room = int(lines_left - 0.4) * chars_per_line - 1
        if room > 20:
            cut = item[:room].rsplit(" ", 1)[0]
            kept.append(cut.rstrip(",;:. ") + "…")
        break
    return kept


def _fill(shape: Any, color: RGBColor) -> None:
    shape.fill.solid()
    shape.fill.fore_color.rgb = color
    shape.line.fill.background()


def _text(
    slide: Any,
    left: int,
    top: int,
    width: int,
    height: int,
    text: str,
    *,
    pt: int,
    bold: bool = False,
    color: RGBColor = DARK,
    align: Any = PP_ALIGN.LEFT,
) -> Any:
    box = slide.shapes.add_textbox(left, top, width, height)
    frame = box.text_frame
    frame.word_wrap = True
    frame.margin_left = frame.margin_right = 0
    paragraph = frame.paragraphs[0]
    paragraph.alignment = align
    run = paragraph.add_run()
    run.text = text
    run.font.size, run.font.bold, run.font.color.rgb = Pt(pt), bold, color
    return box


def _picture(
    slide: Any, png: bytes, left: int, top: int, width: int, height: int, *, middle: bool = True
) -> Any:
    """The image as large as fits the box, keeping its proportions, centred across it and
    centred down it (`middle`) or at its top (under a caption)."""
    px_w, px_h = png_size(png)
    scale = min(width / px_w, height / px_h)
    w, h = int(px_w * scale), int(px_h * scale)
    down = (height - h) // 2 if middle else 0
    return slide.shapes.add_picture(io.BytesIO(png), left + (width - w) // 2, top + down, w, h)


class _Deck:
    def __init__(self, doc: ReportDocument, images: ChartImages) -> None:
        self.doc, self.images = doc, images
        self.brand = RGBColor.from_string(doc.branding.rgb)
        self.tint = RGBColor.from_string(doc.branding.tint(0.9)[1:].upper())
        self.prs = Presentation()
        self.prs.slide_width, self.prs.slide_height = SLIDE_W, SLIDE_H
        self.blank = self.prs.slide_layouts[6]
        self.total = 1 + sum(1 + max(len(s.charts) - 1, 0) for s in doc.sections)

    def _slide(self, title: str, kicker: str | None = None) -> Any:
        slide = self.prs.slides.add_slide(self.blank)
        bar = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, 0, 0, SLIDE_W, Inches(0.14))
        _fill(bar, self.brand)
        top: int = Inches(0.35)
        if kicker:
            _text(
                slide,
                MARGIN,
                top,
                SLIDE_W - 2 * MARGIN,
                Inches(0.35),
                kicker.upper(),
                pt=11,
                bold=True,
                color=GREY,
            )
            top += Inches(0.3)
        _text(
            slide,
            MARGIN,
            top,
            SLIDE_W - 2 * MARGIN,
            Inches(0.7),
            title,
            pt=28,
            bold=True,
            color=self.brand,
        )
        number = len(self.prs.slides)
        footer_top = SLIDE_H - Inches(0.42)
        _text(
            slide,
            MARGIN,
            footer_top,
            Inches(9),
            Inches(0.3),
            f"{self.doc.subject} · {self.doc.period_label}",
            pt=10,
            color=GREY,
        )
        _text(
            slide,
            SLIDE_W - MARGIN - Inches(2),
            footer_top,
            Inches(2),
            Inches(0.3),
            f"{number} / {self.total}",
            pt=10,
            color=GREY,
            align=PP_ALIGN.RIGHT,
        )
        return slide

    def title_slide(self) -> None:
        doc = self.doc
        slide = self.prs.slides.add_slide(self.blank)
        _fill(slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, 0, 0, Inches(0.35), SLIDE_H), self.brand)
        left, width = Inches(1.0), SLIDE_W - Inches(2.0)
        logo = doc.branding.logo
        if logo is not None:
            with Image.open(io.BytesIO(logo)) as image:
                px_w, px_h = image.size
            box_w, box_h = Inches(3), Inches(1.1)
            scale = min(box_w / px_w, box_h / px_h)
            slide.shapes.add_picture(
                io.BytesIO(logo), left, Inches(0.8), int(px_w * scale), int(px_h * scale)
            )
        _text(slide, left, Inches(2.4), width, Inches(1.2), doc.title, pt=40, bold=True)
        if doc.subtitle:
            _text(slide, left, Inches(3.55), width, Inches(0.6), doc.subtitle, pt=20, color=GREY)
        _text(
            slide,
            left,
            Inches(4.4),
            width,
            Inches(0.7),
            doc.subject,
            pt=28,
            bold=True,
            color=self.brand,
        )
        generated = doc.generated_at.strftime("%d %b %Y, %H:%M %Z").strip()
        _text(
            slide,
            left,
            Inches(5.2),
            width,
            Inches(0.5),
            f"{doc.period_label}  ·  Generated {generated}  ·  {doc.branding.name}",
            pt=14,
            color=GREY,
        )

    def _metrics(self, slide: Any, section: Section, top: int) -> None:
        metrics = section.metrics[:MAX_METRICS]
        gap = Inches(0.2)
        width = (SLIDE_W - 2 * MARGIN - gap * (MAX_METRICS - 1)) // MAX_METRICS
        for i, metric in enumerate(metrics):
            left = MARGIN + i * (width + gap)
            card = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, left, top, width, Inches(1.1))
            _fill(card, self.tint)
            accent = slide.shapes.add_shape(
                MSO_SHAPE.RECTANGLE, left, top, Inches(0.08), Inches(1.1)
            )
            _fill(accent, self.brand)
            inner = left + Inches(0.25)
            _text(
                slide,
                inner,
                top + Inches(0.08),
                width - Inches(0.35),
                Inches(0.3),
                metric.label.upper(),
                pt=10,
                bold=True,
                color=GREY,
            )
            _text(
                slide,
                inner,
                top + Inches(0.36),
                width - Inches(0.35),
                Inches(0.5),
                metric.value,
                pt=24,
                bold=True,
            )
            if metric.note:
                _text(
                    slide,
                    inner,
                    top + Inches(0.8),
                    width - Inches(0.35),
                    Inches(0.25),
                    metric.note,
                    pt=9,
                    color=GREY,
                )

    def _bullets(
        self, slide: Any, items: list[str], left: int, top: int, width: int, height: int
    ) -> None:
        box = slide.shapes.add_textbox(left, top, width, height)
        frame = box.text_frame
        frame.word_wrap = True
        frame.margin_left = frame.margin_right = 0
        frame.vertical_anchor = MSO_ANCHOR.TOP
        for i, item in enumerate(items):
            paragraph = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
            paragraph.space_after = Pt(6)
            run = paragraph.add_run()
            run.text = item
            run.font.size, run.font.color.rgb = Pt(TEXT_PT), DARK

    def _table(
        self, slide: Any, table: Table, left: int, top: int, width: int, height: int
    ) -> None:
        rows = table.text_rows()[:TABLE_ROWS]
        numeric = table.numeric_columns()
        row_h = min(Inches(0.4), height // (len(rows) + 1))
        shape = slide.shapes.add_table(
            len(rows) + 1, len(table.columns), left, top, width, row_h * (len(rows) + 1)
        )
        grid = shape.table
        for r, values in enumerate([table.columns, *rows]):
            for c, value in enumerate(values):
                cell = grid.cell(r, c)
                cell.text = value
                paragraph = cell.text_frame.paragraphs[0]
                paragraph.alignment = PP_ALIGN.RIGHT if numeric[c] else PP_ALIGN.LEFT
                font = paragraph.runs[0].font if paragraph.runs else paragraph.font
                font.size = Pt(11)
                if r == 0:
                    cell.fill.solid()
                    cell.fill.fore_color.rgb = self.brand
                    font.bold, font.color.rgb = True, WHITE

    def section_slides(self, section: Section) -> None:
        slide = self._slide(section.title)
        top: int = Inches(1.3)
        if section.metrics:
            self._metrics(slide, section, top)
            top += Inches(1.35)
        bottom = SLIDE_H - Inches(0.55)
        height = bottom - top
        full = SLIDE_W - 2 * MARGIN
        visual: Chart | Table | None = (
            section.charts[0] if section.charts else (section.tables[0] if section.tables else None)
        )
        texts = [*section.paragraphs, *(f"• {bullet}" for bullet in section.bullets)]
        text_w = Inches(5.0) if visual is not None else full
        if texts:
            self._bullets(
                slide, fit_text(texts, width=text_w, height=height), MARGIN, top, text_w, height
            )
        visual_left = MARGIN + text_w + Inches(0.3) if texts else MARGIN
        visual_w = SLIDE_W - MARGIN - visual_left
        if isinstance(visual, Chart):
            _text(
                slide,
                visual_left,
                top,
                visual_w,
                Inches(0.35),
                visual.title,
                pt=14,
                bold=True,
                color=self.brand,
            )
            _picture(
                slide,
                self.images.png(visual),
                visual_left,
                top + Inches(0.4),
                visual_w,
                height - Inches(0.4),
                middle=False,
            )
        elif isinstance(visual, Table):
            self._table(slide, visual, visual_left, top, visual_w, height)
        for chart in section.charts[1:]:
            extra = self._slide(chart.title, kicker=section.title)
            _picture(
                extra, self.images.png(chart), MARGIN, Inches(1.55), full, SLIDE_H - Inches(2.15)
            )


def render_pptx(doc: ReportDocument, *, images: ChartImages | None = None) -> bytes:
    deck = _Deck(doc, images or ChartImages())
    deck.title_slide()
    for section in doc.sections:
        deck.section_slides(section)
    properties = deck.prs.core_properties
    properties.title, properties.subject = doc.title, doc.subject
    properties.author = properties.last_modified_by = doc.branding.name
    properties.category = doc.template
    properties.created = properties.modified = doc.generated_at
    properties.revision = 1
    out = io.BytesIO()
    deck.prs.save(out)
    return reproducible_zip(out.getvalue())
