"""Chart images: each Vega-Lite spec becomes a PNG once per render (vl-convert, no browser)."""

from __future__ import annotations

import copy
import json
import struct
from typing import Any

import vl_convert as vlc

from doorstep.reports.document import Chart

# The page's specs size themselves to their container; a report has none, so a fixed width
# (CSS pixels) stands in. Scale 2 gives ~190 dpi across an A4 text column.
CHART_WIDTH = 640
CHART_SCALE = 2


def print_spec(spec: dict[str, Any], *, width: int = CHART_WIDTH) -> dict[str, Any]:
    """A copy of `spec` for a fixed-size image: "container" sizes replaced, white background,
    and the page-only `usermeta` (drill-down) dropped."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            fixed = {key: fix(value) for key, value in node.items()}
            if fixed.get("width") == "container":
                fixed["width"] = width
            if fixed.get("height") == "container":
                fixed["height"] = round(width * 0.5)
            return fixed
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    printable: dict[str, Any] = fix(copy.deepcopy(spec))
    printable.pop("usermeta", None)
    printable.setdefault("background", "white")
    return printable


def chart_png(
    spec: dict[str, Any], *, width: int = CHART_WIDTH, scale: float = CHART_SCALE
) -> bytes:
    return vlc.vegalite_to_png(json.dumps(print_spec(spec, width=width)), scale=scale)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, read from the PNG's header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


class ChartImages:
    """The PNGs of one render (or of several formats of one document), keyed by spec JSON, so
    a spec shared by two charts or two formats is converted once."""

    def __init__(self) -> None:
        self._pngs: dict[str, bytes] = {}
        self.conversions = 0

    def png(self, chart: Chart) -> bytes:
        key = json.dumps(chart.spec, sort_keys=True, default=str)
        png = self._pngs.get(key)
        if png is None:
            png = self._pngs[key] = chart_png(chart.spec)
            self.conversions += 1
        return png
