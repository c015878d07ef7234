"""The rendering layer: every format is rendered from a sample document and read back."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import subprocess
import zipfile
from pathlib import Path

import jsonschema
import openpyxl
import pytest
from docx import Document as open_docx
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE
from pypdf import PdfReader

from doorstep.reports.document import (
    Branding,
    Chart,
    Metric,
    ReportDocument,
    Section,
    Table,
    format_value,
    from_json,
    json_schema,
    to_json,
)
from doorstep.reports.render import (
    FORMATS,
    ChartImages,
    Format,
    filename,
    print_spec,
    render,
    render_html,
    render_many,
    warm_up,
)
from doorstep.reports.render.excel import SheetNames
from doorstep.reports.render.slides import fit_text
from tests.reports.samples import BRAND, executive_summary, logo_png

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "reports"
HOSTILE = "<script>alert('x')</script> Smith & Sons"


@pytest.fixture(scope="module")
def doc() -> ReportDocument:
    return executive_summary(logo=logo_png())


@pytest.fixture(scope="module")
def files(doc: ReportDocument) -> dict[Format, bytes]:
    return render_many(doc)


def _pdf_text(pdf: bytes) -> str:
    result = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True, timeout=60
    )
    return result.stdout.decode()


def _no_charts(doc: ReportDocument) -> ReportDocument:
    sections = tuple(dataclasses.replace(s, charts=()) for s in doc.sections)
    return dataclasses.replace(doc, sections=sections)


def _hostile(doc: ReportDocument) -> ReportDocument:
    first = doc.sections[0]
    table = Table(
        title=f"Owners {HOSTILE}",
        columns=("Name", "Share"),
        rows=((HOSTILE, 0.5),),
        number_formats=(None, "0%"),
    )
    first = dataclasses.replace(
        first,
        title=f"Summary {HOSTILE}",
        paragraphs=(f"Paragraph {HOSTILE}",),
        bullets=(f"Bullet {HOSTILE}",),
        metrics=(Metric(f"Label {HOSTILE}", "$1 & 2"),),
        tables=(table,),
    )
    return dataclasses.replace(doc, subject=HOSTILE, sections=(first, *doc.sections[1:]))


# --- the document model ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code", "text"),
    [
        (1234567, "$#,##0", "$1,234,567"),
        (1234.5, "$#,##0", "$1,235"),
        (1234.565, "$#,##0.00", "$1,234.57"),
        (-1234.5, "$#,##0.00", "-$1,234.50"),
        (1234567.25, "#,##0", "1,234,567"),
        (2.5, "#,##0", "3"),  # half away from zero, as Excel rounds
        (1234.56, "#,##0.0", "1,234.6"),
        (0.1234, "0.0%", "12.3%"),
        (0.125, "0%", "13%"),
        (-0.004, "0%", "0%"),
        (42, None, "42"),
        (0.1 + 0.2, None, "0.3"),
        (None, "$#,##0", "—"),
        ("n/a", "$#,##0", "n/a"),
    ],
)
def test_format_value_reads_excel_codes(
    value: float | str | None, code: str | None, text: str
) -> None:
    assert format_value(value, code) == text


def test_document_rejects_what_formats_could_not_write() -> None:
    with pytest.raises(ValueError, match="number format"):
        Table("t", ("a",), ((1,),), number_formats=("0.0 EUR",))
    with pytest.raises(ValueError, match="cells"):
        Table("t", ("a", "b"), ((1,),))
    with pytest.raises(ValueError, match="finite"):
        Table("t", ("a",), ((float("nan"),),))
    with pytest.raises(ValueError, match="#rrggbb"):
        Branding("b", "blue")
    with pytest.raises(ValueError, match="PNG, JPEG or GIF"):
        Branding("b", "#000000", logo=b"<svg/>")
    with pytest.raises(ValueError, match="series values"):
        Chart("c", {}, "bar", Table("t", ("x", "y"), (("a", "b"),)))
    assert Branding("b", "#000000", logo=logo_png()).logo_content_type == "image/png"


def test_print_spec_fixes_container_sizes(doc: ReportDocument) -> None:
    spec = doc.charts[1].spec  # a layered spec (bars and line)
    assert "container" in json.dumps(spec)
    printable = print_spec(spec, width=500)
    assert "container" not in json.dumps(printable)
    assert printable["background"] == "white"
    assert "usermeta" not in printable
    assert spec["usermeta"]  # the original is untouched


# --- PDF -----------------------------------------------------------------------------------


def test_pdf_carries_cover_metrics_and_formatted_tables(
    doc: ReportDocument, files: dict[Format, bytes]
) -> None:
    pdf = files["pdf"]
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 1
    assert reader.metadata is not None
    assert reader.metadata.title == f"{doc.title} — {doc.subject}"
    text = _pdf_text(pdf)
    for expected in (
        "Executive Summary",
        "Acme Cloud Telephony, Inc.",
        "Q3 2025",
        "03 Oct 2025, 14:30 UTC",
        "$12.4M",
        "+18.2%",
        "$1,234,567",  # revenue, "$#,##0"
        "16.3%",  # margin 0.163, "0.0%"
        "2,270",  # customers, "#,##0"
        "Valuation by method",
        "Re-run the valuation after the Q4 audit closes.",
        f"Page 1 of {len(reader.pages)}",
    ):
        assert expected in text, expected
    # Three charts and the logo on every page's header.
    images = [image for page in reader.pages for image in page.images]
    assert len(images) >= 3 + len(reader.pages)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "executive-summary.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "3", "-", str(ARTIFACTS / "page")],
        input=pdf,
        check=True,
        timeout=120,
    )
    assert (ARTIFACTS / "page-1.png").stat().st_size > 10_000


def test_html_and_pdf_escape_text(doc: ReportDocument) -> None:
    hostile = _hostile(_no_charts(doc))
    html = render_html(hostile)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Smith &amp; Sons" in html
    assert "$1 &amp; 2" in html
    text = _pdf_text(render(hostile, "pdf"))
    assert HOSTILE in text.replace("\n", " ")
    assert "50%" in text


def test_pdf_logo_is_drawn(doc: ReportDocument) -> None:
    plain = _no_charts(doc)
    with_logo = PdfReader(io.BytesIO(render(plain, "pdf")))
    without = dataclasses.replace(plain, branding=Branding("Northwind Advisory", BRAND))
    without_logo = PdfReader(io.BytesIO(render(without, "pdf")))
    assert len(with_logo.pages[0].images) == 1
    assert len(without_logo.pages[0].images) == 0


# --- DOCX ----------------------------------------------------------------------------------


def test_docx_headings_tables_and_pictures(doc: ReportDocument, files: dict[Format, bytes]) -> None:
    word = open_docx(io.BytesIO(files["docx"]))
    headings = [p.text for p in word.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    assert headings == ["Executive Summary", "Summary", "Financials", "Recommendations"]
    assert str(word.styles["Heading 1"].font.color.rgb) == BRAND[1:].upper()
    text = "\n".join(p.text for p in word.paragraphs)
    assert "Acme Cloud Telephony, Inc." in text
    assert "Q3 2025" in text
    bullets = [p.text for p in word.paragraphs if p.style.name == "List Bullet"]
    assert bullets == list(doc.sections[2].bullets)
    # Two metric tables (label, value) and the financial history.
    assert len(word.tables) == 3
    metrics = word.tables[0]
    assert [c.text for c in metrics.rows[0].cells] == ["Valuation (blended, 3 methods)", "$12.4M"]
    history = word.tables[1]
    assert [c.text for c in history.rows[0].cells] == list(doc.sections[1].tables[0].columns)
    assert [c.text for c in history.rows[1].cells] == [
        "2021",
        "$1,234,567",
        "$201,000",
        "16.3%",
        "1,250",
    ]
    # Numbers are right-aligned; the logo and one picture per chart.
    assert history.rows[1].cells[1].paragraphs[0].alignment == 2  # RIGHT
    assert len(word.inline_shapes) == 1 + len(doc.charts)
    assert word.core_properties.title == "Executive Summary"


def test_docx_without_logo_has_only_charts(doc: ReportDocument) -> None:
    plain = dataclasses.replace(doc, branding=Branding("Northwind Advisory", BRAND))
    word = open_docx(io.BytesIO(render(plain, "docx")))
    assert len(word.inline_shapes) == len(doc.charts)


# --- XLSX ----------------------------------------------------------------------------------


def test_xlsx_cells_are_numbers_with_formats(
    doc: ReportDocument, files: dict[Format, bytes]
) -> None:
    book = openpyxl.load_workbook(io.BytesIO(files["xlsx"]))
    assert book.sheetnames == [
        "Summary",
        "Valuation by method",
        "Financial history",
        "Monthly revenue and orders",
        "Revenue mix",
    ]
    summary = book["Summary"]
    column_a = [row[0] for row in summary.iter_rows(values_only=True)]
    column_b = [row[1] for row in summary.iter_rows(values_only=True)]
    assert summary["A1"].value == "Executive Summary"
    assert "Acme Cloud Telephony, Inc." in column_b
    assert "Valuation" in column_a
    assert "$12.4M" in column_b

    history = book["Financial history"]
    assert [c.value for c in history[3]] == list(doc.sections[1].tables[0].columns)
    assert history["A3"].fill.fgColor.rgb == "FF" + BRAND[1:].upper()
    revenue, ebitda, margin, customers = history["B4"], history["C4"], history["D4"], history["E4"]
    assert (revenue.value, revenue.number_format) == (1234567, "$#,##0")
    assert (ebitda.value, ebitda.number_format) == (201000.4, "$#,##0")
    assert (margin.value, margin.number_format) == (0.163, "0.0%")
    assert (customers.value, customers.number_format) == (1250, "#,##0")
    assert history.column_dimensions["B"].width >= len("$1,234,567")

    trend = book["Monthly revenue and orders"]
    assert trend["B4"].value == 80000.0
    assert trend["B4"].number_format == "$#,##0.00"


def test_xlsx_has_a_native_chart_per_chart(files: dict[Format, bytes]) -> None:
    with zipfile.ZipFile(io.BytesIO(files["xlsx"])) as archive:
        names = sorted(n for n in archive.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n))
        assert names == ["xl/charts/chart1.xml", "xl/charts/chart2.xml", "xl/charts/chart3.xml"]
        column, line, pie = (archive.read(name).decode() for name in names)
    assert '<c:barDir val="col"/>' in column
    assert "<c:f>'Valuation by method'!$A$4:$A$7</c:f>" in column
    assert "<c:f>'Valuation by method'!$B$4:$B$7</c:f>" in column
    assert BRAND[1:].upper() in column
    assert "<c:lineChart>" in line
    assert "<c:f>'Monthly revenue and orders'!$B$4:$B$15</c:f>" in line
    assert "<c:f>'Monthly revenue and orders'!$C$4:$C$15</c:f>" in line
    assert "<c:pieChart>" in pie or "<c:doughnutChart>" in pie
    assert "<c:f>'Revenue mix'!$B$4:$B$7</c:f>" in pie


def test_sheet_names_are_valid_and_unique() -> None:
    names = SheetNames()
    claimed = [
        names.claim("Summary"),
        names.claim("summary"),
        names.claim("Revenue: Q3 [draft] / v2?"),
        names.claim("A very long table title that Excel would refuse"),
        names.claim("A very long table title that Excel would refuse too"),
        names.claim("History"),
        names.claim("'quoted'"),
    ]
    assert claimed == [
        "Summary",
        "summary (2)",
        "Revenue Q3 draft v2",
        "A very long table title that Ex",
        "A very long table title tha (2)",
        "History (2)",
        "quoted",
    ]
    assert all(len(name) <= 31 for name in claimed)


# --- PPTX ----------------------------------------------------------------------------------


def _texts(slide: object) -> str:
    return "\n".join(
        shape.text_frame.text
        for shape in slide.shapes
        if shape.has_text_frame  # type: ignore[attr-defined]
    )


def _pictures(slide: object) -> int:
    return sum(
        shape.shape_type == MSO_SHAPE_TYPE.PICTURE
        for shape in slide.shapes  # type: ignore[attr-defined]
    )


def test_pptx_slides(doc: ReportDocument, files: dict[Format, bytes]) -> None:
    deck = Presentation(io.BytesIO(files["pptx"]))
    assert deck.slide_width * 9 == deck.slide_height * 16
    extra_charts = sum(max(len(s.charts) - 1, 0) for s in doc.sections)
    slides = list(deck.slides)
    assert len(slides) == 1 + len(doc.sections) + extra_charts == 5
    title, summary, financials, mix, recommendations = slides

    assert "Executive Summary" in _texts(title)
    assert "Acme Cloud Telephony, Inc." in _texts(title)
    assert "Q3 2025" in _texts(title)
    assert _pictures(title) == 1  # the logo

    for expected in ("Summary", "$12.4M", "VALUATION", "+18.2%", "4.2x", "Valuation by method"):
        assert expected in _texts(summary)
    assert _pictures(summary) == 1
    assert "Financials" in _texts(financials)
    assert _pictures(financials) == 1
    assert "Revenue mix" in _texts(mix)
    assert "FINANCIALS" in _texts(mix)
    assert _pictures(mix) == 1
    assert "Raise prices on the legacy plan" in _texts(recommendations)
    assert "14 months" in _texts(recommendations)
    assert _pictures(recommendations) == 0
    assert f"5 / {len(slides)}" in _texts(recommendations)

    for slide in slides:
        for shape in slide.shapes:
            assert shape.left >= 0, shape.name
            assert shape.top >= 0, shape.name
            assert shape.left + shape.width <= deck.slide_width, shape.name
            assert shape.top + shape.height <= deck.slide_height, shape.name


def test_pptx_section_without_chart_shows_its_table(doc: ReportDocument) -> None:
    deck = Presentation(io.BytesIO(render(_no_charts(doc), "pptx")))
    financials = list(deck.slides)[2]
    tables = [shape.table for shape in financials.shapes if shape.has_table]
    assert len(tables) == 1
    assert tables[0].cell(1, 1).text == "$1,234,567"


def test_fit_text_trims_to_the_box() -> None:
    long = ["word " * 200, "second"]
    kept = fit_text(long, width=914400 * 5, height=914400 * 2)
    assert len(kept) == 1
    assert kept[0].endswith("…")
    assert len(kept[0]) < len(long[0])
    short = ["one", "two"]
    assert fit_text(short, width=914400 * 5, height=914400 * 2) == short


# --- JSON and the whole -----------------------------------------------------------------------


def test_json_validates_and_round_trips(doc: ReportDocument, files: dict[Format, bytes]) -> None:
    data = json.loads(files["json"])
    jsonschema.validate(data, json_schema())
    assert data["generated_at"] == "2025-10-03T14:30:00+00:00"
    assert data["branding"] == {
        "name": "Northwind Advisory",
        "primary_color": BRAND,
        "logo_content_type": "image/png",
        "has_logo": True,
    }
    rows = data["sections"][1]["tables"][0]["rows"]
    assert rows[0] == ["2021", 1234567, 201000.4, 0.163, 1250]
    assert from_json(data, logo=doc.branding.logo) == doc
    assert to_json(from_json(data)) == {
        **data,
        "branding": {**data["branding"], "logo_content_type": None, "has_logo": False},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "sections": [{"title": "no key"}]}, json_schema())


def test_rendering_is_reproducible_and_converts_each_chart_once(
    doc: ReportDocument, files: dict[Format, bytes]
) -> None:
    images = ChartImages()
    again = {fmt: render(doc, fmt, images=images) for fmt in FORMATS}
    assert images.conversions == len(doc.charts)
    assert again == files


def test_formats_and_file_names(doc: ReportDocument) -> None:
    assert set(FORMATS) == {"pdf", "docx", "xlsx", "pptx", "json"}
    assert FORMATS["xlsx"].media_type.endswith("spreadsheetml.sheet")
    assert filename(doc, "pdf") == "executive-summary-acme-cloud-telephony-inc-q3-2025.pdf"
    with pytest.raises(ValueError, match="unknown report format"):
        render(doc, "odt")  # type: ignore[arg-type]


def test_empty_document_renders_in_every_format() -> None:
    empty = ReportDocument(
        title="Empty",
        subtitle="",
        template="executive_summary",
        subject="Nobody",
        period_label="—",
        generated_at=executive_summary().generated_at,
        branding=Branding("B", "#000000"),
        sections=(Section(key="s", title="Nothing", tables=(Table("t", ("a",), ()),)),),
    )
    for fmt, data in render_many(empty).items():
        assert data, fmt


def test_warm_up_runs() -> None:
    warm_up()
