"""Milestone update to the buyer's WebSocket (issue 4): how long until the buyer sees it?

A fresh demo site (bench/transactions_site.py) with 10,000 bulk-inserted transactions, on
PostgreSQL with Redis as the bus, served like production: gunicorn with uvicorn workers (one
per core) and a `doorstep worker` for the jobs each change enqueues. `--embedded`: a SQLite
file served by `doorstep serve` (one process, in-process bus, jobs in the server).

The agent (agent@doorstep.demo) opens `--deals` deals through the API with Sam Buyer
(buyer@doorstep.demo) as their buyer, and Sam connects to every deal's
`WS /api/v1/transactions/{id}/live`. The agent then makes `--updates` milestone changes one
after another, cycling over the deals, each toggling Home Inspection pending <-> in_progress,
and waits for Sam's connection to deliver the `milestone.*` event before the next one. Per
change: PUT sent -> the buyer has the event (the aim: p99 under 100 ms), and the PUT's own
round trip. Reference in the same run: a `ping` -> `pong` round trip on the same WebSocket
(the floor of any server-to-client message). Everything runs on one machine (one clock). The
script never passes or fails on timing. Results: docs/performance.md.

    .venv/bin/python bench/milestone_latency.py               # production mode, 200 updates
    .venv/bin/python bench/milestone_latency.py --embedded    # SQLite, one process
    .venv/bin/python bench/milestone_latency.py --quick       # 40 updates, 1,000 bulk
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets
from transactions_site import (
    bulk_transactions,
    exit_cleanly_on_sigterm,
    free_port,
    fresh_site,
    gunicorn_command,
    machine_busy,
    percentile,
    progress,
    running,
    serve_command,
    serving,
    sign_in,
    source_state,
)
from websockets.asyncio.client import ClientConnection

AGENT = "agent@doorstep.demo"
BUYER = "buyer@doorstep.demo"
AIM_P99_MS = 100.0
MILESTONE = "home_inspection"
TOGGLE = {"pending": "in_progress", "in_progress": "pending"}
EVENT_OF = {"in_progress": "milestone.started", "pending": "milestone.pending"}
TIMEOUT = 30.0


@dataclass
class Live:
    """One of the buyer's WebSocket connections; a task stamps every message on arrival."""

    transaction_id: int
    connection: ClientConnection
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None
    pinger: asyncio.Task[None] | None = None

    async def read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.connection:
                self.received.append((time.perf_counter(), json.loads(raw)))
                self.arrived.set()
        self.arrived.set()  # closed: wake wait_for, which reports it

    async def keep_alive(self) -> None:
        """Ping every 30 s as static/js/live.js does: the server closes silent connections."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(30)
                await self.connection.send(json.dumps({"type": "ping"}))

    async def wait_for(self, check: Callable[[dict[str, Any]], bool], start: int) -> float:
        """When the first message from index `start` on that satisfies `check` arrived."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                for seen, message in self.received[start:]:
                    if check(message):
                        return seen
                start = len(self.received)
                if self.reader is not None and self.reader.done():
                    raise RuntimeError(f"deal {self.transaction_id}: the server closed the socket")
                self.arrived.clear()
                await self.arrived.wait()


async def connect(base: str, transaction_id: int, token: str) -> Live:
    url = base.replace("http://", "ws://") + f"/api/v1/transactions/{transaction_id}/live?"
    connection = await websockets.connect(url + urlencode({"token": token}), compression=None)
    live = Live(transaction_id, connection)
    live.reader = asyncio.create_task(live.read())
    live.pinger = asyncio.create_task(live.keep_alive())
    await live.wait_for(lambda m: m.get("type") == "hello", 0)
    return live


@dataclass
class Figures:
    put_ms: list[float] = field(default_factory=list)  # PUT sent -> response read
    event_ms: list[float] = field(default_factory=list)  # PUT sent -> the buyer has the event
    ping_ms: list[float] = field(default_factory=list)  # ping sent -> pong read (reference)


