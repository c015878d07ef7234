"""The report document: what a report says, independent of the file format it is rendered to.

Values in tables stay raw (numbers are numbers, so spreadsheet cells are numeric); each column
may carry an Excel number format code, and `format_value` turns a value into the same text for
the text formats (PDF, DOCX, PPTX). `to_json` / `from_json` and `ReportModel` are the JSON form
and its schema.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Cell = str | int | float | None
ChartKind = Literal["bar", "line", "column_clustered", "area", "pie"]
CHART_KINDS: tuple[str, ...] = get_args(ChartKind)
SCHEMA_VERSION: Literal[1] = 1
EMPTY_CELL = "—"

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# "$#,##0", "$#,##0.00", "#,##0", "#,##0.0", "0.0%", "0%", "0.000", ...: an optional currency
# sign, optional thousands grouping, a fixed number of decimals, an optional percent sign.
_NUMBER_FORMAT = re.compile(
    r"(?P<prefix>[$€£]?)(?P<group>#,##)?0(?:\.(?P<decimals>0+))?(?P<pct>%?)"
)
_LOGO_TYPES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_number_format(code: str | None) -> None:
    if code is not None and not _NUMBER_FORMAT.fullmatch(code):
        raise ValueError(f"unsupported number format {code!r}")


def format_value(value: Cell, code: str | None = None) -> str:
    """A cell as text, as Excel would show it with the format `code` (None: General).

    Rounds half away from zero like Excel (2.5 -> "3"), not half to even like `format`.
    """
    if value is None:
        return EMPTY_CELL
    if not is_number(value):
        return str(value)
    assert isinstance(value, int | float)
    if code is None:
        return str(value) if isinstance(value, int) else format(value, ".10g")
    match = _NUMBER_FORMAT.fullmatch(code)
    if match is None:
        raise ValueError(f"unsupported number format {code!r}")
    number = Decimal(str(value))
    if match["pct"]:
        number *= 100
    decimals = len(match["decimals"] or "")
    rounded = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    digits = format(abs(rounded), f"{',' if match['group'] else ''}.{decimals}f")
    sign = "-" if rounded < 0 else ""
    return f"{sign}{match['prefix']}{digits}{match['pct']}"


def logo_content_type(logo: bytes) -> str | None:
    """The image type of a logo from its first bytes (PNG, JPEG, GIF), None if unknown."""
    for magic, content_type in _LOGO_TYPES.items():
        if logo.startswith(magic):
            return content_type
    return None


@dataclass(frozen=True, slots=True)
class Branding:
    name: str
    primary_color: str  # "#rrggbb"
    logo: bytes | None = None
    logo_content_type: str | None = None

    def __post_init__(self) -> None:
        if not _COLOR.fullmatch(self.primary_color):
            raise ValueError(f"primary_color must be #rrggbb, not {self.primary_color!r}")
        if self.logo is not None:
            sniffed = logo_content_type(self.logo)
            if sniffed is None:
                raise ValueError("the logo must be a PNG, JPEG or GIF image")
            if self.logo_content_type is None:
                object.__setattr__(self, "logo_content_type", sniffed)

    @property
    def rgb(self) -> str:
        """The colour as "RRGGBB" (upper case, no '#'), as the Office formats write it."""
        return self.primary_color[1:].upper()

    def tint(self, amount: float) -> str:
        """The colour mixed with white (`amount` 0.9 = 90% white), as #rrggbb."""
        channels = (int(self.primary_color[i : i + 2], 16) for i in (1, 3, 5))
        mixed = (round(c + (255 - c) * amount) for c in channels)
        return "#" + "".join(f"{c:02x}" for c in mixed)


