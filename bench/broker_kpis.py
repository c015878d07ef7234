"""Broker KPIs (issue 6): `GET /api/broker/agents/kpis?period=30d`.

Two runs on PostgreSQL, each served by uvicorn (one process) and hit by one client, one request
at a time (the broker opens his dashboard; this is service time, not throughput):

* **demo**: the full demo data (40 agents with about 1,000 leads each). Aim: p95 under 50 ms.
* **large**: a generated brokerage of 1,000 agents under one broker with 2,000,000 leads,
  500,000 appointments, 100,000 escrows, 50,000 clients and 20,000 listings. Aim: p95 under
  300 ms. In the same run, seed 004's literal SQL (its three queries, with Doorstep's table
  names) is timed over psycopg, and its numbers are compared with Doorstep's: how many agents
  each query returns and for how many agents its figures differ.

A reference in the same run: `GET /healthz` through the same server. Results:
docs/performance.md. The script never passes or fails on timing.

    .venv/bin/python bench/broker_kpis.py            # both runs
    .venv/bin/python bench/broker_kpis.py --skip-demo --requests 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from transactions_site import (
    exit_cleanly_on_sigterm,
    free_port,
    fresh_site,
    percentile,
    progress,
    serving,
    sign_in,
)

from doorstep.crm import tallies
from doorstep.platform.db import make_engine

BROKER = "broker@doorstep.demo"
URL = "/api/broker/agents/kpis?period=30d"

SEED_LEADS = """
SELECT u.full_name AS agent_name, COUNT(l.id) AS total_leads,
  COUNT(CASE WHEN l.created_at >= NOW() - INTERVAL '30 days' THEN 1 END) AS new_leads_30d,
  COUNT(CASE WHEN l.stage = 'closed_won' THEN 1 END) AS converted_leads,
  ROUND(COUNT(CASE WHEN l.stage = 'closed_won' THEN 1 END)::numeric
        / NULLIF(COUNT(l.id), 0) * 100, 2) AS conversion_rate_pct, u.id
FROM users u
LEFT JOIN leads l ON l.agent_id = u.id AND l.is_private = FALSE
WHERE u.broker_id = %(broker)s AND u.role = 'agent'
GROUP BY u.id, u.full_name ORDER BY total_leads DESC
"""
SEED_APPOINTMENTS = """
SELECT u.full_name AS agent_name, COUNT(a.id) AS total_appointments,
  COUNT(CASE WHEN a.status = 'completed' THEN 1 END) AS completed,
  COUNT(CASE WHEN a.status = 'no_show' THEN 1 END) AS no_shows,
  ROUND(COUNT(CASE WHEN a.status = 'completed' THEN 1 END)::numeric
        / NULLIF(COUNT(a.id), 0) * 100, 1) AS show_rate_pct, u.id
FROM users u
LEFT JOIN appointments a ON a.agent_id = u.id
WHERE u.broker_id = %(broker)s AND u.role = 'agent'
  AND a.start_time >= NOW() - INTERVAL '30 days'
GROUP BY u.id, u.full_name ORDER BY total_appointments DESC
"""
SEED_PRODUCTION = """
SELECT u.full_name AS agent_name, COUNT(DISTINCT e.id) AS total_escrows,
  COUNT(DISTINCT c.id) AS total_clients, COUNT(DISTINCT l.id) AS active_listings,
  COALESCE(SUM(e.purchase_price), 0) AS total_volume,
  COALESCE(SUM(e.my_commission), 0) AS total_commission, u.id
FROM users u
LEFT JOIN real_estate_transactions e ON e.agent_id = u.id
  AND e.escrow_status IN ('Active', 'Pending', 'Closed')
LEFT JOIN clients c ON c.agent_id = u.id AND c.status = 'active'
LEFT JOIN properties l ON l.listing_agent_id = u.id AND l.status = 'active'
WHERE u.broker_id = %(broker)s AND u.role = 'agent'
  AND e.created_at >= DATE_TRUNC('year', NOW())
GROUP BY u.id, u.full_name ORDER BY total_volume DESC
"""

# 1,000 agents; leads, appointments, escrows, clients and listings spread over them, with
# dates over the last 400 days, in plain SQL (generate_series) so that 2.7M rows take seconds.
# VACUUM, not only ANALYZE: a live table has been vacuumed by autovacuum, and index-only scans
# need its visibility map; measured right after the bulk insert (before autovacuum has come by)
# every index-only scan would fetch every heap page as well.
LARGE = """
INSERT INTO users (tenant_id, email, full_name, role, broker_id, password_hash, is_active,
                   created_at, updated_at)