async def drive(url: str, args: argparse.Namespace) -> Figures:
    agent = {"Authorization": f"Bearer {sign_in(url, AGENT)}"}
    buyer_token = sign_in(url, BUYER)
    figures = Figures()
    async with httpx.AsyncClient(base_url=url, headers=agent, timeout=TIMEOUT) as http:
        me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {buyer_token}"})
        me.raise_for_status()
        today = datetime.now(UTC).date()
        deals = []
        for n in range(args.deals):
            response = await http.post(
                "/api/v1/transactions/",
                json={
                    "property_address": f"{100 + n} Bench Lane",
                    "buyer_name": "Sam Buyer",
                    "buyer_ids": [me.json()["id"]],
                    "purchase_price": "650000.00",
                    "loan_type": "conventional",
                    "contract_date": str(today - timedelta(days=5)),
                    "target_closing_date": str(today + timedelta(days=40)),
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"opening a deal: {response.status_code} {response.text}")
            deals.append(int(response.json()["id"]))
        progress(f"the buyer connects to {len(deals)} deals ...")
        lives = [await connect(url, deal, buyer_token) for deal in deals]
        try:
            status = dict.fromkeys(deals, "pending")
            progress(f"{args.warmup} warm-up and {args.updates} measured milestone updates ...")
            for n in range(args.warmup + args.updates):
                live = lives[n % len(lives)]
                target = TOGGLE[status[live.transaction_id]]
                start = len(live.received)
                sent = time.perf_counter()
                response = await http.put(
                    f"/api/v1/transactions/{live.transaction_id}/milestones",
                    json={"milestone_type": MILESTONE, "status": target},
                )
                answered = time.perf_counter()
                if response.status_code != 200:
                    raise RuntimeError(f"PUT milestone: {response.status_code} {response.text}")
                status[live.transaction_id] = target
                seen = await live.wait_for(
                    lambda m, kind=EVENT_OF[target]: (
                        m.get("type") == kind
                        and m["data"].get("milestone", {}).get("milestone_type") == MILESTONE
                    ),
                    start,
                )
                if n >= args.warmup:
                    figures.put_ms.append((answered - sent) * 1000)
                    figures.event_ms.append((seen - sent) * 1000)
                await asyncio.sleep(args.pause)
            progress(f"{args.updates} ping -> pong round trips ...")
            for n in range(args.updates):
                live = lives[n % len(lives)]
                start = len(live.received)
                sent = time.perf_counter()
                await live.connection.send(json.dumps({"type": "ping"}))
                seen = await live.wait_for(lambda m: m.get("type") == "pong", start)
                figures.ping_ms.append((seen - sent) * 1000)
                await asyncio.sleep(args.pause)
        finally:
            for live in lives:
                if live.pinger is not None:
                    live.pinger.cancel()
                await live.connection.close()
                if live.reader is not None:
                    await live.reader
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--embedded", action="store_true", help="SQLite, `doorstep serve`")
    parser.add_argument("--updates", type=int, default=200, help="measured updates (200)")
    parser.add_argument("--warmup", type=int, default=20, help="updates before measuring (20)")
    parser.add_argument("--deals", type=int, default=20, help="deals cycled over (20)")
    parser.add_argument("--bulk", type=int, default=10_000, help="bulk transactions (10,000)")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between updates")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn -w")
    parser.add_argument("--quick", action="store_true", help="40 updates, 1,000 bulk")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    if args.quick:
        args.updates, args.warmup, args.deals, args.bulk = 40, 5, 5, 1_000
    started = datetime.now(UTC)
    production = not args.embedded
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-ms-") as tmp:
        progress(f"preparing a fresh {'PostgreSQL' if production else 'SQLite'} database ...")
        with fresh_site(Path(tmp), production=production, label="milestone") as site:
            if args.bulk:
                progress(f"bulk-inserting {args.bulk:,} transactions ...")
                bulk_transactions(site.database_url, count=args.bulk)
            port = free_port()
            command = gunicorn_command(port, args.workers) if production else serve_command(port)
            worker = [sys.executable, "-m", "doorstep.cli", "worker"]
            with (
                serving(command, port, env=site.env, workdir=site.workdir) as url,
                # Production mode: the jobs each change enqueues run in a worker, as deployed.
                running(worker, env=site.env, workdir=site.workdir, log="worker.log")
                if production
                else contextlib.nullcontext(),
            ):
                before = machine_busy()
                figures = asyncio.run(drive(url, args))
                busy = machine_busy(since=before)
    server = (
        f"gunicorn, {args.workers} uvicorn workers, Redis bus, 1 `doorstep worker`"
        if production
        else "`doorstep serve` (1 uvicorn process, in-process bus, jobs in the server)"
    )
    print(
        f"Milestone update -> buyer's WebSocket, {started:%Y-%m-%d %H:%M} UTC; "
        f"{os.cpu_count()} CPU cores ({platform.machine()}, Python {platform.python_version()}); "
        f"{site.mode}; {source_state()}"
    )
    print(
        f"Server: {server}. Data: {args.bulk:,} bulk transactions plus {args.deals} deals with "
        f"Sam Buyer, whose {args.deals} WebSocket connections are open. {args.updates} "
        f"sequential updates after {args.warmup} warm-up, {args.pause * 1000:g} ms apart."
    )
    print(f"The machine's CPUs were {busy[0]:.0%} busy during the run (everything on it).")
    print()
    header = f"{'interval (ms)':<44} {'n':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  aim"
    print(header)
    print("-" * len(header))
    rows = {
        "WebSocket ping -> pong (reference)": figures.ping_ms,
        "milestone PUT round trip": figures.put_ms,
        "milestone PUT sent -> buyer has the event": figures.event_ms,
    }
    for name, values in rows.items():
        aim = ""
        if values is figures.event_ms:
            met = percentile(values, 99) < AIM_P99_MS
            aim = f"p99 < {AIM_P99_MS:g}: {'yes' if met else 'NO'}"
        print(
            f"{name:<44} {len(values):>4} {percentile(values, 50):>7.1f} "
            f"{percentile(values, 95):>7.1f} {percentile(values, 99):>7.1f} "
            f"{max(values):>7.1f}  {aim}"
        )
    first = sum(1 for e, p in zip(figures.event_ms, figures.put_ms, strict=True) if e < p)
    count = len(figures.event_ms)
    print(f"\nThe event reached the buyer before the PUT's response in {first} of {count}.")


if __name__ == "__main__":
    main()