@dataclass(frozen=True, slots=True)
class Metric:
    """A headline figure already formatted for display ("$1.2M", "+12.4%")."""

    label: str
    value: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    # Excel format codes per column ("$#,##0", "0.0%"); missing or None = General.
    number_formats: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError(f"table {self.title!r} has no columns")
        if len(self.number_formats) > len(self.columns):
            raise ValueError(f"table {self.title!r} has more number formats than columns")
        for code in self.number_formats:
            check_number_format(code)
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.title!r}: row {row!r} has {len(row)} cells "
                    f"for {len(self.columns)} columns"
                )
            for value in row:
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"table {self.title!r}: {value} is not a finite number")
                if value is not None and not isinstance(value, str | int | float):
                    raise TypeError(f"table {self.title!r}: {type(value).__name__} cell")

    def number_format(self, column: int) -> str | None:
        return self.number_formats[column] if column < len(self.number_formats) else None

    def text(self, row: int, column: int) -> str:
        return format_value(self.rows[row][column], self.number_format(column))

    def text_rows(self) -> tuple[tuple[str, ...], ...]:
        return tuple(
            tuple(format_value(value, self.number_format(i)) for i, value in enumerate(row))
            for row in self.rows
        )

    def numeric_columns(self) -> tuple[bool, ...]:
        """Per column: every non-empty cell is a number (such columns are right-aligned)."""
        return tuple(
            any(row[i] is not None for row in self.rows)
            and all(row[i] is None or is_number(row[i]) for row in self.rows)
            for i in range(len(self.columns))
        )


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart: `spec` (Vega-Lite with inline data, from `web/charts.py`) draws the image in
    PDF, DOCX and PPTX; `kind` and `data` (first column the categories, the others numeric
    series) make the native Excel chart and its data sheet."""

    title: str
    spec: dict[str, Any]
    kind: ChartKind
    data: Table

    def __post_init__(self) -> None:
        if self.kind not in CHART_KINDS:
            raise ValueError(f"chart kind must be one of {CHART_KINDS}, not {self.kind!r}")
        if len(self.data.columns) < 2:
            raise ValueError(f"chart {self.title!r} needs categories and at least one series")
        for row in self.data.rows:
            if not all(value is None or is_number(value) for value in row[1:]):
                raise ValueError(f"chart {self.title!r}: series values must be numbers")


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    paragraphs: tuple[str, ...] = ()
    metrics: tuple[Metric, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportDocument:
    title: str
    subtitle: str
    template: str
    subject: str  # the company's name
    period_label: str
    generated_at: datetime  # aware
    branding: Branding
    sections: tuple[Section, ...]

    def __post_init__(self) -> None:
        if self.generated_at.utcoffset() is None:
            raise ValueError("generated_at must be timezone-aware")

    @property
    def charts(self) -> tuple[Chart, ...]:
        return tuple(chart for section in self.sections for chart in section.charts)


# --- JSON ------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BrandingModel(_Strict):
    name: str
    primary_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    logo_content_type: str | None = None
    has_logo: bool = False


class MetricModel(_Strict):
    label: str
    value: str
    note: str | None = None


class TableModel(_Strict):
    title: str
    columns: list[str] = Field(min_length=1)
    rows: list[list[str | int | float | None]]
    number_formats: list[str | None] = Field(default_factory=list)


class ChartModel(_Strict):
    title: str
    kind: ChartKind
    spec: dict[str, Any]
    data: TableModel


class SectionModel(_Strict):
    key: str
    title: str
    paragraphs: list[str] = Field(default_factory=list)
    metrics: list[MetricModel] = Field(default_factory=list)
    tables: list[TableModel] = Field(default_factory=list)
    charts: list[ChartModel] = Field(default_factory=list)
    bullets: list[str] = Field(default_factory=list)


class ReportModel(_Strict):
    """The JSON form of a `ReportDocument` (the logo's bytes are left out)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    title: str
    subtitle: str
    template: str
    subject: str
    period_label: str
    generated_at: datetime
    branding: BrandingModel
    sections: list[SectionModel]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `to_json`'s output."""
    return ReportModel.model_json_schema()


def _table_json(table: Table) -> dict[str, Any]:
    return {
        "title": table.title,
        "columns": list(table.columns),
        "rows": [list(row) for row in table.rows],
        "number_formats": list(table.number_formats),
    }


def to_json(doc: ReportDocument) -> dict[str, Any]:
    """The document as JSON-safe data: datetimes in ISO 8601, the logo's bytes omitted."""
    return {
        "schema_version": SCHEMA_VERSION,
        "title": doc.title,
        "subtitle": doc.subtitle,
        "template": doc.template,
        "subject": doc.subject,
        "period_label": doc.period_label,
        "generated_at": doc.generated_at.isoformat(),
        "branding": {
            "name": doc.branding.name,
            "primary_color": doc.branding.primary_color,
            "logo_content_type": doc.branding.logo_content_type,
            "has_logo": doc.branding.logo is not None,
        },
        "sections": [
            {
                "key": section.key,
                "title": section.title,
                "paragraphs": list(section.paragraphs),
                "metrics": [
                    {"label": m.label, "value": m.value, "note": m.note} for m in section.metrics
                ],
                "tables": [_table_json(table) for table in section.tables],
                "charts": [
                    {
                        "title": chart.title,
                        "kind": chart.kind,
                        "spec": chart.spec,
                        "data": _table_json(chart.data),
                    }
                    for chart in section.charts
                ],
                "bullets": list(section.bullets),
            }
            for section in doc.sections
        ],
    }


def _table(model: TableModel) -> Table:
    return Table(
        title=model.title,
        columns=tuple(model.columns),
        rows=tuple(tuple(row) for row in model.rows),
        number_formats=tuple(model.number_formats),
    )


def from_json(data: dict[str, Any], *, logo: bytes | None = None) -> ReportDocument:
    """A document back from `to_json`'s output (validated); the logo is passed separately."""
    model = ReportModel.model_validate(data)
    return ReportDocument(
        title=model.title,
        subtitle=model.subtitle,
        template=model.template,
        subject=model.subject,
        period_label=model.period_label,
        generated_at=model.generated_at,
        branding=Branding(
            name=model.branding.name,
            primary_color=model.branding.primary_color,
            logo=logo,
            logo_content_type=model.branding.logo_content_type if logo else None,
        ),
        sections=tuple(
            Section(
                key=s.key,
                title=s.title,
                paragraphs=tuple(s.paragraphs),
                metrics=tuple(Metric(m.label, m.value, m.note) for m in s.metrics),
                tables=tuple(_table(t) for t in s.tables),
                charts=tuple(
                    Chart(title=c.title, spec=c.spec, kind=c.kind, data=_table(c.data))
                    for c in s.charts
                ),
                bullets=tuple(s.bullets),
            )
            for s in model.sections
        ),
    )