SELECT %(tenant)s, 'bench-agent-' || g || '@large.bench', 'Agent ' || g, 'agent', %(broker)s,
       %(hash)s, true, now(), now()
FROM generate_series(1, 1000) g;

CREATE TEMP TABLE bench_agents AS
SELECT id, row_number() OVER (ORDER BY id) AS n FROM users WHERE broker_id = %(broker)s;

INSERT INTO leads (tenant_id, agent_id, name, email, phone, source, is_private, stage,
                   stage_entered_at, position, heat_score, heat, interaction_count, notes,
                   created_at, updated_at)
SELECT %(tenant)s, a.id, 'Lead ' || g, 'lead' || g || '@x.bench', '+1555' || g, 'website',
       (g %% 10 = 0),
       (ARRAY['lead','needs_analysis','offer_sent','negotiation','contract_signed',
              'closed_won','closed_lost'])[1 + (g %% 7)],
       now(), 0, 40, 'warm', 0, '', t, t
FROM generate_series(1, 2000000) g
JOIN bench_agents a ON a.n = 1 + (g %% 1000)
CROSS JOIN LATERAL (SELECT now() - ((g::bigint * 7919) %% 400) * interval '1 day') d(t);

INSERT INTO appointments (tenant_id, agent_id, title, start_time, end_time, location, status,
                          is_private, outcome, created_at, updated_at)
SELECT %(tenant)s, a.id, 'Visit ' || g, t, t + interval '1 hour', 'Somewhere',
       (ARRAY['scheduled','completed','completed','no_show','cancelled'])[1 + (g %% 5)],
       true, '', t, t
FROM generate_series(1, 500000) g
JOIN bench_agents a ON a.n = 1 + (g %% 1000)
CROSS JOIN LATERAL (SELECT now() - ((g::bigint * 104729) %% 400 - 30) * interval '1 day') d(t);

INSERT INTO real_estate_transactions (tenant_id, transaction_id, agent_id, property_address,
    property_city, property_state, property_zip, property_type, buyer_name, purchase_price,
    down_payment, loan_type, my_commission, escrow_status, contract_date, target_closing_date,
    progress_percentage, health_score, health_factors, stakeholders, delay_count,
    last_communication_at, notes, created_at, updated_at)
SELECT %(tenant)s, 'BENCH-' || g, a.id, g || ' Main St', 'Bakersfield', 'CA', '93301',
       'residential', 'Buyer ' || g, 200000 + (g %% 700) * 1000, 0, 'conventional',
       6000 + (g %% 700) * 30,
       (ARRAY['Active','Pending','Closed','Cancelled'])[1 + (g %% 4)], t::date,
       t::date + 45, 50, 80, '{}', '{}', 0, t, '', t, t
FROM generate_series(1, 100000) g
JOIN bench_agents a ON a.n = 1 + (g %% 1000)
CROSS JOIN LATERAL (SELECT now() - ((g::bigint * 31) %% 400) * interval '1 day') d(t);

INSERT INTO clients (tenant_id, agent_id, name, source, status, notes, created_at, updated_at)
SELECT %(tenant)s, a.id, 'Client ' || g, 'referral',
       CASE WHEN g %% 4 = 0 THEN 'inactive' ELSE 'active' END, '', now(), now()
FROM generate_series(1, 50000) g JOIN bench_agents a ON a.n = 1 + (g %% 1000);

INSERT INTO properties (tenant_id, listing_agent_id, property_type, status, title, description,
                        address, city, state, zip_code, price, attributes, features,
                        status_reason, status_changed_at, created_at, updated_at)
SELECT %(tenant)s, a.id, 'land', CASE WHEN g %% 3 = 0 THEN 'sold' ELSE 'active' END,
       'Lot ' || g, '', g || ' Field Rd', 'Bakersfield', 'CA', '93301', 150000,
       '{"acreage": 1}', '[]', '', now(), now(), now()
