"""Every template in every format, built from real data (a company with metrics, valuations and
benchmarks; a broker's team with KPIs) and read back: the text and numbers of the PDF, DOCX and
PPTX, the XLSX's cells and native charts, and the JSON against its schema. The Executive
Summary's PDF pages are turned into PNG under artifacts/reports/ to be looked at."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import jsonschema
import openpyxl
import pytest
from docx import Document as open_docx
from pptx import Presentation
from pypdf import PdfReader
from sqlalchemy.orm import Session

from doorstep.platform.auth import Principal
from doorstep.reports import builder, render, rules
from doorstep.reports.document import ReportDocument, json_schema
from doorstep.reports.models import Report
from tests.conftest import Brokerage
from tests.reports.samples import sample_company

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "reports"


@pytest.fixture
def documents(db: Session, brokerage: Brokerage) -> dict[str, ReportDocument]:
    """One document per template, each with all its sections."""
    company = sample_company(db, brokerage.tenant.id)
    out = {}
    for tpl in rules.TEMPLATES.values():
        asker = brokerage.broker if tpl.subject != "company" else brokerage.analyst
        report = Report(
            tenant_id=brokerage.tenant.id,
            requested_by=asker.id,
            template=tpl.key,
            format="pdf",
            sections=list(tpl.sections),
            company_id=company.id if tpl.subject == "company" else None,
            agent_id=brokerage.agent.id if tpl.subject == "agent" else None,
        )
        out[tpl.key] = builder.build_document(db, Principal.of(asker), report)
    return out


def _text_of(fmt: str, data: bytes) -> str:
    if fmt == "pdf":
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    if fmt == "docx":
        document = open_docx(io.BytesIO(data))
        cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
        return "\n".join([*(p.text for p in document.paragraphs), *cells])
    if fmt == "pptx":
        texts = []
        for slide in Presentation(io.BytesIO(data)).slides:
            for shape in slide.shapes:
                if shape.has_text_frame:
                    texts.append(shape.text_frame.text)
                if shape.has_table:
                    texts += [c.text for row in shape.table.rows for c in row.cells]
        return "\n".join(texts)
    book = openpyxl.load_workbook(io.BytesIO(data))
    return "\n".join(
        str(cell.value) for sheet in book for row in sheet.iter_rows() for cell in row if cell.value
    )


@pytest.mark.parametrize("template", list(rules.TEMPLATES))
def test_every_template_in_every_format_reads_back(
    documents: dict[str, ReportDocument], template: str
) -> None:
    doc = documents[template]
    files = render.render_many(doc)
    assert set(files) == set(rules.FORMATS)
    section_titles = [s.title for s in doc.sections]
    charts = doc.charts
    for fmt in ("pdf", "docx", "pptx", "xlsx"):
        text = _text_of(fmt, files[fmt])  # type: ignore[index]
        assert doc.subject in text, (fmt, doc.subject)
        if fmt != "xlsx":
            for title in section_titles:
                assert title in text, (fmt, title)
    # XLSX: one native chart per chart, and the numbers as numbers.
    names = zipfile.ZipFile(io.BytesIO(files["xlsx"])).namelist()
    assert sum(n.startswith("xl/charts/chart") for n in names) == len(charts)
    # PDF, DOCX, PPTX: the charts as pictures.
    for fmt in ("docx", "pptx"):
        media = [n for n in zipfile.ZipFile(io.BytesIO(files[fmt])).namelist() if "/media/" in n]
        assert len(media) >= len(charts), (fmt, media)
    parsed = json.loads(files["json"])
    jsonschema.validate(parsed, json_schema())
    assert [s["key"] for s in parsed["sections"]] == list(rules.template(template).sections)


def test_company_figures_come_through_as_numbers(documents: dict[str, ReportDocument]) -> None:
    doc = documents["due_diligence"]
    book = openpyxl.load_workbook(io.BytesIO(render.render(doc, "xlsx")))
    revenues = [
        cell.value
        for sheet in book
        for row in sheet.iter_rows()
        for cell in row
        if isinstance(cell.value, int | float) and cell.number_format.startswith("$")
    ]
    assert 63_000 in revenues  # the sample's last month
    pdf = _text_of("pdf", render.render(doc, "pdf"))
    assert "$63,000" in pdf
    assert "fell 20%" in pdf  # the revenue multiple's drop, among the risks


def test_executive_summary_pages_as_png(documents: dict[str, ReportDocument]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / "executive-summary.pdf"
    pdf.write_bytes(render.render(documents["executive_summary"], "pdf"))
    for old in ARTIFACTS.glob("executive-summary-*.png"):
        old.unlink()
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", str(pdf), str(ARTIFACTS / "executive-summary")],
        check=True,
    )
    pages = sorted(ARTIFACTS.glob("executive-summary-*.png"))
    assert len(pages) >= 2
    assert all(p.stat().st_size > 10_000 for p in pages)  # drawn, not blank
