"""Copy the pinned front-end packages from node_modules into the package's static/vendor folder.

The list is explicit so that only what pages load is served, and so that a missing package
fails the set-up loudly instead of producing a page without its styles.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "node_modules"
VENDOR = ROOT / "src" / "doorstep" / "web" / "static" / "vendor"

# (source under node_modules, destination under static/vendor)
ASSETS: list[tuple[str, str]] = [
    ("@tabler/core/dist/css/tabler.min.css", "tabler/tabler.min.css"),
    ("@tabler/core/dist/js/tabler.min.js", "tabler/tabler.min.js"),
    ("@tabler/icons-webfont/dist/tabler-icons.min.css", "tabler-icons/tabler-icons.min.css"),
    ("@tabler/icons-webfont/dist/fonts", "tabler-icons/fonts"),
    ("htmx.org/dist/htmx.min.js", "htmx/htmx.min.js"),
    ("htmx-ext-ws/ws.js", "htmx/ws.js"),
    ("canvas-confetti/dist/confetti.browser.js", "canvas-confetti/confetti.browser.js"),
    ("sortablejs/Sortable.min.js", "sortablejs/Sortable.min.js"),
    # Charts: the Vega-Lite specs that web/charts.py builds with Altair, rendered by vega-embed.
    ("vega/build/vega.min.js", "vega/vega.min.js"),
    ("vega-lite/build/vega-lite.min.js", "vega/vega-lite.min.js"),
    ("vega-embed/build/vega-embed.min.js", "vega/vega-embed.min.js"),
    # The live dashboard's Socket.IO client (seed 002): the self-contained browser bundle.
    ("socket.io-client/dist/socket.io.min.js", "socket.io/socket.io.min.js"),
]


def main() -> int:
    if not MODULES.is_dir():
        print("node_modules is missing: run `npm ci` first", file=sys.stderr)
        return 1
    missing = [src for src, _ in ASSETS if not (MODULES / src).exists()]
    if missing:
        print("missing front-end assets: " + ", ".join(missing), file=sys.stderr)
        return 1
    for src, dest in ASSETS:
        source, target = MODULES / src, VENDOR / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    print(f"copied {len(ASSETS)} front-end assets into {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