FROM generate_series(1, 20000) g JOIN bench_agents a ON a.n = 1 + (g %% 1000);
VACUUM ANALYZE;
"""


def conninfo(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def timed_get(client: httpx.Client, url: str, headers: dict[str, str], n: int) -> list[float]:
    client.get(url, headers=headers).raise_for_status()  # warm-up
    times = []
    for _ in range(n):
        start = time.perf_counter()
        client.get(url, headers=headers).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return times


def row(label: str, times: list[float], aim: float | None = None) -> str:
    p50, p95 = percentile(times, 50), percentile(times, 95)
    verdict = "" if aim is None else ("  met" if p95 < aim else "  MISSED")
    aim_text = "" if aim is None else f"  (aim p95 < {aim:.0f} ms){verdict}"
    return f"{label:<58} n={len(times):<4} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms{aim_text}"


def measure(
    site: Any, label: str, requests: int, aim: float
) -> tuple[list[str], list[dict[str, Any]]]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "doorstep.app:create_app", "--factory",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    with serving(argv, port, env=site.env, workdir=site.workdir) as url:
        token = sign_in(url, BROKER)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=120) as client:
            ours = client.get(URL, headers=headers).json()["agents"]
            lines = [
                row(
                    f"{label}: GET /healthz (reference)",
                    timed_get(client, "/healthz", {}, requests),
                ),
                row(f"{label}: GET {URL}", timed_get(client, URL, headers, requests), aim),
            ]
    return lines, ours


def seed_sql(site: Any, broker_id: int, ours: list[dict[str, Any]], runs: int) -> list[str]:
    by_id = {a["agent_id"]: a for a in ours}
    lines = []
    with psycopg.connect(conninfo(site.database_url)) as conn:
        for name, query, compare in (
            ("leads", SEED_LEADS, ("total_leads", "new_leads_30d", "converted_leads")),
            (
                "appointments",
                SEED_APPOINTMENTS,
                ("appointments", "completed_appointments", "no_shows"),
            ),
            ("production", SEED_PRODUCTION, ("ytd_escrows", "active_clients", "active_listings")),
        ):
            times, result = [], []
            for _ in range(runs):
                start = time.perf_counter()
                result = conn.execute(query, {"broker": broker_id}).fetchall()
                times.append((time.perf_counter() - start) * 1000)
            differ = 0
            for rec in result:
                mine = by_id.get(rec[-1])
                theirs = rec[1:4]
                if mine is None or tuple(mine[c] for c in compare) != tuple(theirs):
                    differ += 1
            lines.append(
                row(f"seed 004 literal SQL: {name}", times)
                + f"\n{'':<58} returns {len(result)} of {len(ours)} agents; "
                f"figures differ from Doorstep's for {differ} of them"
            )
    return lines


def large_site(site: Any) -> int:
    with psycopg.connect(conninfo(site.database_url), autocommit=True) as conn:
        tenant, broker, hashed = conn.execute(
            "SELECT tenant_id, id, password_hash FROM users WHERE email = %s", (BROKER,)
        ).fetchone()  # type: ignore[misc]
        started = time.perf_counter()
        params = {"tenant": tenant, "broker": broker, "hash": hashed}
        for statement in (part.strip() for part in LARGE.split(";\n")):
            if statement:
                conn.execute(statement, params if "%(" in statement else None)  # type: ignore[arg-type]
        progress(f"generated the large brokerage in {time.perf_counter() - started:.0f} s")
    # The leads went in without the ORM: count them once, as a bulk import would.
    with Session(make_engine(site.database_url)) as db:
        tallies.rebuild(db, tenant_id=int(tenant))
        db.commit()
    with psycopg.connect(conninfo(site.database_url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE lead_stage_counts")
        return int(broker)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    out = [f"broker KPIs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
           f"load {os.getloadavg()[0]:.2f}"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-broker-") as tmp:
        work = Path(tmp)
        if not args.skip_demo:
            progress("demo: migrating and seeding the full demo on PostgreSQL")
            with fresh_site(work, production=True, label="brokerdemo") as site:
                lines, _ = measure(site, "demo (40 agents)", args.requests, 50)
                out += lines
                print("\n".join(lines), flush=True)
        if not args.skip_large:
            progress("large: demo, then 1,000 agents and 2.7M generated rows")
            # The generated brokerage is the point; a twentieth of the demo's other data (the
            # café's 3M orders above all) saves ten minutes of seeding and changes nothing here.
            with fresh_site(work, production=True, label="brokerlarge", demo_scale=0.05) as site:
                broker = large_site(site)
                lines, ours = measure(
                    site, "large (1,000 agents)", max(args.requests // 2, 10), 300
                )
                out += lines
                out += seed_sql(site, broker, ours, 5)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
