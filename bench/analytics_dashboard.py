"""Analytics dashboard (seed 001): the whole dashboard over three years of sales.

Data: 3 years at 3,000 orders a day (about 3.3 million orders and 7.9 million order lines, 1-4
lines per order, mean 2.4), 3 locations, 25 products, and about 70,000 customers who come back
(60% of the orders carry a customer). It is generated with numpy (seeded) and cached under /tmp
(Parquet, and the CSV that COPY reads: about 750 MB at full size). It is bulk-loaded into a
fresh database migrated as `doorstep migrate` does: COPY on PostgreSQL (into
`gold.fact_sales`, whose year partitions are created first, and the dimensions), big
`executemany` batches in one transaction on SQLite. The rollups are then built by the real
code, `Loader(session, tenant_id).refresh(all_days)`, timed statement by statement.

Measured for the last 30 days, the last 365 days and all time (each ending on the last day
with data), on PostgreSQL and on SQLite:

* **service**: `service.dashboard(session, Filters)` — every KPI and panel, as the API computes
  them, in a fresh session per call; and, to see what dominates, each panel on its own
  (`only={name}`);
* **http**: `GET /api/analytics/dashboard` through `fastapi.testclient` (a few calls);
* **naive**: the same figures straight from `fact_sales` (one plain SQL query per KPI/panel,
  GROUP BYs over the order lines, no rollups);
* **duckdb**: the same naive queries in DuckDB over the same data (loaded from the Parquet
  cache into DuckDB's own tables, in memory).

The naive answers are checked against the service's. Aim: service p95 under 300 ms for every
range on both databases. The script never passes or fails on timing. Results:
docs/performance.md.

    .venv/bin/python bench/analytics_dashboard.py                 # full size, both databases
    .venv/bin/python bench/analytics_dashboard.py --scale 0.1     # a quick try
    .venv/bin/python bench/analytics_dashboard.py --only sqlite --reps 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from transactions_site import (
    exit_cleanly_on_sigterm,
    machine_busy,
    percentile,
    progress,
    source_state,
)

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get(
    "DOORSTEP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "bench_analytics"
CACHE = Path(os.environ.get("DOORSTEP_BENCH_CACHE", "/tmp/doorstep-bench-analytics"))  # noqa: S108
FORMAT = 2  # bump when the generated data changes, so an old cache is not reused

END = date(2026, 11, 20)  # the last day with data; ranges end here
DAYS = 3 * 365
ORDERS_PER_DAY = 3000
CUSTOMERS = 85_000  # created over the years; about 70,000 of them ever buy
IDENTIFIED = 0.60
LOCATIONS = (
    ("main-st", "Main Street", "America/New_York", 0.45),
    ("harbor", "Harbor", "America/New_York", 0.35),
    ("lakeside", "Lakeside", "America/Chicago", 0.20),
)
PRODUCTS = (  # key, name, category, price in cents
    ("latte", "Latte", "Coffee", 475), ("cappuccino", "Cappuccino", "Coffee", 450),
    ("americano", "Americano", "Coffee", 350), ("espresso", "Espresso", "Coffee", 300),
    ("mocha", "Mocha", "Coffee", 525), ("flat-white", "Flat White", "Coffee", 450),
    ("cold-brew", "Cold Brew", "Coffee", 495), ("drip", "Drip Coffee", "Coffee", 275),
    ("chai", "Chai Latte", "Tea", 475), ("matcha", "Matcha Latte", "Tea", 550),
    ("green-tea", "Green Tea", "Tea", 325), ("black-tea", "Black Tea", "Tea", 300),
    ("hot-choc", "Hot Chocolate", "Other drinks", 425), ("smoothie", "Berry Smoothie",
    "Other drinks", 695), ("oj", "Orange Juice", "Other drinks", 450),
    ("croissant", "Croissant", "Bakery", 375), ("muffin", "Blueberry Muffin", "Bakery", 350),
    ("scone", "Scone", "Bakery", 325), ("bagel", "Bagel", "Bakery", 300),
    ("cookie", "Cookie", "Bakery", 250), ("avocado", "Avocado Toast", "Food", 1095),
    ("sandwich", "Turkey Sandwich", "Food", 995), ("salad", "Garden Salad", "Food", 1150),
    ("oatmeal", "Oatmeal", "Food", 595), ("beans", "Coffee Beans 1 lb", "Retail", 1800),
)  # fmt: skip
# Opening hours 6:00-21:59, a morning rush and a lunch peak.
HOURS = np.arange(6, 22)
HOUR_WEIGHTS = np.array([3, 9, 12, 10, 7, 6, 9, 8, 6, 5, 5, 4, 3, 3, 2, 1], dtype=float)
WEEKDAY_WEIGHTS = np.array([0.88, 0.9, 0.93, 0.97, 1.06, 1.2, 1.06])  # Monday first
RANGES = (("30d", 30), ("365d", 365), ("all", None))
NAIVE_TABLES = ("fact_sales", "dim_product", "dim_location", "dim_customer", "dim_date")
PASSWORD = "bench-analytics-password"  # noqa: S105 - the throwaway database's analyst


# --- the data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    folder: Path
    first: date
    last: date
    meta: dict[str, Any]

    def file(self, name: str) -> str:
        return str(self.folder / f"{name}.parquet")

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def generate(scale: float, seed: int) -> Data:
    """Orders, lines and dimensions, with numpy; cached as Parquet (re-runs skip this)."""
    folder = CACHE / f"v{FORMAT}-seed{seed}-scale{scale:g}"
    first = END - timedelta(days=DAYS - 1)
    if (folder / "meta.json").exists():
        meta = json.loads((folder / "meta.json").read_text())
        progress(f"data: cached in {folder} ({meta['orders']:,} orders, {meta['lines']:,} lines)")
        return Data(folder, first, END, meta)
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    day = np.arange(DAYS)
    dates = pd.date_range(first, periods=DAYS, freq="D")
    # Orders per day: weekday pattern, a mild season, 20% growth over the three years.
    season = 1 + 0.08 * np.sin(2 * np.pi * (dates.day_of_year.to_numpy() - 100) / 365.25)
    rate = WEEKDAY_WEIGHTS[dates.day_of_week.to_numpy()] * season * (0.9 + 0.2 * day / (DAYS - 1))
    per_day = rng.poisson(ORDERS_PER_DAY * scale * rate / rate.mean())
    n = int(per_day.sum())
    o_day = np.repeat(day, per_day).astype(np.int32)
    o_hour = rng.choice(HOURS, n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum()).astype(np.int32)
    o_second = rng.integers(0, 3600, n).astype(np.int32)
    location_p = np.array([w for *_, w in LOCATIONS])
    o_location = rng.choice(len(LOCATIONS), n, p=location_p).astype(np.int32)
    # Customers: arrive over the years, stay an exponential time (mean ~15 months), buy at a
    # gamma-distributed rate (a few daily regulars, many occasional), mostly at a home store.
    c_n = max(50, round(CUSTOMERS * scale))
    arrive = rng.integers(-120, DAYS, c_n)
    leave = arrive + rng.exponential(450, c_n)
    weight = rng.gamma(0.6, 1.0, c_n)
    home = rng.choice(len(LOCATIONS), c_n, p=location_p)
    o_customer = np.full(n, -1, dtype=np.int64)
    identified = rng.random(n) < IDENTIFIED
    starts = np.concatenate([[0], np.cumsum(per_day)])
    for d in range(DAYS):
        who = np.flatnonzero(identified[starts[d] : starts[d + 1]]) + starts[d]
        active = np.flatnonzero((arrive <= d) & (leave >= d))
        if not len(who) or not len(active):
            continue
        p = weight[active] / weight[active].sum()
        o_customer[who] = rng.choice(active, len(who), p=p)
    mine = o_customer >= 0
    at_home = mine & (rng.random(n) < 0.85)
    o_location[at_home] = home[o_customer[at_home]]
    # Customer keys only for those who ever bought, numbered by first purchase.
    bought, first_seen = np.unique(o_customer[mine], return_index=True)
    order_by_first = bought[np.argsort(first_seen)]
    sk = np.full(c_n, -1, dtype=np.int64)
    sk[order_by_first] = np.arange(1, len(order_by_first) + 1)
    o_customer_sk = np.where(mine, sk[np.maximum(o_customer, 0)], -1)
    # Local time -> UTC: each location's offset on each day (no store opens across a DST change).
    zones = [ZoneInfo(tz) for _, _, tz, _ in LOCATIONS]
    offsets = np.array([[_offset(d, z) for z in zones] for d in dates.date], dtype=np.int64)
    epoch0 = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
    o_utc = (
        epoch0 + o_day.astype(np.int64) * 86400 + o_hour * 3600 + o_second
        - offsets[o_day, o_location]
    )  # fmt: skip
    # Lines: 1-4 per order (mean 2.4), products by popularity, mostly one of each.
    n_lines = rng.choice([1, 2, 3, 4], n, p=[0.25, 0.30, 0.25, 0.20])
    total = int(n_lines.sum())
    l_order = np.repeat(np.arange(n), n_lines)
    l_no = np.arange(total) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines) + 1
    popularity = 1 / np.arange(1, len(PRODUCTS) + 1) ** 0.8
    l_product = rng.choice(len(PRODUCTS), total, p=popularity / popularity.sum())
    l_quantity = rng.choice([1, 2, 3], total, p=[0.86, 0.11, 0.03])
    prices = np.array([cents for *_, cents in PRODUCTS])
    l_cents = prices[l_product] * l_quantity
    orders = pd.DataFrame(
        {
            "order_no": np.arange(n),
            "day": o_day,
            "hour": o_hour,
            "utc": o_utc,
            "location_sk": o_location + 1,
            "customer_sk": np.where(mine, o_customer_sk, -1),
        }
    )
    lines = pd.DataFrame(
        {
            "order_no": l_order,
            "line_no": l_no,
            "product_sk": l_product + 1,
            "quantity": l_quantity,
            "cents": l_cents,
        }
    )
    db = quiet_duckdb()
    db.register("orders", orders)
    db.register("lines", lines)
    db.execute(f"""
        COPY (
            SELECT DATE '{first.isoformat()}' + o.day::INTEGER AS sale_date,
                   'square' AS source,
                   'sq-' || lpad(l.order_no::VARCHAR, 8, '0') AS order_key,
                   l.line_no::SMALLINT AS line_no,
                   make_timestamp(o.utc * 1000000) AS order_ts,
                   o.hour::SMALLINT AS hour,
                   strftime(DATE '{first.isoformat()}' + o.day::INTEGER, '%Y%m%d')::INTEGER
                       AS date_key,
                   o.location_sk::INTEGER AS location_sk,
                   NULLIF(o.customer_sk, -1)::INTEGER AS customer_sk,
                   l.product_sk::INTEGER AS product_sk,
                   l.quantity::DECIMAL(12, 3) AS quantity,
                   (l.cents / 100)::DECIMAL(14, 2) AS revenue
            FROM lines l JOIN orders o ON o.order_no = l.order_no
            ORDER BY l.order_no, l.line_no
        ) TO '{folder / "fact_sales.parquet"}' (FORMAT parquet, ROW_GROUP_SIZE 500000)
    """)  # noqa: S608 - our own constants
    dims = {
        "dim_location": pd.DataFrame(
            {
                "location_sk": range(1, len(LOCATIONS) + 1),
                "source": "square",
                "location_key": [k for k, *_ in LOCATIONS],
                "name": [name for _, name, *_ in LOCATIONS],
                "timezone": [tz for _, _, tz, _ in LOCATIONS],
            }
        ),
        "dim_product": pd.DataFrame(
            {
                "product_sk": range(1, len(PRODUCTS) + 1),
                "source": "square",
                "product_key": [k for k, *_ in PRODUCTS],
                "name": [name for _, name, *_ in PRODUCTS],
                "category": [cat for _, _, cat, _ in PRODUCTS],
            }
        ),
        "dim_customer": pd.DataFrame(
            {
                "customer_sk": np.arange(1, len(bought) + 1),
                "source": "square",
                "customer_key": [f"cust-{i:06d}" for i in range(1, len(bought) + 1)],
                "name": [f"Customer {i}" for i in range(1, len(bought) + 1)],
            }
        ),
    }
    from doorstep.analytics.warehouse import date_row

    dims["dim_date"] = pd.DataFrame([date_row(d) for d in dates.date])
    for name, frame in dims.items():
        db.register(name, frame)
        db.execute(f"COPY {name} TO '{folder / name}.parquet' (FORMAT parquet)")
    meta = {
        "seed": seed,
        "scale": scale,
        "first": first.isoformat(),
        "last": END.isoformat(),
        "orders": n,
        "lines": total,
        "identified_orders": int(mine.sum()),
        "customers": len(bought),
        "products": len(PRODUCTS),
        "locations": len(LOCATIONS),
        "generated_seconds": round(time.perf_counter() - started, 1),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    progress(
        f"data: generated {n:,} orders, {total:,} lines, {len(bought):,} customers "
        f"in {meta['generated_seconds']} s -> {folder}"
    )
    return Data(folder, first, END, meta)


def quiet_duckdb() -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.execute("SET enable_progress_bar = false")
    return db


def _offset(day: date, tz: ZoneInfo) -> int:
    """The zone's UTC offset in seconds at noon that day."""
    offset = datetime(day.year, day.month, day.day, 12, tzinfo=tz).utcoffset()
    return int(offset.total_seconds()) if offset else 0


