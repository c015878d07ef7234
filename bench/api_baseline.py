"""API baseline (issue 2): an authenticated read endpoint against a bare Starlette endpoint.

Measures throughput and p50/p95/p99 latency of `GET /api/auth/me` (Bearer token, demo data in a
fresh SQLite database), of a bare Starlette JSON endpoint of the same size (bench/bare_app.py), and
of a bare FastAPI `async def` route returning that same body (`bare_fastapi` below: the framework's
own floor, which shows how much of the gap is FastAPI's and how much Doorstep's), served the same
way, hit by the same client with 32 keep-alive connections, in the same run:

* uvicorn, one process (how `doorstep serve` runs);
* gunicorn with 2 uvicorn workers (the production setup ../shared/DESIGN.md recommends).

The servers run one after the other, never together, so they do not share the cores; the load
generator (wrk, else bench/httpx_load.py) is a separate process and does share them with the
server under test. The script prints figures and compares them with the bare reference; it never
passes or fails on timing (it exits non-zero only when something does not work, e.g. a 401).

    .venv/bin/python bench/api_baseline.py             # 10 s per measurement
    .venv/bin/python bench/api_baseline.py --quick     # 3 s smoke run
    .venv/bin/python bench/api_baseline.py --src /tmp/snapshot/src   # serve another tree
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
CONNECTIONS = 32
DEMO_USER = "broker@doorstep.demo"
DEMO_PASSWORD = "doorstep-demo"  # noqa: S105 - the published demo password
ME_PATH = "/api/auth/me"
RESULT_MARK = "BENCH_RESULT "
# Aim from issue 2, printed next to the figures (never used as a pass/fail).
AIM_RATIO = 0.40
AIM_P95_MS = 20.0

# wrk calls done() once at the end; it prints what --latency leaves out (p95) as one JSON line.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %.0f, "duration_us": %.0f, "p50_us": %.1f, "p95_us": %.1f, '
    .. '"p99_us": %.1f, "socket_errors": %.0f, "status_errors": %.0f}\\n',
    "RESULT_MARK", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
""".replace("RESULT_MARK", RESULT_MARK)


