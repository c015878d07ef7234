"""XLSX (XlsxWriter): a Summary sheet, a data sheet per table and per chart, numeric cells
with their number formats, and a native Excel chart per chart, drawn from its data sheet."""

from __future__ import annotations

import io
import re
from datetime import UTC
from typing import Any

import xlsxwriter
from xlsxwriter.utility import quote_sheetname, xl_rowcol_to_cell

from doorstep.reports.document import Chart, ReportDocument, Table, format_value, is_number

EXCEL_CHART_TYPES = {
    "bar": "bar",
    "column_clustered": "column",
    "line": "line",
    "area": "area",
    "pie": "pie",
}
_INVALID_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
SHEET_NAME_MAX = 31
# Rows of a data sheet: its title, a blank line, the header, then the data.
TITLE_ROW, HEADER_ROW, FIRST_DATA_ROW = 0, 2, 3


class SheetNames:
    """Sheet names Excel accepts: no []:*?/\\, at most 31 characters, not quoted, not
    "History", unique ignoring case."""

    def __init__(self) -> None:
        self._taken: set[str] = {"history"}

    def claim(self, wanted: str) -> str:
        base = _INVALID_SHEET_CHARS.sub(" ", wanted)
        base = " ".join(base.split()).strip("'") or "Sheet"
        name, n = base[:SHEET_NAME_MAX], 1
        while name.casefold() in self._taken:
            n += 1
            suffix = f" ({n})"
            name = base[: SHEET_NAME_MAX - len(suffix)].rstrip() + suffix
        self._taken.add(name.casefold())
        return name


class _Formats:
    def __init__(self, workbook: Any, brand: str) -> None:
        self.workbook = workbook
        self.title = workbook.add_format({"bold": True, "font_size": 16, "font_color": brand})
        self.subtitle = workbook.add_format({"italic": True, "font_color": "#4b5563"})
        self.label = workbook.add_format({"bold": True, "font_color": "#4b5563"})
        self.bold = workbook.add_format({"bold": True})
        self.header = workbook.add_format(
            {"bold": True, "font_color": "#ffffff", "bg_color": brand, "border": 1}
        )
        self.header_num = workbook.add_format(
            {
                "bold": True,
                "font_color": "#ffffff",
                "bg_color": brand,
                "border": 1,
                "align": "right",
            }
        )
        self._numbers: dict[str | None, Any] = {}

    def number(self, code: str | None) -> Any:
        if code not in self._numbers:
            self._numbers[code] = self.workbook.add_format({"num_format": code} if code else {})
        return self._numbers[code]


def _width(texts: list[str]) -> float:
    return min(max([len(text) for text in texts] + [6]) + 2, 60)


def _write_table(sheet: Any, table: Table, formats: _Formats) -> None:
    sheet.write_string(TITLE_ROW, 0, table.title, formats.bold)
    numeric = table.numeric_columns()
    for col, column in enumerate(table.columns):
        header = formats.header_num if numeric[col] else formats.header
        sheet.write_string(HEADER_ROW, col, column, header)
    for r, row in enumerate(table.rows, start=FIRST_DATA_ROW):
        for col, value in enumerate(row):
            cell_format = formats.number(table.number_format(col))
            if value is None:
                sheet.write_blank(r, col, None, cell_format)
            elif is_number(value):
                sheet.write_number(r, col, value, cell_format)
            else:
                sheet.write_string(r, col, str(value), cell_format)
    for col, column in enumerate(table.columns):
        texts = [column] + [format_value(row[col], table.number_format(col)) for row in table.rows]
        sheet.set_column(col, col, _width(texts))
    sheet.freeze_panes(FIRST_DATA_ROW, 0)
    if table.rows:
        last_row = FIRST_DATA_ROW + len(table.rows) - 1
        sheet.autofilter(HEADER_ROW, 0, last_row, len(table.columns) - 1)


