"""Report generation under load (issue 8): 20 concurrent `POST /api/custom-reports/generate`
against a real server, all of which must complete; beside it, one report made alone in the
same run (the reference).

A fresh SQLite database (or `--database-url`) gets one tenant, one analyst and one company with
24 months of metrics, valuations and benchmarks (tests/reports/samples.py); `doorstep serve`
runs the jobs in-process (the embedded mode, 2 job threads by default). The script prints the
figures; it never passes or fails on timing (it exits non-zero only if a report fails).

    .venv/bin/python bench/report_generation.py                 # 20 requests, mixed templates
    .venv/bin/python bench/report_generation.py --requests 40 --format pdf
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from itertools import cycle
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account in a throwaway database
TEMPLATES = ("executive_summary", "investor_pitch", "quarterly_review", "due_diligence")
FORMATS = ("pdf", "docx", "xlsx", "pptx", "json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(env: dict[str, str]) -> int:
    """Migrate, then one tenant, analyst and company; returns the company id."""
    subprocess.run(
        [sys.executable, "-m", "doorstep.cli", "migrate"], env=env, check=True, capture_output=True
    )
    os.environ.update(env)
    from doorstep.config import Settings
    from doorstep.platform.auth import Role, Tenant, User, hash_password
    from doorstep.platform.db import make_engine, make_sessionmaker
    from tests.reports.samples import sample_company

    engine = make_engine(Settings().database_url)
    with make_sessionmaker(engine)() as db:
        tenant = Tenant(slug="bench", name="Bench Holdings")
        db.add(tenant)
        db.flush()
        db.add(
            User(
                tenant_id=tenant.id,
                email="analyst@bench.test",
                full_name="Bench Analyst",
                role=Role.analyst,
                password_hash=hash_password(PASSWORD),
            )
        )
        db.commit()
        company = sample_company(db, tenant.id)
        company_id = company.id
    engine.dispose()
    return company_id


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_done(http: httpx.AsyncClient, ids: list[int]) -> dict[int, dict[str, object]]:
    done: dict[int, dict[str, object]] = {}
    while len(done) < len(ids):
        for report_id in ids:
            if report_id in done:
                continue
            state = (await http.get(f"/api/custom-reports/{report_id}")).json()
            if state["status"] in ("done", "failed"):
                done[report_id] = state
        await asyncio.sleep(0.1)
    return done


def seconds(state: dict[str, object]) -> float:
    started = datetime.fromisoformat(str(state["created_at"]))
    finished = datetime.fromisoformat(str(state["finished_at"]))
    return (finished - started).total_seconds()


async def measure(base: str, company_id: int, requests: int, fmt: str | None) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        token = (
            await http.post(
                "/api/auth/token", data={"username": "analyst@bench.test", "password": PASSWORD}
            )
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"

        async def ask(template: str, format_: str) -> int:
            body = {"template": template, "company_id": company_id, "format": format_}
            response = await http.post("/api/custom-reports/generate", json=body)
            response.raise_for_status()
            return int(response.json()["id"])

        started = time.perf_counter()
        alone = await wait_done(http, [await ask("executive_summary", "pdf")])
        single = time.perf_counter() - started
        kinds = cycle([(t, fmt or f) for f in FORMATS for t in TEMPLATES])
        chosen = [next(kinds) for _ in range(requests)]
        started = time.perf_counter()
        ids = await asyncio.gather(*(ask(t, f) for t, f in chosen))
        accepted = time.perf_counter() - started
        states = await wait_done(http, list(ids))
        burst = time.perf_counter() - started
    failed = [s for s in states.values() if s["status"] != "done"]
    each = sorted(seconds(s) for s in states.values() if s["status"] == "done")
    print(
        f"reference: one Executive Summary PDF alone, asked -> done: {single:.2f} s "
        f"(made in {seconds(next(iter(alone.values()))):.2f} s)"
    )
    print(
        f"burst: {requests} concurrent requests accepted in {accepted:.2f} s; "
        f"all finished after {burst:.2f} s; completed {len(each)}, failed {len(failed)}"
    )
    if each:
        print(
            f"  per report, queued -> done: median {statistics.median(each):.2f} s, "
            f"max {each[-1]:.2f} s"
        )
    for state in failed:
        print(f"  FAILED {state['id']}: {state['error']}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--format", choices=FORMATS, default=None, help="default: a mix")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as tmp:
        port = free_port()
        env = {
            **os.environ,
            "DOORSTEP_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite",
            "DOORSTEP_SECRET_KEY": "bench-" + "x" * 40,
            "DOORSTEP_JOBS_PATH": f"{tmp}/jobs.sqlite",
            "DOORSTEP_LOG_LEVEL": "WARNING",
        }
        company_id = prepare(env)
        server = subprocess.Popen(
            [sys.executable, "-m", "doorstep.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            print(
                f"machine: {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; "
                f"server: doorstep serve, jobs in-process"
            )
            code = asyncio.run(measure(base, company_id, args.requests, args.format))
            print(f"server peak RSS: {peak_rss_mb(server.pid):.0f} MB")
            return code
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