# --- the databases -------------------------------------------------------------------------------


@dataclass
class Target:
    name: str  # "PostgreSQL" | "SQLite"
    url: str
    engine: Engine
    tenant_id: int
    load_seconds: dict[str, float] = field(default_factory=dict)
    refresh_statements: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"


def _admin_conninfo() -> str:
    return make_url(POSTGRES).set(drivername="postgresql").render_as_string(hide_password=False)


def _create_tenant(engine: Engine) -> tuple[int, str]:
    """A tenant and an analyst (for the HTTP route); returns (tenant id, the analyst's e-mail)."""
    from doorstep.platform.audit import set_actor
    from doorstep.platform.auth import Role, Tenant, User, hash_password

    with Session(engine) as session:
        set_actor(session, "bench")
        tenant = Tenant(slug="bench-cafe", name="Bench Cafe", timezone="America/New_York")
        session.add(tenant)
        session.flush()
        email = "analyst@bench-cafe.test"
        session.add(
            User(
                tenant_id=tenant.id,
                email=email,
                full_name="Bench Analyst",
                role=Role.analyst,
                password_hash=hash_password(PASSWORD),
            )
        )
        session.commit()
        return tenant.id, email


def setup_postgres(data: Data) -> Target:
    from doorstep.analytics.warehouse import Loader
    from doorstep.cli import run_migrations
    from doorstep.platform.db import make_engine

    with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    url = (
        make_url(POSTGRES)
        .set(drivername="postgresql+psycopg", database=DATABASE)
        .render_as_string(hide_password=False)
    )
    timings: dict[str, float] = {}
    with _timed(timings, "migrate"):
        run_migrations(url)
    engine = make_engine(url, pool_size=2)
    tenant_id, _ = _create_tenant(engine)
    target = Target("PostgreSQL", url, engine, tenant_id, timings)
    years = {d.year for d in (data.first, data.last)} | set(range(data.first.year, END.year))
    with Session(engine) as session:
        Loader(session, tenant_id)._ensure_partitions(years)
        session.commit()
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    db = quiet_duckdb()
    with _timed(timings, "copy dimensions"), psycopg.connect(conninfo) as pg:
        for name, columns in (
            ("dim_location", "location_sk, source, location_key, name, timezone"),
            ("dim_product", "product_sk, source, product_key, name, category"),
            ("dim_customer", "customer_sk, source, customer_key, name"),
        ):
            rows = db.execute(
                f"SELECT {tenant_id}, {columns} FROM '{data.file(name)}'"  # noqa: S608
            ).fetchall()
            with pg.cursor().copy(f"COPY gold.{name} (tenant_id, {columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            key = columns.split(",")[0]
            sequence = f"SELECT setval(pg_get_serial_sequence('gold.{name}', '{key}'), %s)"
            pg.execute(sequence, [max(row[1] for row in rows)])
    csv = data.folder / "fact_sales.csv"
    with _timed(timings, "export CSV (DuckDB)"):
        if not csv.exists():
            db.execute(f"""
                COPY (SELECT sale_date, source, order_key, line_no,
                             strftime(order_ts, '%Y-%m-%d %H:%M:%S+00'), hour, date_key,
                             location_sk, customer_sk, product_sk, quantity, revenue
                      FROM '{data.file("fact_sales")}')
                TO '{csv}' (FORMAT csv, HEADER false)
            """)  # noqa: S608
    columns = (
        "sale_date, source, order_key, line_no, order_ts, hour, date_key, location_sk, "
        "customer_sk, product_sk, quantity, revenue"
    )
    with _timed(timings, "COPY fact_sales"), psycopg.connect(conninfo) as pg:
        pg.execute("SET synchronous_commit = off")
        # tenant_id takes its default for the load only: COPY has no constant columns.
        pg.execute(f"ALTER TABLE gold.fact_sales ALTER COLUMN tenant_id SET DEFAULT {tenant_id}")
        with (
            pg.cursor().copy(f"COPY gold.fact_sales ({columns}) FROM STDIN (FORMAT csv)") as copy,
            csv.open("rb") as source,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        pg.execute("ALTER TABLE gold.fact_sales ALTER COLUMN tenant_id DROP DEFAULT")
    with _timed(timings, "VACUUM ANALYZE"), psycopg.connect(conninfo, autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE")
    refresh(target, data)
    with _timed(timings, "VACUUM ANALYZE"), psycopg.connect(conninfo, autocommit=True) as pg:
        pg.execute("VACUUM ANALYZE")
    return target


def setup_sqlite(data: Data) -> Target:
    from doorstep.cli import run_migrations
    from doorstep.platform.db import make_engine

    path = CACHE / "bench_analytics.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    timings: dict[str, float] = {}
    with _timed(timings, "migrate"):
        run_migrations(url)
    engine = make_engine(url)
    tenant_id, _ = _create_tenant(engine)
    engine.dispose()  # its WAL connection would keep the load from changing the journal mode
    target = Target("SQLite", url, engine, tenant_id, timings)
    db = quiet_duckdb()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")  # the load only; the app's engine sets WAL again
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-1000000")
    con.execute("BEGIN")
    with _timed(timings, "insert dimensions"):
        for name, columns in (
            ("dim_location", "location_sk, source, location_key, name, timezone"),
            ("dim_product", "product_sk, source, product_key, name, category"),
            ("dim_customer", "customer_sk, source, customer_key, name"),
        ):
            rows = db.execute(
                f"SELECT {tenant_id}, {columns} FROM '{data.file(name)}'"  # noqa: S608
            ).fetchall()
            marks = ", ".join("?" * (columns.count(",") + 2))
            insert = f"INSERT INTO {name} (tenant_id, {columns}) VALUES ({marks})"  # noqa: S608
            con.executemany(insert, rows)
    with _timed(timings, "insert fact_sales"):
        # Stored as SQLAlchemy stores them on SQLite: ISO text dates, REAL numerics.
        cursor = db.execute(f"""
            SELECT strftime(sale_date, '%Y-%m-%d'), {tenant_id}, source, order_key, line_no,
                   strftime(order_ts, '%Y-%m-%d %H:%M:%S.000000'), hour, date_key, location_sk,
                   customer_sk, product_sk, quantity::DOUBLE, revenue::DOUBLE
            FROM '{data.file("fact_sales")}'
        """)  # noqa: S608
        insert = (
            "INSERT INTO fact_sales (sale_date, tenant_id, source, order_key, line_no, order_ts, "
            "hour, date_key, location_sk, customer_sk, product_sk, quantity, revenue) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        while rows := cursor.fetchmany(200_000):
            con.executemany(insert, rows)
    con.execute("COMMIT")
    con.close()
    refresh(target, data)
    with _timed(timings, "ANALYZE"), engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    return target


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    progress(f"  {name} ...")
    yield
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
    progress(f"  {name}: {time.perf_counter() - started:.1f} s")


def _statement_kind(statement: str) -> str:
    """A short name for a rollup statement: its verb and its table."""
    words = re.sub(r"\s+", " ", statement).strip()
    match = re.match(r"(INSERT INTO|DELETE FROM|UPDATE|SELECT)\s+([\w.\"]+)?", words)
    if not match:
        return words[:40]
    verb, table = match.groups()
    if verb == "SELECT":
        table = (re.search(r" FROM ([\w.\"]+)", words) or [None, "?"])[1]
    table = re.sub(r"^(gold|main)\.", "", table or "")
    return f"{verb.split()[0]} {table}"


def refresh(target: Target, data: Data) -> None:
    """Build every rollup for every day with the real code, timing each kind of statement."""
    from doorstep.analytics.warehouse import Loader

    spent: dict[str, list[float]] = defaultdict(list)
    started_at: list[float] = []

    def before(*_: Any) -> None:
        started_at.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        spent[_statement_kind(statement)].append(time.perf_counter() - started_at.pop())

    event.listen(target.engine, "before_cursor_execute", before)
    event.listen(target.engine, "after_cursor_execute", after)
    try:
        with _timed(target.load_seconds, "refresh rollups"), Session(target.engine) as session:
            Loader(session, target.tenant_id).refresh(data.days)
            session.commit()
    finally:
        event.remove(target.engine, "before_cursor_execute", before)
        event.remove(target.engine, "after_cursor_execute", after)
    target.refresh_statements = sorted(
        ((kind, len(times), sum(times)) for kind, times in spent.items()), key=lambda r: -r[2]
    )
    for kind, count, seconds in target.refresh_statements[:8]:
        progress(f"    {kind:<40} x{count:<5} {seconds:8.1f} s")


# --- the naive queries (no rollups) --------------------------------------------------------------

NAIVE: dict[str, str] = {
    "data_through": "SELECT max(f.sale_date) FROM fact_sales f WHERE f.tenant_id = :t",
    "kpis": """
        SELECT count(DISTINCT f.order_key), coalesce(sum(f.revenue), 0),
               count(DISTINCT f.customer_sk)
        FROM fact_sales f
        WHERE f.tenant_id = :t AND f.sale_date BETWEEN :s AND :e""",
    "kpis_previous": """
        SELECT count(DISTINCT f.order_key), coalesce(sum(f.revenue), 0),
               count(DISTINCT f.customer_sk)
        FROM fact_sales f
        WHERE f.tenant_id = :t AND f.sale_date BETWEEN :ps AND :pe""",
    "revenue_trend": """
        SELECT f.sale_date, sum(f.revenue), count(DISTINCT f.order_key)
        FROM fact_sales f
        WHERE f.tenant_id = :t AND f.sale_date BETWEEN :s AND :e
        GROUP BY f.sale_date ORDER BY f.sale_date""",
    "cohorts": """
        WITH firsts AS (
            SELECT f.customer_sk, min(f.sale_date) AS first_day
            FROM fact_sales f
            WHERE f.tenant_id = :t AND f.customer_sk IS NOT NULL
            GROUP BY f.customer_sk
        ), active AS (
            SELECT DISTINCT f.customer_sk, d.month_start
            FROM fact_sales f JOIN dim_date d ON d.date_key = f.date_key
            WHERE f.tenant_id = :t AND f.sale_date BETWEEN :ms AND :me
              AND f.customer_sk IS NOT NULL
        )
        SELECT fd.month_start, a.month_start, count(*)
        FROM active a
        JOIN firsts c ON c.customer_sk = a.customer_sk
        JOIN dim_date fd ON fd.day = c.first_day
        WHERE c.first_day BETWEEN :ms AND :me
        GROUP BY fd.month_start, a.month_start""",
    "clv_distribution": """
        WITH active AS (
            SELECT DISTINCT f.customer_sk
            FROM fact_sales f
            WHERE f.tenant_id = :t AND f.sale_date BETWEEN :s AND :e
              AND f.customer_sk IS NOT NULL
        ), lifetime AS (
            SELECT f.customer_sk, round(sum(f.revenue), 2) AS spend
            FROM fact_sales f
            WHERE f.tenant_id = :t AND f.sale_date <= :e
              AND f.customer_sk IN (SELECT customer_sk FROM active)
            GROUP BY f.customer_sk
        )
        SELECT CASE WHEN spend < 50 THEN '$0-50' WHEN spend < 100 THEN '$50-100'
                    WHEN spend < 250 THEN '$100-250' WHEN spend < 500 THEN '$250-500'
                    ELSE '$500+' END AS bucket, count(*)
        FROM lifetime GROUP BY 1""",
    "segments": """
        SELECT CASE WHEN n >= 10 THEN 'VIP (10+)' WHEN n >= 5 THEN 'Loyal (5-9)'
                    WHEN n >= 2 THEN 'Regular (2-4)' ELSE 'New (1)' END AS segment, count(*)
        FROM (
            SELECT f.customer_sk, count(DISTINCT f.order_key) AS n
            FROM fact_sales f
            WHERE f.tenant_id = :t AND f.sale_date BETWEEN :s AND :e
              AND f.customer_sk IS NOT NULL
            GROUP BY f.customer_sk
        ) per
        GROUP BY 1""",
    "top_products": """
        SELECT p.product_sk, p.name, sum(f.revenue) AS revenue, sum(f.quantity)
        FROM fact_sales f JOIN dim_product p ON p.product_sk = f.product_sk
        WHERE f.tenant_id = :t AND f.sale_date BETWEEN :s AND :e
        GROUP BY p.product_sk, p.name ORDER BY revenue DESC, p.name LIMIT 10""",
    "hourly": """
        SELECT f.hour, sum(f.revenue), count(DISTINCT f.order_key)
        FROM fact_sales f
        WHERE f.tenant_id = :t AND f.sale_date BETWEEN :s AND :e
        GROUP BY f.hour""",
    "weekly": """
        SELECT d.weekday, sum(f.revenue), count(DISTINCT f.order_key)
        FROM fact_sales f JOIN dim_date d ON d.date_key = f.date_key
        WHERE f.tenant_id = :t AND f.sale_date BETWEEN :s AND :e
        GROUP BY d.weekday""",
    "by_location": """
        SELECT l.location_sk, l.name, sum(f.revenue), count(DISTINCT f.order_key)
        FROM fact_sales f JOIN dim_location l ON l.location_sk = f.location_sk
        WHERE f.tenant_id = :t AND f.sale_date BETWEEN :s AND :e
        GROUP BY l.location_sk, l.name ORDER BY l.name""",
}


def naive_params(tenant_id: int, start: date, end: date) -> dict[str, Any]:
    from doorstep.analytics import rules

    previous = rules.Period(start, end, "").previous()
    last_month = end.replace(day=1)
    month_end = (last_month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return {
        "t": tenant_id,
        "s": start,
        "e": end,
        "ps": previous.start,
        "pe": previous.end,
        "ms": start.replace(day=1),
        "me": month_end - timedelta(days=1),
    }


Spent = dict[str, list[float]]


def naive_sqlalchemy(
    target: Target, params: dict[str, Any], spent: Spent
) -> dict[str, list[tuple[Any, ...]]]:
    if not target.postgres:  # SQLite keeps dates as ISO text
        params = {k: v.isoformat() if isinstance(v, date) else v for k, v in params.items()}
    out = {}
    with target.engine.connect() as connection:
        if target.postgres:
            connection.exec_driver_sql("SET search_path TO gold, public")
        for name, sql in NAIVE.items():
            started = time.perf_counter()
            out[name] = [tuple(row) for row in connection.execute(text(sql), params)]
            spent[name].append((time.perf_counter() - started) * 1000)
        connection.rollback()
    return out


def duckdb_reference(data: Data, tenant_id: int) -> duckdb.DuckDBPyConnection:
    db = quiet_duckdb()
    for name in NAIVE_TABLES:
        extra = "" if name == "dim_date" else f"{tenant_id}::INTEGER AS tenant_id, "
        db.execute(f"CREATE TABLE {name} AS SELECT {extra}* FROM '{data.file(name)}'")  # noqa: S608
    return db


def naive_duckdb(
    db: duckdb.DuckDBPyConnection, params: dict[str, Any], spent: Spent
) -> dict[str, list[Any]]:
    out = {}
    for name, sql in NAIVE.items():
        used = {k: v for k, v in params.items() if f":{k}" in sql}
        started = time.perf_counter()
        out[name] = db.execute(re.sub(r":(\w+)", r"$\1", sql), used).fetchall()
        spent[name].append((time.perf_counter() - started) * 1000)
    return out


# --- comparing the figures -----------------------------------------------------------------------


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def figures_of_service(board: dict[str, Any]) -> dict[str, Any]:
    k = board["kpis"]
    cohort = board["cohorts"]
    cells = {
        (str(row["cohort"])[:10], str(month)[:10]): value
        for row in cohort["rows"]
        for month, value in zip(cohort["months"], row["values"], strict=True)
        if value is not None
    }
    return {
        "orders": (k["orders"]["value"], k["orders"]["previous"]),
        "revenue": (_money(k["revenue"]["value"]), _money(k["revenue"]["previous"])),
        "customers": (k["customers"]["value"], k["customers"]["previous"]),
        "trend": sorted((str(r["date"]), _money(r["revenue"])) for r in board["revenue_trend"]),
        "segments": {s["segment"]: s["customers"] for s in board["segments"] if s["customers"]},
        "clv": {b["bucket"]: b["customers"] for b in board["clv_distribution"] if b["customers"]},
        "top_products": [(p["product"], _money(p["revenue"])) for p in board["top_products"]],
        "hourly": {h["hour"]: _money(h["revenue"]) for h in board["hourly"] if h["orders"]},
        "weekly": {w["weekday"]: _money(w["revenue"]) for w in board["weekly"] if w["orders"]},
        "by_location": [(r["location"], _money(r["revenue"])) for r in board["by_location"]],
        "cohorts": cells,
    }


def figures_of_naive(raw: dict[str, list[Any]]) -> dict[str, Any]:
    (now,), (before,) = raw["kpis"], raw["kpis_previous"]
    active = {(str(c)[:10], str(m)[:10]): n for c, m, n in raw["cohorts"]}
    months = sorted({m for _, m in active})
    sizes = {c: n for (c, m), n in active.items() if c == m}
    cells = {
        (c, m): round(100 * active.get((c, m), 0) / size, 1)
        for c, size in sizes.items()
        for m in months
        if m >= c
    }
    return {
        "orders": (now[0], before[0]),
        "revenue": (_money(now[1]), _money(before[1])),
        "customers": (now[2], before[2]),
        "trend": sorted((str(d)[:10], _money(r)) for d, r, _ in raw["revenue_trend"]),
        "segments": dict(raw["segments"]),
        "clv": dict(raw["clv_distribution"]),
        "top_products": [(name, _money(r)) for _, name, r, _ in raw["top_products"]],
        "hourly": {h: _money(r) for h, r, _ in raw["hourly"]},
        "weekly": {d: _money(r) for d, r, _ in raw["weekly"]},
        "by_location": [(name, _money(r)) for _, name, r, _ in raw["by_location"]],
        "cohorts": cells if len(months) > 1 else {},
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [key for key in a if a[key] != b.get(key)]


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Row:
    target: str
    scenario: str
    range: str
    times: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def p95(self) -> float:
        return percentile(self.times, 95)


def timed(fn: Callable[[], Any], reps: int, warmup: int) -> tuple[list[float], Any]:
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def periods(data: Data) -> list[tuple[str, date, date]]:
    return [
        (label, data.first if days is None else data.last - timedelta(days=days - 1), data.last)
        for label, days in RANGES
    ]


def measure(
    target: Target,
    data: Data,
    args: argparse.Namespace,
    duck: duckdb.DuckDBPyConnection | None,
    rows: list[Row],
    panels: dict[tuple[str, str], dict[str, float]],
    naive_panels: dict[tuple[str, str], dict[str, float]],
    notes: list[str],
) -> None:
    from doorstep.analytics import rules, service

    def dashboard(f: service.Filters, only: set[str] | None = None) -> dict[str, Any]:
        with Session(target.engine) as session:
            return service.dashboard(session, f, only=only)

    client, headers = http_client(target)
    try:
        for label, start, end in periods(data):
            f = service.Filters(target.tenant_id, rules.Period(start, end, label))
            progress(f"{target.name} {label}: service x{args.reps}")
            times, board = timed(lambda f=f: dashboard(f), args.reps, args.warmup)
            if board["errors"]:
                notes.append(f"{target.name} {label}: panel errors {board['errors']}")
            rows.append(Row(target.name, "service", label, times))
            for name in [*service.PANELS, "insights"]:
                only_times, _ = timed(
                    lambda f=f, name=name: dashboard(f, {name}), args.panel_reps, 1
                )
                panels[(target.name, label)][name] = statistics.median(only_times)
            if client is not None:
                progress(f"{target.name} {label}: HTTP x{args.http_reps}")
                query = {"start": start.isoformat(), "end": end.isoformat()}

                def get(query: dict[str, str] = query) -> Any:
                    response = client.get("/api/analytics/dashboard", params=query, headers=headers)
                    response.raise_for_status()
                    return response

                times, _ = timed(get, args.http_reps, 1)
                rows.append(Row(target.name, "http", label, times))
            params = naive_params(target.tenant_id, start, end)
            if args.naive_reps:
                progress(f"{target.name} {label}: naive SQL x{args.naive_reps}")
                spent: Spent = defaultdict(list)
                times, raw = timed(
                    lambda p=params, spent=spent: naive_sqlalchemy(target, p, spent),
                    args.naive_reps,
                    1,
                )
                naive_panels[(target.name, label)] = {
                    k: statistics.median(v) for k, v in spent.items()
                }
                rows.append(Row(target.name, "naive", label, times))
                wrong = differences(figures_of_service(board), figures_of_naive(raw))
                notes.append(
                    f"{target.name} {label}: naive SQL and service "
                    + (f"DIFFER in {wrong}" if wrong else "agree on every figure")
                )
            if duck is not None and target.postgres == args.duckdb_with_postgres:
                progress(f"DuckDB {label}: naive SQL x{args.naive_reps or args.reps}")
                spent = defaultdict(list)
                times, raw = timed(
                    lambda p=params, spent=spent: naive_duckdb(duck, p, spent),
                    args.naive_reps or args.reps,
                    1,
                )
                naive_panels[("DuckDB", label)] = {
                    k: statistics.median(v) for k, v in spent.items()
                }
                rows.append(Row("DuckDB", "naive", label, times))
                wrong = differences(figures_of_service(board), figures_of_naive(raw))
                notes.append(
                    f"DuckDB {label}: naive SQL and {target.name} service "
                    + (f"DIFFER in {wrong}" if wrong else "agree on every figure")
                )
    finally:
        if client is not None:
            client.__exit__(None, None, None)


def http_client(target: Target) -> tuple[Any, dict[str, str]]:
    """A TestClient on the app over the same database, signed in as the tenant's analyst."""
    from fastapi.testclient import TestClient

    from doorstep.app import create_app
    from doorstep.config import Settings

    settings = Settings(
        database_url=target.url,
        secret_key="bench-analytics-secret-key-0123456789",  # noqa: S106 - a throwaway app
        access_token_minutes=240,
        jobs_path=str(CACHE / "jobs.db"),
        run_jobs_in_server=False,
        log_level="WARNING",
    )
    client = TestClient(create_app(settings)).__enter__()
    response = client.post(
        "/api/auth/token",
        data={"username": "analyst@bench-cafe.test", "password": PASSWORD},
    )
    response.raise_for_status()
    return client, {"Authorization": f"Bearer {response.json()['access_token']}"}


# --- the report ----------------------------------------------------------------------------------


def report(
    data: Data,
    targets: list[Target],
    rows: list[Row],
    panels: dict[tuple[str, str], dict[str, float]],
    naive_panels: dict[tuple[str, str], dict[str, float]],
    notes: list[str],
    args: argparse.Namespace,
    busy: float,
) -> None:
    m = data.meta
    print()
    print(
        f"data: {m['orders']:,} orders, {m['lines']:,} lines, {m['customers']:,} customers "
        f"({m['identified_orders'] / m['orders']:.0%} of orders identified), "
        f"{m['first']} to {m['last']}; scale {m['scale']}, seed {m['seed']}"
    )
    print(
        f"machine: {os.cpu_count()} cores, {busy:.0%} of CPU busy just before the run; "
        f"{source_state()}; Python {sys.version.split()[0]}, DuckDB {duckdb.__version__}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    for target in targets:
        loads = ", ".join(f"{k} {v:.1f} s" for k, v in target.load_seconds.items())
        print(f"{target.name} load: {loads}")
        for kind, count, seconds in target.refresh_statements[:6]:
            print(f"    refresh {kind:<36} x{count:<5} {seconds:8.1f} s")
    print()
    labels = [label for label, _ in RANGES]
    header = f"{'database':<11} {'scenario':<8}" + "".join(
        f" {label + ' p50':>11} {label + ' p95':>11}" for label in labels
    )
    print(header + "     n")
    print("-" * len(header) + "------")
    order = {"service": 0, "http": 1, "naive": 2}
    keys = sorted(
        {(r.target, r.scenario) for r in rows},
        key=lambda k: (k[0] == "DuckDB", k[0], order.get(k[1], 9)),
    )
    for target_name, scenario in keys:
        cells = {r.range: r for r in rows if (r.target, r.scenario) == (target_name, scenario)}
        line = f"{target_name:<11} {scenario:<8}"
        for label in labels:
            r = cells.get(label)
            line += f" {r.p50:11.1f} {r.p95:11.1f}" if r else f" {'-':>11} {'-':>11}"
        n = max((len(r.times) for r in cells.values()), default=0)
        print(f"{line} {n:5d}")
    print()
    for title, found in (
        ("service, one panel at a time (only={name}), p50 ms:", panels),
        ("naive SQL, per query, p50 ms:", naive_panels),
    ):
        if not found:
            continue
        print(title)
        names = list(next(iter(found.values())))
        print(f"{'':<16}" + "".join(f" {n[:10]:>10}" for n in names))
        for (target_name, label), times in found.items():
            line = "".join(f" {times.get(n, float('nan')):10.1f}" for n in names)
            print(f"{target_name + ' ' + label:<16}{line}")
        print()
    for target_name in {r.target for r in rows if r.scenario == "service"}:
        worst = max(r.p95 for r in rows if (r.target, r.scenario) == (target_name, "service"))
        met = "met" if worst < args.aim else "MISSED"
        print(f"aim (service p95 < {args.aim:.0f} ms) on {target_name}: {met} (worst {worst:.0f})")
    for note in notes:
        print(note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 3,000 orders a day")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=20, help="timed dashboards per range")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--panel-reps", type=int, default=5, help="per panel (only={name})")
    parser.add_argument("--http-reps", type=int, default=5)
    parser.add_argument("--naive-reps", type=int, default=5, help="0 skips the naive SQL")
    parser.add_argument("--only", choices=("postgres", "sqlite"), default=None)
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure the kept databases")
    parser.add_argument("--aim", type=float, default=300.0)
    args = parser.parse_args()
    args.duckdb_with_postgres = args.only != "sqlite"
    exit_cleanly_on_sigterm()  # the databases are dropped on Ctrl-C and SIGTERM too
    os.environ.setdefault("DOORSTEP_LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT / "src"))
    data = generate(args.scale, args.seed)
    before = machine_busy()
    time.sleep(2)
    busy = machine_busy(before)[0]  # other processes' CPU just before the run
    targets: list[Target] = []
    rows: list[Row] = []
    panels: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    naive_panels: dict[tuple[str, str], dict[str, float]] = {}
    notes: list[str] = []
    duck = None
    if not args.no_duckdb:
        progress("DuckDB: loading the Parquet cache into memory")
        duck = duckdb_reference(data, 1)
    try:
        for name, setup in (("postgres", setup_postgres), ("sqlite", setup_sqlite)):
            if args.only not in (None, name):
                continue
            progress(f"== {name}: fresh database, bulk load, rollups ==")
            target = reuse(name) if args.reuse else setup(data)
            targets.append(target)
            if duck is not None and target.tenant_id != 1:
                duck.execute("UPDATE fact_sales SET tenant_id = ?", [target.tenant_id])
            measure(target, data, args, duck, rows, panels, naive_panels, notes)
    finally:
        for target in targets:
            target.engine.dispose()
        if not args.keep:
            drop(targets)
    report(data, targets, rows, panels, naive_panels, notes, args, busy)
    return 0


def reuse(name: str) -> Target:
    from doorstep.platform.db import make_engine

    if name == "postgres":
        url = (
            make_url(POSTGRES)
            .set(drivername="postgresql+psycopg", database=DATABASE)
            .render_as_string(hide_password=False)
        )
    else:
        url = f"sqlite:///{CACHE / 'bench_analytics.db'}"
    engine = make_engine(url, pool_size=2)
    with engine.connect() as connection:
        tenant_id = connection.execute(
            text("SELECT id FROM tenants WHERE slug = 'bench-cafe'")
        ).scalar_one()
    return Target("PostgreSQL" if name == "postgres" else "SQLite", url, engine, tenant_id)


def drop(targets: list[Target]) -> None:
    for target in targets:
        if target.postgres:
            with psycopg.connect(_admin_conninfo(), autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        else:
            path = CACHE / "bench_analytics.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
