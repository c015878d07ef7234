"""Analytics: Square sync throughput (`doorstep sync-square --all`, i.e. `sync_square(full=True)`).

The local Square fake (`tests/fakes/square.py`) runs in a process of its own with a generated café
chain (by default 20,000 orders over 30 days, 3 locations, 500 customers) and serves it over
HTTP; the official SDK reads it. Measured in the same run, one after the other:

* **reader alone**: `SquareReader` reading the locations, every customer and every order (SDK
  fetch and parse, the JSON handed back as dicts), no database: the reference.
* **full sync, SQLite**: `sync_square(full=True)` into a fresh, migrated SQLite file (WAL): the
  reads above plus bronze, silver, gold and the rollups, one transaction per page.
* **incremental sync, SQLite**: the run after it, nothing changed (the last 72 hours again).
* the same two on **PostgreSQL** when `--postgres URL` is given (a server to create a fresh
  database on; it is dropped afterwards).

Orders per second are the orders Square returned (COMPLETED and CANCELED) over the wall time of
the whole call. The script checks that every sync loaded the same orders and never passes or
fails on timing. Results: docs/performance.md, "Analytics: Square sync throughput".

    .venv/bin/python bench/square_sync.py
    .venv/bin/python bench/square_sync.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/square_sync.py --orders 2000 --page-size 200     # a quick try
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from transactions_site import machine_busy, progress, source_state  # noqa: E402

TOKEN = "EAAAl-bench-square-sync-token"  # noqa: S105 - the fake's, not a secret


# --- the fake, in its own process ------------------------------------------------------------


def _serve(args: dict[str, Any], conn: Any, stop: Any) -> None:
    from tests.fakes.square import FakeSquare

    fake = FakeSquare.generate(token=TOKEN, **args)
    sold = sum(1 for o in fake.orders.values() if o["state"] in ("COMPLETED", "CANCELED"))
    completed = sum(1 for o in fake.orders.values() if o["state"] == "COMPLETED")
    with fake.running():
        conn.send((fake.url, len(fake.orders), sold, completed))
        stop.wait()


@contextmanager
def fake_square(orders: int, locations: int, customers: int) -> Iterator[tuple[str, int, int, int]]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    args = {"orders": orders, "locations": locations, "customers": customers, "seed": 1}
    process = ctx.Process(target=_serve, args=(args, child, stop), daemon=True)
    process.start()
    try:
        if not parent.poll(600):
            raise RuntimeError("the Square fake did not start")
        yield parent.recv()
    finally:
        stop.set()
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


# --- databases -------------------------------------------------------------------------------


@contextmanager
def fresh_postgres(server: str) -> Iterator[str]:
    name = f"doorstep_bench_square_{uuid.uuid4().hex[:8]}"
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(server)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure_sync(url: str, square_url: str, page_size: int) -> dict[str, Any]:
    from doorstep.analytics.models import AnalyticsSource, FactSales, SquareOrder
    from doorstep.analytics.sync import sync_square
    from doorstep.cli import run_migrations
    from doorstep.platform.auth import Tenant
    from doorstep.platform.db import make_engine, make_sessionmaker

    run_migrations(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as session:
        tenant = Tenant(slug="bench-cafe", name="Bench Café", timezone="America/Los_Angeles")
        session.add(tenant)
        session.flush()
        session.add(
            AnalyticsSource(tenant_id=tenant.id, square_token=TOKEN, square_base_url=square_url)
        )
        session.commit()
        tenant_id = tenant.id
    out: dict[str, Any] = {}
    for label, full in (("full", True), ("incremental", False)):
        counted: list[int] = []
        busy = machine_busy()
        started = time.perf_counter()
        report = sync_square(
            factory, tenant_id, full=full, page_size=page_size, progress=counted.append
        )
        seconds = time.perf_counter() - started
        with factory() as session:
            read = session.scalar(select(func.count()).select_from(SquareOrder)) or 0
            loaded = session.scalar(select(func.count(FactSales.order_key.distinct()))) or 0
        out[label] = {
            "seconds": seconds,
            "report": report,
            "read": sum(counted),
            "bronze": read,
            "loaded": loaded,
            "busy": machine_busy(busy)[0],
        }
    engine.dispose()
    return out


def measure_reader(square_url: str, page_size: int) -> dict[str, Any]:
    from doorstep.analytics.square import SquareReader

    busy = machine_busy()
    started = time.perf_counter()
    with SquareReader(TOKEN, base_url=square_url) as reader:
        locations = reader.locations()
        customers = sum(len(page) for page in reader.customers())
        orders_started = time.perf_counter()
        ids = [location["id"] for location in locations]
        orders = sum(
            len(page.orders) for page in reader.orders(ids, updated_since=None, page_size=page_size)
        )
    ended = time.perf_counter()
    return {
        "seconds": ended - started,
        "orders_seconds": ended - orders_started,
        "orders": orders,
        "customers": customers,
        "busy": machine_busy(busy)[0],
    }


def measure_raw(square_url: str, location_ids: list[str], page_size: int) -> dict[str, Any]:
    """SearchOrders over plain httpx and `json`, no SDK: what the fake and HTTP cost alone."""
    import httpx

    busy = machine_busy()
    started = time.perf_counter()
    orders = 0
    with httpx.Client(base_url=square_url, timeout=60) as http:
        for start in range(0, len(location_ids), 10):
            body: dict[str, Any] = {
                "location_ids": location_ids[start : start + 10],
                "query": {
                    "filter": {"state_filter": {"states": ["COMPLETED", "CANCELED"]}},
                    "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
                },
                "limit": page_size,
            }
            while True:
                response = http.post(
                    "/v2/orders/search", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
                )
                response.raise_for_status()
                page = response.json()
                orders += len(page.get("orders", []))
                if not page.get("cursor"):
                    break
                body["cursor"] = page["cursor"]
    return {
        "seconds": time.perf_counter() - started,
        "orders": orders,
        "busy": machine_busy(busy)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--locations", type=int, default=3)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--page-size", type=int, default=500, help="SearchOrders limit")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is made)")
    args = parser.parse_args()

    print(f"# Square sync throughput, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"# {source_state()}; Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    progress(f"generating {args.orders:,} orders in the Square fake ...")
    with fake_square(args.orders, args.locations, args.customers) as (url, total, sold, done):
        print(
            f"# fake: {total:,} orders ({sold:,} COMPLETED or CANCELED, {done:,} COMPLETED), "
            f"{args.locations} locations, {args.customers} customers; page size {args.page_size}"
        )
        rows: list[tuple[str, float, int, float]] = []
        progress("reader alone ...")
        reader = measure_reader(url, args.page_size)
        rows.append(("reader alone (SDK fetch + parse, no database)", reader["seconds"],
                     reader["orders"], reader["busy"]))  # fmt: skip
        print(
            f"# reader: orders alone {reader['orders_seconds']:.1f} s "
            f"({1000 * reader['orders_seconds'] / max(1, reader['orders']):.2f} ms/order)"
        )
        progress("plain HTTP ...")
        from doorstep.analytics.square import SquareReader

        with SquareReader(TOKEN, base_url=url) as ids_reader:
            ids = [location["id"] for location in ids_reader.locations()]
        raw = measure_raw(url, ids, args.page_size)
        rows.append(("orders over plain httpx + json (no SDK, no database)", raw["seconds"],
                     raw["orders"], raw["busy"]))  # fmt: skip
        targets: list[tuple[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="doorstep-bench-square-") as tmp:
            targets.append(("SQLite", lambda: f"sqlite:///{Path(tmp) / 'square.db'}"))
            for name, make in targets:
                progress(f"full sync into {name} ...")
                result = measure_sync(make(), url, args.page_size)
                record(rows, name, result, sold, done)
        if args.postgres:
            progress("full sync into PostgreSQL ...")
            with fresh_postgres(args.postgres) as pg:
                record(rows, "PostgreSQL", measure_sync(pg, url, args.page_size), sold, done)

    print()
    print("| what | seconds | orders | orders/s | machine busy |")
    print("|---|---:|---:|---:|---:|")
    for what, seconds, orders, busy in rows:
        rate = orders / seconds if seconds else 0.0
        print(f"| {what} | {seconds:.1f} | {orders:,} | {rate:,.0f} | {busy:.0%} |")


def record(
    rows: list[tuple[str, float, int, float]],
    name: str,
    result: dict[str, Any],
    sold: int,
    completed: int,
) -> None:
    full, again = result["full"], result["incremental"]
    if full["read"] != sold or full["bronze"] != sold or full["loaded"] != completed:
        raise SystemExit(
            f"{name}: bronze {full['bronze']} (expected {sold}), gold {full['loaded']} orders "
            f"(expected {completed})"
        )
    if again["loaded"] != completed:
        raise SystemExit(f"{name}: the incremental run changed the warehouse")
    report = full["report"]
    rows.append((f"full sync into {name} ({report.pages} pages)", full["seconds"], sold,
                 full["busy"]))  # fmt: skip
    rows.append((f"incremental sync, {name}, nothing new (last 72 h)", again["seconds"],
                 again["read"], again["busy"]))  # fmt: skip


if __name__ == "__main__":
    main()