# --- measurements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One load-generator run's figures."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    client_cpu: float  # the load generator's CPU time over the run, in cores (1.0 = one core)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class LoadTool:
    """Drives `connections` keep-alive connections at a URL for a while: wrk, or the fallback."""

    def __init__(self, workdir: Path, *, prefer: str) -> None:
        wrk = shutil.which("wrk")
        self.use_wrk = prefer == "wrk" or (prefer == "auto" and wrk is not None)
        if self.use_wrk and wrk is None:
            raise SystemExit("--load wrk: wrk is not installed (apt-get install -y wrk)")
        self.script = workdir / "report.lua"
        if self.use_wrk:
            self.script.write_text(WRK_SCRIPT)
        # Threads the generator runs on: near 100% CPU on each, it is the limit, not the server.
        self.threads = 2 if self.use_wrk else 1

    @property
    def name(self) -> str:
        if self.use_wrk:
            version = subprocess.run(
                ["wrk", "--version"], check=False, capture_output=True, text=True
            )
            return (version.stdout or version.stderr).split(" [")[0].strip() + " (-t2)"
        why = "chosen with --load httpx" if shutil.which("wrk") else "wrk not found"
        return f"bench/httpx_load.py (Python asyncio + httpx; {why})"

    def run(self, url: str, *, duration: float, headers: dict[str, str]) -> Load:
        if self.use_wrk:
            command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration:g}s", "--latency"]
            command += ["-s", str(self.script)]
        else:
            command = [sys.executable, str(BENCH_DIR / "httpx_load.py")]
            command += ["--connections", str(CONNECTIONS), "--duration", f"{duration:g}"]
        for name, value in headers.items():
            command += ["-H" if self.use_wrk else "--header", f"{name}: {value}"]
        command.append(url)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=duration + 60
        )
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_MARK)]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"load generator failed:\n{done.stdout}\n{done.stderr}")
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        client_cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / elapsed
        data = json.loads(lines[-1].removeprefix(RESULT_MARK))
        if data["status_errors"] or data["socket_errors"]:
            raise RuntimeError(
                f"{url}: {data['status_errors']} non-2xx/3xx responses, "
                f"{data['socket_errors']} socket errors; the figures would be meaningless"
            )
        return Load(
            requests=int(data["requests"]),
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p95_ms=data["p95_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            client_cpu=client_cpu,
        )


# --- servers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One server setup serving one endpoint."""

    setup: str  # label of the server setup, e.g. "uvicorn, 1 process"
    endpoint: str  # label of the endpoint
    command: Callable[[int], list[str]]  # port -> argv
    path: str
    authenticated: bool
    reference: bool = False  # the bare Starlette endpoint every row of its setup is compared with


def uvicorn(app: str, *extra: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", app, *extra,
            "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip

    return command


def gunicorn(app: str, *extra: str) -> Callable[[int], list[str]]:
    # No --access-logfile: gunicorn's access log is off, as uvicorn's is above.
    def command(port: int) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn", app, *extra,
            "-k", "uvicorn.workers.UvicornWorker", "-w", "2",
            "-b", f"127.0.0.1:{port}", "--log-level", "warning",
        ]  # fmt: skip

    return command


def bare_fastapi() -> Any:
    """The framework floor: a plain FastAPI app whose one `async def` route returns the same
    dict as bench/bare_app.py. No middleware, no database, no authentication, no thread hop:
    what any FastAPI route costs before it does anything. Served with `--factory`."""
    from bare_app import BODY  # on --app-dir / --pythonpath, as the server imports this
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/")
    async def constant() -> dict[str, Any]:
        return BODY

    return app


UVICORN = "uvicorn, 1 process"
GUNICORN = "gunicorn, 2 uvicorn workers"
BARE = "bare Starlette GET /"
FASTAPI = "bare FastAPI GET /"
ME = f"GET {ME_PATH}"
TARGETS = [
    Target(UVICORN, BARE, uvicorn("bare_app:app", "--app-dir", str(BENCH_DIR)), "/", False, True),
    Target(
        UVICORN,
        FASTAPI,
        uvicorn("api_baseline:bare_fastapi", "--factory", "--app-dir", str(BENCH_DIR)),
        "/",
        False,
    ),
    Target(UVICORN, ME, uvicorn("doorstep.app:create_app", "--factory"), ME_PATH, True),
    Target(
        GUNICORN, BARE, gunicorn("bare_app:app", "--pythonpath", str(BENCH_DIR)), "/", False, True
    ),
    Target(
        GUNICORN,
        FASTAPI,
        gunicorn("api_baseline:bare_fastapi()", "--pythonpath", str(BENCH_DIR)),
        "/",
        False,
    ),
    Target(GUNICORN, ME, gunicorn("doorstep.app:create_app()"), ME_PATH, True),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection_split(port: int) -> str:
    """How the open connections to `port` are spread over the server's processes, e.g. "9/23".

    With several workers on one listening socket, whichever worker is awake accepts; wrk opens
    its 32 keep-alive connections at once, so one worker can end up serving most of them for
    the whole run. This makes such a run's figure readable. Linux with `ss` only; else "?"."""
    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            check=False,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    counts = Counter(re.findall(r"pid=(\d+)", out))
    return "/".join(str(n) for n in sorted(counts.values(), reverse=True)) or "?"


@contextmanager
def serving(
    command: Callable[[int], list[str]], *, env: dict[str, str], workdir: Path, log: Path
) -> Iterator[str]:
    """Start a server, wait until it answers, yield its base URL, stop it (and its workers)."""
    port = free_port()
    argv = command(port)
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, cwd=workdir, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no answer from {' '.join(argv)}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()  # gunicorn's master stops its workers on SIGTERM
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the run -----------------------------------------------------------------------------------


def demo_environment(workdir: Path, src: Path | None = None) -> dict[str, str]:
    """A fresh SQLite database with the demo data; returns the environment that points to it.

    With `src`, the servers and the CLI import Doorstep from that tree instead of the
    installed one (a snapshot of a commit, or a patched copy; its parent needs `migrations/`)."""
    env = {
        **os.environ,
        **({"PYTHONPATH": str(src)} if src is not None else {}),
        "DOORSTEP_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "DOORSTEP_SECRET_KEY": secrets.token_hex(24),  # 48 characters
        # The default 15 minutes could run out during a long run; a 401 would be fast and wrong.
        "DOORSTEP_ACCESS_TOKEN_MINUTES": "120",
    }
    env.pop("DOORSTEP_REDIS_URL", None)  # embedded mode: SQLite, in-process rate limits
    for step in (["migrate"], ["seed-demo"]):
        subprocess.run(
            [sys.executable, "-m", "doorstep.cli", *step],
            env=env,
            cwd=workdir,
            check=True,
            capture_output=True,
        )
    return env


def sign_in(url: str) -> dict[str, str]:
    """The Authorization header of the demo broker, checked against the endpoint."""
    response = httpx.post(
        url + "/api/auth/token", data={"username": DEMO_USER, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    check = httpx.get(url + ME_PATH, headers=headers)
    check.raise_for_status()
    return headers


def busy_elsewhere(seconds: float = 1.0) -> float | None:
    """Share of the machine's CPU time other processes used over `seconds` (Linux; else None).

    Taken before the run: a busy machine (a test suite, a browser) skews every figure."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return (total - (idle1 - idle0)) / total if total else None


@dataclass(frozen=True)
class Row:
    target: Target
    load: Load
    client_bound: bool  # the load generator ran flat out: the figure measures it, not the server
    split: str  # connections per server process, sampled mid-run


@dataclass(frozen=True)
class Run:
    rows: list[Row]
    tool: str
    busy_before: float | None


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def probed_run(
    tool: LoadTool, url: str, path: str, duration: float, headers: dict[str, str]
) -> tuple[Load, str]:
    """Run the load and, half-way through, note how its connections are spread over processes."""
    port = int(url.rsplit(":", 1)[1])
    split: list[str] = []
    probe = threading.Timer(duration / 2, lambda: split.append(connection_split(port)))
    probe.start()
    load = tool.run(url + path, duration=duration, headers=headers)
    probe.join()
    return load, split[0] if split else "?"


def measure(args: argparse.Namespace) -> Run:
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as tmp:
        workdir = Path(tmp)
        progress("preparing a demo database ...")
        env = demo_environment(workdir, args.src)
        tool = LoadTool(workdir, prefer=args.load)
        busy_before = busy_elsewhere()
        auth: dict[str, str] | None = None
        rows: list[Row] = []
        for target in TARGETS:
            progress(f"{target.setup}: {target.endpoint} ...")
            log = workdir / "server.log"
            with serving(target.command, env=env, workdir=workdir, log=log) as url:
                headers: dict[str, str] = {}
                if target.authenticated:
                    auth = auth or sign_in(url)
                    headers = auth
                tool.run(url + target.path, duration=args.warmup, headers=headers)
                load, split = probed_run(tool, url, target.path, args.duration, headers)
                bound = load.client_cpu >= 0.85 * tool.threads
                rows.append(Row(target, load, bound, split))
        return Run(rows=rows, tool=tool.name, busy_before=busy_before)


# --- the report --------------------------------------------------------------------------------


def report(run: Run, *, args: argparse.Namespace) -> None:
    print(
        f"API baseline, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPU cores "
        f"({platform.machine()}, Python {platform.python_version()}); load: {run.tool}, "
        f"{CONNECTIONS} connections, {args.duration:g} s per endpoint after {args.warmup:g} s "
        "warm-up; servers run one at a time, the load generator shares the cores with them"
    )
    print(f"Doorstep source: {source(args.src)}")
    if run.busy_before is not None:
        note = " (other work was running: figures are low and noisy)"
        print(
            f"CPU used by other processes just before the run: {run.busy_before:.0%}"
            + (note if run.busy_before > 0.10 else "")
        )
    print()
    header = (
        f"{'server':<28} {'endpoint':<22} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'vs bare':>8} {'conns/process':>14} {'client CPU':>11}"
    )
    print(header)
    print("-" * len(header))
    bare = {row.target.setup: row for row in run.rows if row.target.reference}
    for row in run.rows:
        load, target = row.load, row.target
        ratio = load.rps / bare[target.setup].load.rps
        flag = " *" if row.client_bound else ""
        print(
            f"{target.setup:<28} {target.endpoint:<22} {load.rps:>8.0f} {load.p50_ms:>8.1f} "
            f"{load.p95_ms:>8.1f} {load.p99_ms:>8.1f} {ratio:>8.0%} {row.split:>14} "
            f"{load.client_cpu:>10.0%}{flag}"
        )
    if any(row.client_bound for row in run.rows):
        print(
            "* the load generator ran flat out: that figure is its limit, not the server's "
            "(install wrk for a faster client)"
        )
    print()
    framework = {row.target.setup: row for row in run.rows if row.target.endpoint == FASTAPI}
    for row in run.rows:
        if not row.target.authenticated:
            continue
        reference = bare[row.target.setup]
        floor = framework.get(row.target.setup)
        if floor is not None:
            print(
                f"{row.target.setup}: a bare FastAPI route reaches "
                f"{floor.load.rps / reference.load.rps:.0%} of bare Starlette; {ME} reaches "
                f"{row.load.rps / floor.load.rps:.0%} of that bare FastAPI route"
            )
        ratio = row.load.rps / reference.load.rps
        verdict = (
            "meets the aim"
            if ratio >= AIM_RATIO and row.load.p95_ms < AIM_P95_MS
            else "misses the aim"
        )
        if reference.client_bound:
            verdict += " (the bare figure is client-bound, so the ratio flatters Doorstep)"
        print(
            f"{row.target.setup}: {ME} at {ratio:.0%} of bare throughput "
            f"(aim >= {AIM_RATIO:.0%}), p95 {row.load.p95_ms:.1f} ms "
            f"(aim < {AIM_P95_MS:g} ms): {verdict}"
        )


def source(src: Path | None) -> str:
    """Which Doorstep was measured: the tree, its commit, and whether it had local changes."""
    import doorstep

    tree = src.resolve() if src is not None else Path(doorstep.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return f"{tree} (not a git checkout)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{tree} at {commit}" + (f", uncommitted: {', '.join(changed)}" if changed else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Throughput and latency of GET /api/auth/me against a bare Starlette endpoint."
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds of load per endpoint (default 10)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 s per endpoint, 1 s warm-up (overrides --duration)",
    )
    parser.add_argument(
        "--load",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="load generator (default: wrk when installed, else bench/httpx_load.py)",
    )
    parser.add_argument(
        "--src",
        type=Path,
        default=None,
        help="Doorstep source tree to serve instead of the installed one (e.g. a snapshot)",
    )
    args = parser.parse_args()
    if args.duration <= 0:
        parser.error("--duration must be positive")
    if args.quick:
        args.duration = 3.0
    args.warmup = 1.0 if args.quick else 2.0
    report(measure(args), args=args)


if __name__ == "__main__":
    main()
