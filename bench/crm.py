"""CRM (issue 5): the leads table over ~40,000 leads, a 1,500-lead Kanban, an assignment decision.

A fresh PostgreSQL database with Redis (production mode) gets the full demo data from the CLI
(`doorstep seed-demo`: 40 agents with ~1,000 leads each, Cole Rangel with 1,500, the broker's
87). Then, in the same run, beside references measured the same way:

* in-process, over a warm connection pool (one session per call): `service.board(...)` for
  Cole's 1,500 leads (aim: under 200 ms), `service.decide_assignment(db, lead)` (aim: under
  20 ms), and `service.list_leads(...)` (the table's query); reference: a bare `SELECT 1`;
* over HTTP, gunicorn with uvicorn workers driven by wrk: `GET /api/leads/?page_size=50` with
  filters and sorting as the admin (all ~40,000 leads) and as an agent (aim: p95 under 50 ms),
  the HTML table `/crm/leads` (session cookie), `GET /api/leads/board` for Cole; references:
  `GET /healthz` and `GET /api/auth/me` on the same server.

The aims are printed beside the figures; the script never passes or fails on timing.
`--explain` prints EXPLAIN ANALYZE of the table's and the board's queries. Results:
docs/performance.md.

    .venv/bin/python bench/crm.py                 # 10 s per HTTP row, 300 in-process runs
    .venv/bin/python bench/crm.py --quick         # 3 s rows, 100 runs
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from transactions_site import (
    DEMO_PASSWORD,
    exit_cleanly_on_sigterm,
    free_port,
    fresh_site,
    gunicorn_command,
    percentile,
    progress,
    run_wrk,
    serving,
    sign_in,
    source_state,
)

ADMIN = "admin@doorstep.demo"
AGENT = "agent@doorstep.demo"  # Jayden Metz, ~1,000 leads
BIG_BOARD = "agent2@doorstep.demo"  # Cole Rangel, 1,500 leads
FILTERED = "page_size=50&stage=lead&heat=hot&ordering=-heat_score"
SEARCHED = "page_size=50&search=martinez&source=zillow_paid&ordering=-created_at"


@dataclass(frozen=True)
class Row:
    label: str
    aim_ms: float | None  # None: a reference
    p50_ms: float
    p95_ms: float
    extra: str = ""

    def line(self) -> str:
        aim = ""
        if self.aim_ms is not None:
            aim = f"p95 < {self.aim_ms:g}: {'yes' if self.p95_ms < self.aim_ms else 'NO'}"
        return f"{self.label:<66} {self.extra:>14} {self.p50_ms:>8.2f} {self.p95_ms:>8.2f}  {aim}"


def timed(runs: int, call: Callable[[], Any]) -> tuple[float, float]:
    """Median and p95 in ms of `runs` calls after a few unmeasured ones."""
    for _ in range(min(5, runs)):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), percentile(samples, 95)


def in_process(database_url: str, runs: int, explain: bool) -> tuple[list[Row], dict[str, Any]]:
    import doorstep.app  # noqa: F401 - registers every module's tables and policies
    from doorstep.crm import service
    from doorstep.crm.models import Lead
    from doorstep.platform.auth import Principal, User
    from doorstep.platform.db import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    factory = make_sessionmaker(engine)
    facts: dict[str, Any] = {}
    with factory() as db:
        users = {u.email: u for u in db.scalars(select(User))}
        admin, agent, cole = (Principal.of(users[e]) for e in (ADMIN, AGENT, BIG_BOARD))
        facts["leads"] = db.scalar(select(func.count()).select_from(Lead))
        facts["cole_leads"] = db.scalar(select(func.count()).where(Lead.agent_id == cole.user_id))
        facts["cole_open"] = sum(len(c.leads) for c in service.board(db, principal=cole)[:5])
        facts["server"] = db.scalar(text("SHOW server_version"))
    tenant_id = admin.tenant_id
    filters = service.LeadFilter(stage=["lead"], heat=["hot"])

    def fresh(call: Callable[[Session], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with factory() as db:
                return call(db)

        return run

    def board(db: Session) -> Any:
        return service.board(db, principal=cole)

    def decide(db: Session) -> Any:
        lead = Lead(
            tenant_id=tenant_id, source="website", budget=Decimal(450_000), zip_code="93309"
        )
        return service.decide_assignment(db, lead)

    def select_one(db: Session) -> Any:
        return db.execute(text("SELECT 1")).scalar()

    def table(principal: Any) -> Callable[[Session], Any]:
        return lambda db: service.list_leads(
            db, principal=principal, filters=filters, sort="-heat_score"
        )

    board_runs = max(30, runs // 5)
    rows = [
        Row("SELECT 1 (reference: a bare round trip, new session)", None,
            *timed(runs, fresh(select_one))),
        Row(f"service.board(): Cole's {facts['cole_leads']:,} leads", 200.0,
            *timed(board_runs, fresh(board)), extra=f"{facts['cole_open']} open cards"),
        Row("service.decide_assignment(db, lead): 40 agents", 20.0, *timed(runs, fresh(decide))),
        Row("service.list_leads(): admin, stage=lead&heat=hot, -heat_score", 50.0,
            *timed(runs, fresh(table(admin)))),
        Row("service.list_leads(): agent, stage=lead&heat=hot, -heat_score", 50.0,
            *timed(runs, fresh(table(agent)))),
    ]  # fmt: skip
    if explain:
        with factory() as db:
            _explain(db, service, admin, cole, filters)
    engine.dispose()
    return rows, facts


def _explain(db: Session, service: Any, admin: Any, cole: Any, filters: Any) -> None:
    from doorstep.crm.models import Lead
    from doorstep.platform.access import readable

    stmt = service.lead_query(admin, filters)
    page = stmt.order_by(Lead.heat_score.desc(), Lead.id).limit(50)
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    opened = service.sales_rules(db, cole.tenant_id).open_stages()
    board = readable(select(Lead), cole).where(Lead.agent_id == cole.user_id)
    queries = {
        "leads table page (admin)": page,
        "leads table count (admin)": count,
        "board open cards (Cole)": board.where(Lead.stage.in_(opened)).order_by(
            Lead.stage, Lead.position, Lead.stage_entered_at.desc(), Lead.id
        ),
    }
    for label, query in queries.items():
        compiled = query.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
        plan = db.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars().all()
        print(f"\n-- EXPLAIN ANALYZE: {label}")
        print("\n".join(plan))


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def web_cookie(url: str, email: str) -> str:
    """Sign in through the login form; the session's Cookie header for wrk."""
    with httpx.Client(base_url=url, timeout=30) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "the login page has no CSRF field"
        response = client.post(
            "/login",
            data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token.group(1)},
        )
        if response.status_code >= 400:
            raise RuntimeError(f"web login failed: {response.status_code}")
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per HTTP row")
    parser.add_argument("--runs", type=int, default=300, help="in-process calls per figure")
    parser.add_argument("--quick", action="store_true", help="3 s rows, 100 runs")
    parser.add_argument("--connections", default="1,8", help="wrk connection counts")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn -w")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE plans")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    if args.quick:
        args.duration, args.runs = 3.0, 100
    connections = [int(c) for c in args.connections.split(",") if c.strip()]
    warmup = 1.0 if args.quick else 2.0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    http: list[tuple[str, float | None, int, Any]] = []
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-crm-") as tmp:
        progress("a fresh PostgreSQL database with the full demo data (doorstep seed-demo) ...")
        setup = time.perf_counter()
        with fresh_site(Path(tmp), production=True, label="crm") as site:
            seeded_in = time.perf_counter() - setup
            # The steady state autovacuum reaches on its own after a bulk load: statistics and
            # the visibility map (index-only scans) are up to date.
            with psycopg.connect(_plain(site.database_url), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            progress(f"... ready in {seeded_in:.0f} s; in-process figures ...")
            rows, facts = in_process(site.database_url, args.runs, args.explain)
            port = free_port()
            with serving(gunicorn_command(port, args.workers), port, env=site.env,
                         workdir=site.workdir) as server:  # fmt: skip
                url = str(getattr(server, "url", server))  # a Server, or its URL
                tokens = {e: sign_in(url, e) for e in (ADMIN, AGENT, BIG_BOARD)}
                bearer = {e: {"Authorization": f"Bearer {t}"} for e, t in tokens.items()}
                cookie = {"Cookie": web_cookie(url, ADMIN)}
                total = httpx.get(f"{url}/api/leads/?page_size=1", headers=bearer[ADMIN],
                                  timeout=30).json()["count"]  # fmt: skip
                plan: list[tuple[str, float | None, str, dict[str, str], int | None]] = [
                    ("GET /healthz (reference: bare endpoint)", None, "/healthz", {}, None),
                    ("GET /api/auth/me (reference: auth floor)", None, "/api/auth/me",
                     bearer[ADMIN], None),
                    (f"GET /api/leads/?{FILTERED} (admin)", 50.0, f"/api/leads/?{FILTERED}",
                     bearer[ADMIN], None),
                    (f"GET /api/leads/?{FILTERED} (agent)", 50.0, f"/api/leads/?{FILTERED}",
                     bearer[AGENT], None),
                    ("GET /api/leads/?page_size=50 (admin, newest first)", 50.0,
                     "/api/leads/?page_size=50", bearer[ADMIN], None),
                    (f"GET /api/leads/?{SEARCHED} (admin)", 50.0, f"/api/leads/?{SEARCHED}",
                     bearer[ADMIN], None),
                    ("GET /crm/leads?stage=lead&heat=hot&sort=-heat_score (admin, HTML)", 50.0,
                     "/crm/leads?stage=lead&heat=hot&sort=-heat_score", cookie, None),
                    ("GET /api/leads/board (Cole, 1,500 leads)", 200.0, "/api/leads/board",
                     bearer[BIG_BOARD], 1),
                ]  # fmt: skip
                for _label, _aim, path, headers, _ in plan:
                    response = httpx.get(url + path, headers=headers, timeout=60)
                    response.raise_for_status()
                for conns in connections:
                    for label, aim, path, headers, only in plan:
                        if only is not None and conns != only:
                            continue
                        progress(f"{conns} connection(s): {label} ...")
                        for seconds in (warmup, args.duration):  # the first is the warm-up
                            load = run_wrk(url, [path], connections=conns, duration=seconds,
                                           headers=headers, workdir=site.workdir)  # fmt: skip
                        http.append((label, aim, conns, load))
    load_after = os.getloadavg()
    print(
        f"CRM, {started:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPU cores ({platform.machine()}, "
        f"Python {platform.python_version()}); production (PostgreSQL {facts['server']} + "
        f"Redis); {source_state()}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after"
    )
    print(
        f"Data: the full demo, {facts['leads']:,} leads ({total:,} visible to the admin); "
        f"Cole Rangel {facts['cole_leads']:,} leads; database created, migrated and seeded "
        f"by the CLI in {seeded_in:.0f} s."
    )
    print(
        f"\nIn process, one session per call ({args.runs} calls; "
        f"the board {max(30, args.runs // 5)}):"
    )
    header = f"{'what':<66} {'':>14} {'p50 ms':>8} {'p95 ms':>8}  aim"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row.line())
    print(
        f"\nHTTP: gunicorn, {args.workers} uvicorn workers; wrk, {args.duration:g} s per row "
        f"after {warmup:g} s warm-up."
    )
    header = (
        f"{'endpoint':<76} {'conns':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}  aim"
    )
    print(header)
    print("-" * len(header))
    for label, aim, conns, load in http:
        verdict = ""
        if aim is not None:
            verdict = f"p95 < {aim:g}: {'yes' if load.p95_ms < aim else 'NO'}"
        print(
            f"{label:<76} {conns:>5} {load.rps:>7.0f} {load.p50_ms:>7.1f} "
            f"{load.p95_ms:>7.1f} {load.p99_ms:>7.1f}  {verdict}"
        )


if __name__ == "__main__":
    main()
