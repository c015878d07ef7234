"""Shared by the transactions benchmarks (issue 4): a fresh demo site with 10,000 bulk-inserted
transactions, a server on it, and wrk cycling over many paths.

A site is a new PostgreSQL database with Redis as the bus (production mode), or a SQLite file
(embedded mode), migrated and seeded by the CLI as a user would. Servers, the database and its
Redis keys are removed when the run ends, normally, on an error, on Ctrl-C or on SIGTERM."""

from __future__ import annotations

import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psycopg
import redis
from api_baseline import RESULT_MARK, WRK_SCRIPT, Load
from psycopg import sql
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get(
    "DOORSTEP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("DOORSTEP_BENCH_REDIS", "redis://127.0.0.1:6379/0")
DEMO_PASSWORD = "doorstep-demo"  # noqa: S105 - the published demo password
TENANT_SLUG = "riley-realty"


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` runs: servers stop, the database is
    dropped (Python's default SIGTERM handling skips them). A second SIGTERM during that
    cleanup is ignored rather than cutting it short."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, stop)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (as wrk reports it); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def machine_busy(since: tuple[float, float] | None = None) -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine from /proc/stat (Linux); with `since`,
    the busy share since then as (share, 0). Other people's work skews every figure."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    busy, total = sum(fields) - fields[3] - fields[4], sum(fields)
    if since is None:
        return busy, total
    return (busy - since[0]) / max(1.0, total - since[1]), 0.0


def source_state() -> str:
    """Which code was measured: the commit, and whether src/ or the migrations differ from it."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "src", "migrations"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    return f"commit {head.stdout.strip() or '?'}" + (
        f" + {len(dirty)} uncommitted file(s) under src/ or migrations/" if dirty else ""
    )


# --- the site ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    workdir: Path
    database_url: str  # SQLAlchemy URL
    env: dict[str, str]  # the environment servers and the CLI run with
    production: bool

    @property
    def mode(self) -> str:
        return "production (PostgreSQL + Redis)" if self.production else "embedded (SQLite)"


def _admin_conninfo() -> str:
    return make_url(POSTGRES).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_site(
    workdir: Path, *, production: bool, label: str, demo_scale: float | None = None
) -> Iterator[Site]:
    """A migrated database with the demo data; dropped (and its Redis keys removed) after.
    `demo_scale` loads a fraction of the demo's volume (DOORSTEP_DEMO_SCALE; default all)."""
    tag = uuid.uuid4().hex[:10]
    name = f"doorstep_bench_{label}_{tag}"
    prefix = f"doorstep-bench-{label}-{tag}"
    if production:
        url = (
            make_url(POSTGRES)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    else:
        url = f"sqlite:///{workdir / f'{name}.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
    env |= {
        "DOORSTEP_DATABASE_URL": url,
        "DOORSTEP_SECRET_KEY": secrets.token_hex(24),
        # The default 15 minutes could run out during a long run; a 401 is fast and wrong.
        "DOORSTEP_ACCESS_TOKEN_MINUTES": "120",
        "DOORSTEP_REDIS_PREFIX": prefix,
        "DOORSTEP_JOBS_PATH": str(workdir / "jobs.db"),
        "DOORSTEP_SECURE_COOKIES": "false",
    }
    if production:
        env["DOORSTEP_REDIS_URL"] = REDIS
    if demo_scale is not None:
        env["DOORSTEP_DEMO_SCALE"] = str(demo_scale)
    try:
        if production:
            with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        for step in ("migrate", "seed-demo"):
            done = subprocess.run(
                [sys.executable, "-m", "doorstep.cli", step],
                env=env,
                cwd=workdir,
                check=False,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"doorstep {step} failed:\n{done.stderr[-3000:]}")
        yield Site(workdir=workdir, database_url=url, env=env, production=production)
    finally:
        if production:
            with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            client = redis.Redis.from_url(REDIS)
            huey = "huey.redis." + "".join(c for c in f"{prefix}:jobs" if c.isalnum())
            for pattern in (f"{prefix}:*", f"{huey}*"):
                for key in client.scan_iter(pattern):
                    client.delete(key)
            client.close()


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn_command(port: int, workers: int) -> list[str]:
    """Production: gunicorn with uvicorn workers (../shared/DESIGN.md), no access log."""
    return [
        sys.executable, "-m", "gunicorn", "doorstep.app:create_app()",
        "-k", "uvicorn.workers.UvicornWorker", "-w", str(workers),
        "-b", f"127.0.0.1:{port}", "--log-level", "warning",
    ]  # fmt: skip


def serve_command(port: int) -> list[str]:
    """The embedded mode: `doorstep serve`, one uvicorn process."""
    return [sys.executable, "-m", "doorstep.cli", "serve", "--port", str(port)]


@contextmanager
def running(argv: list[str], *, env: dict[str, str], workdir: Path, log: str) -> Iterator[int]:
    """A process for the duration of the block; stopped (SIGTERM, then SIGKILL) after."""
    with (workdir / log).open("ab") as out:
        process = subprocess.Popen(argv, env=env, cwd=workdir, stdout=out, stderr=out)
    try:
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serving(argv: list[str], port: int, *, env: dict[str, str], workdir: Path) -> Iterator[str]:
    """Start a server, wait for /readyz, yield its URL, stop it (gunicorn stops its workers)."""
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"server-{port}.log"
    with running(argv, env=env, workdir=workdir, log=log.name):
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer from {' '.join(argv)}:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url


def sign_in(url: str, email: str) -> str:
    """An access token (POST /api/auth/token with the demo password)."""
    response = httpx.post(
        url + "/api/auth/token", data={"username": email, "password": DEMO_PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


# --- 10,000 transactions ----------------------------------------------------------------------

STREETS = ["Oak", "Maple", "Cedar", "Pine", "Elm", "Willow", "Sunset", "Mission", "Harbor",
           "Lakeview", "Hillcrest", "Park", "Vista", "Juniper", "Sycamore", "Magnolia", "Canyon",
           "Ocean", "Laurel", "Cypress"]  # fmt: skip
SUFFIXES = ["St", "Ave", "Blvd", "Dr", "Ln", "Way", "Ct", "Pl"]
CITIES = [("Pasadena", "91101"), ("Glendale", "91203"), ("Burbank", "91502"),
          ("Santa Monica", "90401"), ("Long Beach", "90802"), ("Torrance", "90501"),
          ("Irvine", "92618"), ("Anaheim", "92805"), ("Culver City", "90230"),
          ("Whittier", "90601")]  # fmt: skip
FIRST = ["Avery", "Blake", "Carmen", "Dana", "Elena", "Felix", "Grace", "Hector", "Iris",
         "Jonah", "Kara", "Liam", "Maya", "Nolan", "Olive", "Priya", "Quinn", "Rosa", "Tess",
         "Victor"]  # fmt: skip
LAST = ["Alvarez", "Brooks", "Chen", "Diaz", "Ellis", "Foster", "Garcia", "Hughes", "Kim",
        "Lopez", "Morgan", "Nguyen", "Ortiz", "Patel", "Reyes", "Shah", "Turner",
        "Walsh"]  # fmt: skip
LOANS = (("conventional", 0.55), ("fha", 0.18), ("va", 0.09), ("cash", 0.18))
DOWN = {"conventional": Decimal("0.20"), "fha": Decimal("0.035"), "va": Decimal(0)}


@dataclass(frozen=True)
class Bulk:
    ids: list[int]  # the new transactions' primary keys, in insertion order
    milestones: int
    agents: int
    seconds: float


def _milestone_status(rng: random.Random, target: date, today: date) -> tuple[str, date | None]:
    """A believable status for an open deal's milestone, by where its target date lies."""
    if target < today:
        roll = rng.random()
        if roll < 0.85:
            return "completed", target + timedelta(days=rng.randint(-3, 2))
        return ("delayed" if roll < 0.95 else "in_progress"), None
    if (target - today).days <= 5 and rng.random() < 0.35:
        return "in_progress", None
    return "pending", None


def bulk_transactions(database_url: str, *, count: int, seed: int = 4) -> Bulk:
    """`count` transactions of Riley Realty spread over its agents, each with the milestones of
    its loan type's default plan (8; 5 for cash), in a few multi-row INSERTs."""
    from doorstep.platform.auth import Role, Tenant, User
    from doorstep.platform.db import make_engine
    from doorstep.transactions import rules
    from doorstep.transactions.models import Milestone, Transaction

    started = time.perf_counter()
    engine = make_engine(database_url)
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    with Session(engine) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == TENANT_SLUG))
        agents = list(
            session.scalars(
                select(User.id)
                .where(User.tenant_id == tenant_id, User.role == Role.agent)
                .order_by(User.id)
            )
        )
        if not agents:
            raise RuntimeError("the demo data has no Riley Realty agents")
        loan_types, loan_weights = zip(*LOANS, strict=True)
        tx_rows: list[dict[str, Any]] = []
        plans: list[tuple[list[rules.PlanStep], dict[str, date], str, list[tuple[str, Any]]]] = []
        weights = dict(rules.HEALTH_WEIGHTS)
        for n in range(1, count + 1):
            loan = rng.choices(loan_types, loan_weights)[0]
            contract = today - timedelta(days=rng.randint(1, 420))
            span = rng.randint(14, 30) if loan == "cash" else rng.randint(30, 60)
            closing = contract + timedelta(days=span)
            plan = rules.default_plan(loan)
            targets = rules.target_dates(plan, contract, closing)
            if closing < today:
                roll = rng.random()
                escrow = "Closed" if roll < 0.9 else ("Cancelled" if roll < 0.96 else "Active")
            else:
                escrow = "Pending" if rng.random() < 0.2 else "Active"
            actual_closing = (
                closing + timedelta(days=rng.choice([-2, -1, 0, 0, 0, 1, 3, 7]))
                if escrow == "Closed"
                else None
            )
            cancelled = contract + timedelta(days=rng.randint(1, span))
            statuses: list[tuple[str, Any]] = []
            for step in plan:
                target = targets[step.milestone_type]
                if step.milestone_type == "contract_signed":
                    statuses.append(("completed", contract))
                elif escrow == "Closed":
                    done = (
                        actual_closing
                        if step.milestone_type == "closing_day"
                        else min(target, actual_closing or target)
                    )
                    statuses.append(("completed", done))
                elif escrow == "Cancelled":
                    statuses.append(
                        ("completed", target) if target < cancelled else ("pending", None)
                    )
                else:
                    statuses.append(_milestone_status(rng, target, today))
            states = tuple(
                rules.MilestoneState(
                    milestone_type=s.milestone_type,
                    name=s.name,
                    status=st,
                    order_sequence=s.order_sequence,
                    weight=s.weight,
                    target_date=targets[s.milestone_type],
                    actual_date=actual,
                    requires=s.requires,
                    optional=s.optional,
                )
                for s, (st, actual) in zip(plan, statuses, strict=True)
            )
            stakeholders = {k: rng.random() < 0.7 for k in ("lender", "title_company", "inspector")}
            if loan == "cash":
                del stakeholders["lender"]
            contact = now - timedelta(hours=rng.randint(1, 24 * 10))
            buyer = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            facts = rules.TransactionFacts(
                milestones=states,
                today=today,
                contract_date=contract,
                target_closing_date=closing,
                loan_type=loan,
                last_communication=contact.date(),
                delay_count=sum(1 for st, _ in statuses if st == "delayed"),
                stakeholders=stakeholders,
                buyer_name=buyer.split(" ", maxsplit=1)[0],
            )
            health = rules.health_score(facts, weights)
            price = Decimal(rng.randrange(250, 1500) * 1000)
            down = price if loan == "cash" else (price * DOWN[loan]).quantize(Decimal("0.01"))
            reason = "Financing fell through" if escrow == "Cancelled" else None
            city, zip_code = rng.choice(CITIES)
            tx_rows.append(
                {
                    "tenant_id": tenant_id,
                    "transaction_id": f"RR-{contract.year}-{n:05d}",
                    "agent_id": agents[(n - 1) % len(agents)],
                    "property_id": None,
                    "property_address": f"{rng.randint(10, 9999)} {rng.choice(STREETS)} "
                    f"{rng.choice(SUFFIXES)}",
                    "property_city": city,
                    "property_state": "CA",
                    "property_zip": zip_code,
                    "property_type": "residential",
                    "buyer_name": buyer,
                    "purchase_price": price,
                    "down_payment": down,
                    "loan_type": loan,
                    "my_commission": (price * Decimal("0.025")).quantize(Decimal("0.01")),
                    "escrow_status": escrow,
                    "contract_date": contract,
                    "target_closing_date": closing,
                    "actual_closing_date": actual_closing,
                    "progress_percentage": rules.progress(states),
                    "health_score": health.score,
                    "health_factors": health.as_json(),
                    "stakeholders": stakeholders,
                    "delay_count": facts.delay_count,
                    "last_communication_at": contact,
                    "cancellation_reason": reason,
                    "notes": "",
                    "created_at": datetime.combine(contract, datetime.min.time(), UTC),
                    "updated_at": contact,
                }
            )
            plans.append((plan, targets, escrow, statuses))
        ids = list(
            session.scalars(
                insert(Transaction).returning(Transaction.id, sort_by_parameter_order=True),
                tx_rows,
            )
        )
        ms_rows = [
            {
                "tenant_id": tenant_id,
                "transaction_id": tx_id,
                "milestone_type": step.milestone_type,
                "name": step.name,
                "status": status,
                "order_sequence": step.order_sequence,
                "target_date": targets[step.milestone_type],
                "actual_date": actual,
                "progress_weight": step.weight,
                "celebration_message": step.celebration_message,
                "requires": list(step.requires),
                "optional": step.optional,
                "notes": "",
                "updated_at": now,
            }
            for tx_id, (plan, targets, _escrow, statuses) in zip(ids, plans, strict=True)
            for step, (status, actual) in zip(plan, statuses, strict=True)
        ]
        session.execute(insert(Milestone), ms_rows)
        session.commit()
    if engine.dialect.name == "postgresql":
        # A database that has been in use has statistics; a fresh bulk load has none yet.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return Bulk(
        ids=ids,
        milestones=len(ms_rows),
        agents=len(agents),
        seconds=time.perf_counter() - started,
    )


# --- wrk, cycling over paths -------------------------------------------------------------------

# Each wrk thread has its own Lua state; setup() runs once per thread in the main one and gives
# each thread its own starting point, so the threads do not ask for the same ids in step.
CYCLE_SCRIPT = """
local paths = {PATHS}
local count = #paths
local made = 0
setup = function(thread)
  made = made + 1
  thread:set("start", (made - 1) * 7919)
end
local i = 0
init = function(args)
  i = start or 0
end
request = function()
  i = i + 1
  return wrk.format(nil, paths[(i % count) + 1])
end
"""


def run_wrk(
    url: str,
    paths: Sequence[str],
    *,
    connections: int,
    duration: float,
    headers: dict[str, str],
    workdir: Path,
) -> Load:
    """wrk over `paths` in turn (one path: plain wrk), with api_baseline's p95 hook."""
    script = workdir / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    body = WRK_SCRIPT
    if len(paths) > 1:
        listed = ",".join(json.dumps(p) for p in paths)
        body = CYCLE_SCRIPT.replace("{PATHS}", "{" + listed + "}") + body
    script.write_text(body)
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration:g}s"]
    # A generous timeout: a request wrk gives up on is counted as an error, not as latency.
    command += ["--latency", "--timeout", "10s", "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url + paths[0])
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=duration + 60
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    data = json.loads(lines[-1].removeprefix(RESULT_MARK))
    if data["status_errors"] or data["socket_errors"]:
        raise RuntimeError(
            f"{url}{paths[0]}: {data['status_errors']} non-2xx/3xx responses, "
            f"{data['socket_errors']} socket errors; the figures would be meaningless"
        )
    return Load(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        client_cpu=0.0,  # not measured here
    )
