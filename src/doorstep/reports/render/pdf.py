"""PDF: the report's HTML template (Jinja2, autoescaped) printed by WeasyPrint."""

from __future__ import annotations

import base64
from functools import cache
from importlib import resources

import jinja2
import weasyprint
from markupsafe import Markup

from doorstep.reports.document import ReportDocument
from doorstep.reports.render.images import ChartImages

_TEMPLATES = resources.files("doorstep.reports") / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _css() -> Markup:
    # Our own file, trusted: autoescaping would turn its quotes into entities, which a <style>
    # element does not decode (the fonts and the page counters would be dropped).
    return Markup((_TEMPLATES / "report.css").read_text(encoding="utf-8"))  # noqa: S704


def _data_uri(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def render_html(doc: ReportDocument, *, images: ChartImages | None = None) -> str:
    """The report as one self-contained HTML page (CSS inline, images as data URIs)."""
    images = images or ChartImages()
    branding = doc.branding
    logo_uri = (
        _data_uri(branding.logo_content_type or "image/png", branding.logo)
        if branding.logo is not None
        else None
    )
    sections = [
        (section, [(chart, _data_uri("image/png", images.png(chart))) for chart in section.charts])
        for section in doc.sections
    ]
    return (
        _environment()
        .get_template("report.html")
        .render(
            doc=doc,
            sections=sections,
            css=_css(),
            brand=branding.primary_color,
            brand_tint=branding.tint(0.9),
            brand_stripe=branding.tint(0.96),
            logo_uri=logo_uri,
            generated=doc.generated_at.strftime("%d %b %Y, %H:%M %Z").strip(),
        )
    )


def render_pdf(doc: ReportDocument, *, images: ChartImages | None = None) -> bytes:
    html = render_html(doc, images=images)
    # A fixed identifier keeps the bytes the same for the same document (WeasyPrint otherwise
    # derives it from the time).
    pdf: bytes = weasyprint.HTML(string=html).write_pdf(
        pdf_identifier=doc.generated_at.isoformat().encode()
    )
    return pdf
