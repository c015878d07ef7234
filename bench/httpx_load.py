"""A small HTTP load generator: N keep-alive connections, each sending GETs back to back.

bench/api_baseline.py runs it (in its own process) when `wrk` is not installed. It is written in
Python, so on a small machine it tops out well below what wrk drives: its figures are comparable
with each other, not with wrk's.

    python bench/httpx_load.py URL --connections 32 --duration 10 --header "Name: value"

Prints one line, `BENCH_RESULT {json}`, with the same keys as the wrk script's."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    bad_status: int = 0


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when it is empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def _connection(url: str, headers: dict[str, str], stop_at: float, tally: Tally) -> None:
    # One client per connection: one shared client with a 32-connection pool spends most of
    # its time in the pool's bookkeeping (about 4x fewer requests per second, measured).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                response = await client.get(url, headers=headers)
            except httpx.HTTPError:
                tally.errors += 1
                continue
            tally.latencies.append(time.perf_counter() - started)
            if not 200 <= response.status_code < 400:
                tally.bad_status += 1


async def run(url: str, *, connections: int, duration: float, headers: dict[str, str]) -> Tally:
    tally = Tally()
    stop_at = time.perf_counter() + duration
    await asyncio.gather(*(_connection(url, headers, stop_at, tally) for _ in range(connections)))
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)

    started = time.perf_counter()
    tally = asyncio.run(
        run(args.url, connections=args.connections, duration=args.duration, headers=headers)
    )
    elapsed = time.perf_counter() - started
    latencies = sorted(tally.latencies)
    result = {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "p50_us": percentile(latencies, 50) * 1e6,
        "p95_us": percentile(latencies, 95) * 1e6,
        "p99_us": percentile(latencies, 99) * 1e6,
        "socket_errors": tally.errors,
        "status_errors": tally.bad_status,
    }
    print("BENCH_RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