def _add_chart(workbook: Any, sheet: Any, sheet_name: str, chart: Chart, brand: str) -> None:
    data = chart.data
    excel_chart = workbook.add_chart({"type": EXCEL_CHART_TYPES[chart.kind]})
    first, last = FIRST_DATA_ROW, FIRST_DATA_ROW + max(len(data.rows), 1) - 1
    quoted = quote_sheetname(sheet_name)
    # A pie shows one series: the first.
    series_columns = range(1, 2) if chart.kind == "pie" else range(1, len(data.columns))
    for i, col in enumerate(series_columns):
        series: dict[str, Any] = {
            "name": f"={quoted}!{xl_rowcol_to_cell(HEADER_ROW, col, row_abs=True, col_abs=True)}",
            "categories": [sheet_name, first, 0, last, 0],
            "values": [sheet_name, first, col, last, col],
        }
        if i == 0:
            if chart.kind == "line":
                series["line"] = {"color": brand, "width": 2.25}
                series["marker"] = {
                    "type": "circle",
                    "fill": {"color": brand},
                    "border": {"color": brand},
                }
            elif chart.kind == "pie":
                series["points"] = [{"fill": {"color": brand}}]
            else:
                series["fill"] = {"color": brand}
                series["border"] = {"color": brand}
        excel_chart.add_series(series)
    excel_chart.set_title({"name": chart.title, "name_font": {"size": 12}})
    if chart.kind == "pie" or len(series_columns) == 1:
        excel_chart.set_legend({"position": "right" if chart.kind == "pie" else "none"})
    else:
        excel_chart.set_legend({"position": "bottom"})
    if chart.kind != "pie":
        value_format = data.number_format(1)
        if value_format:
            axis = excel_chart.set_x_axis if chart.kind == "bar" else excel_chart.set_y_axis
            axis(
                {
                    "num_format": value_format,
                    "major_gridlines": {"visible": True, "line": {"color": "#e5e7eb"}},
                }
            )
    excel_chart.set_size({"width": 640, "height": 340})
    sheet.insert_chart(HEADER_ROW, len(data.columns) + 1, excel_chart)


def render_xlsx(doc: ReportDocument) -> bytes:
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True})
    created = doc.generated_at.astimezone(UTC).replace(tzinfo=None)
    workbook.set_properties(
        {
            "title": doc.title,
            "subject": doc.subject,
            "author": doc.branding.name,
            "company": doc.branding.name,
            "category": doc.template,
            "comments": doc.subtitle,
            "created": created,
        }
    )
    brand = doc.branding.primary_color
    formats = _Formats(workbook, brand)
    names = SheetNames()

    summary = workbook.add_worksheet(names.claim("Summary"))
    summary.write_string(0, 0, doc.title, formats.title)
    summary.write_string(1, 0, doc.subtitle, formats.subtitle)
    facts = [
        ("Subject", doc.subject),
        ("Period", doc.period_label),
        ("Generated", doc.generated_at.strftime("%Y-%m-%d %H:%M %Z").strip()),
        ("Prepared by", doc.branding.name),
        ("Template", doc.template),
    ]
    for row, (label, value) in enumerate(facts, start=3):
        summary.write_string(row, 0, label, formats.label)
        summary.write_string(row, 1, value)
    row = 3 + len(facts) + 1
    metric_texts: list[tuple[str, str, str]] = []
    for section in doc.sections:
        if not section.metrics:
            continue
        summary.write_string(row, 0, section.title, formats.bold)
        row += 1
        for col, heading in enumerate(("Metric", "Value", "Note")):
            summary.write_string(row, col, heading, formats.header)
        row += 1
        for metric in section.metrics:
            summary.write_string(row, 0, metric.label)
            summary.write_string(row, 1, metric.value, formats.bold)
            summary.write_string(row, 2, metric.note or "")
            metric_texts.append((metric.label, metric.value, metric.note or ""))
            row += 1
        row += 1
    summary.set_column(0, 0, _width([label for label, _ in facts] + [m[0] for m in metric_texts]))
    summary.set_column(
        1, 1, _width([value for _, value in facts[:2]] + [m[1] for m in metric_texts])
    )
    summary.set_column(2, 2, _width([m[2] for m in metric_texts]))

    for section in doc.sections:
        for table in section.tables:
            sheet = workbook.add_worksheet(names.claim(table.title))
            _write_table(sheet, table, formats)
        for chart in section.charts:
            name = names.claim(chart.title)
            sheet = workbook.add_worksheet(name)
            _write_table(sheet, chart.data, formats)
            _add_chart(workbook, sheet, name, chart, brand)

    workbook.close()
    return out.getvalue()
