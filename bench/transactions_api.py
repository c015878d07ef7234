"""Transactions API (issue 4): `GET /api/v1/transactions/{id}` and the list over 10,000.

A fresh PostgreSQL database with Redis as the bus (production mode) holds the demo data plus
10,000 bulk-inserted transactions of Riley Realty (bench/transactions_site.py). It is served
like production: gunicorn with uvicorn workers, one per core. wrk drives it as the broker, who
sees every one of them:

* `GET /api/v1/transactions/{id}`, each request another id (a Lua script cycles over them);
* `GET /api/v1/transactions/?per_page=25&sort=-target_closing_date`, the list's first page;
* the same with a search and a filter (`q=oak&loan_type=conventional`);
* references through the same server in the same run: `GET /healthz` (a bare endpoint, the
  HTTP floor) and `GET /api/auth/me` (the same token check and thread hop, little else).

Each at every `--connections` count. The aims (p95 under 25 ms for one transaction, under
50 ms for the list) are printed beside the figures; the script never passes or fails on
timing. Results: docs/performance.md.

    .venv/bin/python bench/transactions_api.py            # 10 s per row after a 2 s warm-up
    .venv/bin/python bench/transactions_api.py --quick    # 3 s rows, 1,000 transactions
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from transactions_site import (
    bulk_transactions,
    exit_cleanly_on_sigterm,
    free_port,
    fresh_site,
    gunicorn_command,
    machine_busy,
    progress,
    run_wrk,
    serving,
    sign_in,
    source_state,
)

BROKER = "broker@doorstep.demo"
BASE = "/api/v1/transactions/"
LIST_QUERY = "per_page=25&sort=-target_closing_date"
SEARCH_QUERY = "q=oak&loan_type=conventional&per_page=25&sort=-target_closing_date"


@dataclass(frozen=True)
class Endpoint:
    label: str
    aim_p95_ms: float | None  # None: a reference


HEALTHZ = Endpoint("GET /healthz (reference: bare endpoint)", None)
ME = Endpoint("GET /api/auth/me (reference: auth floor)", None)
ONE = Endpoint("GET /transactions/{id} (cycling over ids)", 25.0)
PAGE = Endpoint("GET /transactions/?per_page=25&sort=-target_closing_date", 50.0)
SEARCH = Endpoint("GET /transactions/?... &q=oak&loan_type=conventional", 50.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per row")
    parser.add_argument("--quick", action="store_true", help="3 s rows, 1,000 transactions")
    parser.add_argument("--transactions", type=int, default=10_000, help="bulk rows (10,000)")
    parser.add_argument("--connections", default="1,8,32", help="wrk connection counts")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn -w")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    connections = [int(c) for c in args.connections.split(",") if c.strip()]
    if args.quick:
        args.duration, args.transactions = 3.0, 1_000
    warmup = 1.0 if args.quick else 2.0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-tx-") as tmp:
        progress("preparing a fresh PostgreSQL database with the demo data ...")
        with fresh_site(Path(tmp), production=True, label="txapi") as site:
            progress(f"bulk-inserting {args.transactions:,} transactions ...")
            bulk = bulk_transactions(site.database_url, count=args.transactions)
            paths = {
                HEALTHZ: ["/healthz"],
                ME: ["/api/auth/me"],
                ONE: [f"{BASE}{i}" for i in bulk.ids],
                PAGE: [f"{BASE}?{LIST_QUERY}"],
                SEARCH: [f"{BASE}?{SEARCH_QUERY}"],
            }
            port = free_port()
            command = gunicorn_command(port, args.workers)
            with serving(command, port, env=site.env, workdir=site.workdir) as url:
                headers = {"Authorization": f"Bearer {sign_in(url, BROKER)}"}
                listed = httpx.get(f"{url}{BASE}?{LIST_QUERY}", headers=headers, timeout=30)
                listed.raise_for_status()
                visible = int(listed.json()["total"])
                results = []
                before = machine_busy()
                for conns in connections:
                    for endpoint, endpoint_paths in paths.items():
                        progress(f"{conns} connection(s): {endpoint.label} ...")
                        for seconds in (warmup, args.duration):  # the first is the warm-up
                            load = run_wrk(
                                url,
                                endpoint_paths,
                                connections=conns,
                                duration=seconds,
                                headers=headers,
                                workdir=site.workdir,
                            )
                        results.append((endpoint, conns, load))
                busy = machine_busy(since=before)
    print(
        f"Transactions API, {started:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPU cores "
        f"({platform.machine()}, Python {platform.python_version()}); {site.mode}; "
        f"{source_state()}"
    )
    print(
        f"Data: {len(bulk.ids):,} bulk transactions ({bulk.milestones:,} milestones, "
        f"{bulk.agents} agents) plus the demo data; the broker's list counts {visible:,}. "
        f"Server: gunicorn, {args.workers} uvicorn workers. wrk, {args.duration:g} s per row "
        f"after {warmup:g} s warm-up. The machine's CPUs were {busy[0]:.0%} busy meanwhile "
        "(wrk and everything else on it included)."
    )
    print()
    header = (
        f"{'endpoint':<58} {'conns':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  aim"
    )
    print(header)
    print("-" * len(header))
    for endpoint, conns, load in results:
        aim = ""
        if endpoint.aim_p95_ms is not None:
            met = load.p95_ms < endpoint.aim_p95_ms
            aim = f"p95 < {endpoint.aim_p95_ms:g}: {'yes' if met else 'NO'}"
        print(
            f"{endpoint.label:<58} {conns:>5} {load.rps:>7.0f} {load.p50_ms:>7.1f} "
            f"{load.p95_ms:>7.1f} {load.p99_ms:>7.1f}  {aim}"
        )


if __name__ == "__main__":
    main()
