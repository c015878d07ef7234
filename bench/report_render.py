"""Report rendering (issue 8): how long a report takes to render, and how much memory.

Two measurements, with references taken in the same run:

* **Executive Summary PDF, three charts**: median of N renders in a warm process, each with
  its charts converted afresh, plus the first (cold) render of the process. References: the
  same document's HTML printed by WeasyPrint with no charts, and vl-convert converting one chart
  spec to PNG. Aim: under 2 s.
* **All templates, all formats**: the six documents of a reporting run (four company
  templates, two brokerage templates) in PDF, DOCX, XLSX, PPTX and JSON, in a fresh child
  process, imports included; total time and the child's peak RSS. Aim: under 30 s and 400 MB.

Results: docs/performance.md. The script never passes or fails on timing.

    .venv/bin/python bench/report_render.py            # N = 10
    .venv/bin/python bench/report_render.py --runs 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.reports.samples: the documents the tests render


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _median(fn: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def all_templates() -> None:
    """Child process: the six documents in every format; prints one JSON line."""
    start = time.perf_counter()
    import doorstep.reports.render.excel
    import doorstep.reports.render.pdf
    import doorstep.reports.render.slides
    import doorstep.reports.render.word  # noqa: F401  (the writers load lazily; time them here)
    from doorstep.reports.render import FORMATS, render_many

    imported = time.perf_counter() - start
    from tests.reports.samples import all_templates as documents
    from tests.reports.samples import logo_png

    per_format = dict.fromkeys(FORMATS, 0.0)
    sizes = dict.fromkeys(FORMATS, 0)
    docs = documents(logo=logo_png())
    for doc in docs:
        for fmt in FORMATS:
            t = time.perf_counter()
            # One format at a time so each is timed; render_many would share the chart PNGs.
            data = render_many(doc, (fmt,))[fmt]
            per_format[fmt] += time.perf_counter() - t
            sizes[fmt] += len(data)
    shared = time.perf_counter()
    for doc in docs:
        render_many(doc)
    shared_total = time.perf_counter() - shared
    print(
        json.dumps(
            {
                "documents": len(docs),
                "charts": sum(len(doc.charts) for doc in docs),
                "imports_s": imported,
                "total_s": shared - start,
                "per_format_s": per_format,
                "bytes": sizes,
                "shared_images_s": shared_total,
                "peak_rss_mb": _rss_mb(),
            }
        )
    )


def _line(label: str, value: float, unit: str, note: str = "") -> None:
    figure = f"{value:8.0f}" if unit in ("ms", "MB") else f"{value:8.2f}"
    print(f"  {label:<56}{figure} {unit:<2}  {note}".rstrip())


def warmed_first_render() -> None:
    """Child process: warm_up(), then the first Executive Summary PDF; prints one JSON line."""
    from doorstep.reports.render import render, warm_up
    from tests.reports.samples import executive_summary, logo_png

    doc = executive_summary(logo=logo_png())
    t = time.perf_counter()
    warm_up()
    warmed = time.perf_counter()
    render(doc, "pdf")
    print(json.dumps({"warm_up_s": warmed - t, "first_s": time.perf_counter() - warmed}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        all_templates()
        return
    if args.warm_child:
        warmed_first_render()
        return

    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )
    print(
        "libraries: "
        + ", ".join(
            f"{name} {metadata.version(name)}"
            for name in (
                "weasyprint",
                "vl-convert-python",
                "python-docx",
                "python-pptx",
                "xlsxwriter",
            )
        )
    )

    # The child first, so that its figures are not taken on a machine warmed by the loop.
    child = subprocess.run(
        [sys.executable, __file__, "--child"], capture_output=True, text=True, check=True
    )
    every = json.loads(child.stdout.strip().splitlines()[-1])

    start = time.perf_counter()
    import vl_convert as vlc
    import weasyprint

    import doorstep.reports.render.excel
    import doorstep.reports.render.slides
    import doorstep.reports.render.word  # noqa: F401  (the writers load lazily; time them here)
    from doorstep.reports.render import ChartImages, render
    from doorstep.reports.render.images import chart_png, print_spec
    from doorstep.reports.render.pdf import render_html

    imports = time.perf_counter() - start
    from tests.reports.samples import executive_summary, logo_png  # Altair: the specs

    doc = executive_summary(logo=logo_png())
    rss_imported = _rss_mb()

    t = time.perf_counter()
    pdf = render(doc, "pdf")
    cold = time.perf_counter() - t
    rss_first = _rss_mb()
    # What warm_up() saves a fresh process (a worker calls it at start), in another process.
    warm = subprocess.run(
        [sys.executable, __file__, "--warm-child"], capture_output=True, text=True, check=True
    )
    warmed = json.loads(warm.stdout.strip().splitlines()[-1])

    pdf_median, pdf_times = _median(lambda: render(doc, "pdf"), args.runs)
    # References: WeasyPrint alone on the same document without charts (its HTML made once),
    # and vl-convert alone on one chart.
    plain = dataclasses.replace(
        doc, sections=tuple(dataclasses.replace(s, charts=()) for s in doc.sections)
    )
    html = render_html(plain)
    html_median, _ = _median(lambda: weasyprint.HTML(string=html).write_pdf(), args.runs)
    spec = json.dumps(print_spec(doc.charts[0].spec))
    chart_median, _ = _median(lambda: vlc.vegalite_to_png(spec, scale=2), args.runs)
    charts_median, _ = _median(lambda: [chart_png(chart.spec) for chart in doc.charts], args.runs)
    images = ChartImages()
    for chart in doc.charts:
        images.png(chart)
    cached_median, _ = _median(lambda: render(doc, "pdf", images=images), args.runs)

    ms = 1000
    print()
    print(f"Executive Summary PDF ({len(doc.charts)} charts, {len(pdf):,} bytes), runs={args.runs}")
    _line("import the renderers (5 libraries)", imports * ms, "ms")
    _line("first render in the process (cold)", cold * ms, "ms")
    _line("in a fresh process: warm_up(), imports included", warmed["warm_up_s"] * ms, "ms")
    _line("  then the first render", warmed["first_s"] * ms, "ms")
    _line(
        "render, median (charts converted each time)",
        pdf_median * ms,
        "ms",
        f"(min {min(pdf_times) * ms:.0f}, max {max(pdf_times) * ms:.0f})",
    )
    _line("  the 3 charts to PNG alone (vl-convert), median", charts_median * ms, "ms")
    _line("  render with the chart PNGs already made, median", cached_median * ms, "ms")
    _line("reference: WeasyPrint, same HTML without charts", html_median * ms, "ms")
    _line("reference: vl-convert, one chart to PNG (scale 2)", chart_median * ms, "ms")
    print(
        f"  peak RSS: after imports {rss_imported:.0f} MB, after the first render "
        f"{rss_first:.0f} MB, at the end {_rss_mb():.0f} MB"
    )

    print()
    print(
        f"All templates: {every['documents']} documents ({every['charts']} charts) x 5 formats, "
        "fresh process"
    )
    _line("total, imports and building the documents included", every["total_s"], "s")
    _line("  import the renderers", every["imports_s"], "s")
    for fmt, seconds in every["per_format_s"].items():
        size = every["bytes"][fmt] / every["documents"] / 1024
        _line(
            f"  {fmt} (6 documents, charts converted per format)",
            seconds,
            "s",
            f"({size:,.0f} KB per document)",
        )
    _line("again, all five formats sharing each document's charts", every["shared_images_s"], "s")
    _line("peak RSS of the process", every["peak_rss_mb"], "MB")


if __name__ == "__main__":
    main()
