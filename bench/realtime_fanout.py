"""Real-time fan-out (issue 3): Doorstep's /ws hub against a python-socketio broadcast.

One server process (uvicorn, as `doorstep serve` runs it) and N real WebSocket clients in a
separate process, all subscribed to one channel. A publisher makes changes at a steady rate and
every client records when each one arrives. For each N (1,000 and 5,000 by default):

* Doorstep: `doorstep serve` on a fresh SQLite database with the demo data; the clients connect
  to `/ws?token=<admin JWT>&channels=tenant:<id>`; the publisher sends `PATCH /api/users/{id}`
  with a new phone number, so the `user.updated` event carries a sequence number.
* Socket.IO reference: `python-socketio` (`AsyncServer(async_mode="asgi")`) under the same
  uvicorn settings (this file, `serve-socketio`); the clients join one room on connect and the
  publisher's `POST /publish` emits the same message shape to that room.

The clients are a minimal WebSocket client on uvloop (an `asyncio.Protocol` with a hand-written
frame parser, no per-connection task; for the reference it speaks Engine.IO 4 / Socket.IO 5 over
the WebSocket itself). Client libraries do more work per message, and on a two-core machine the
client process shares the cores with the server under test, so a heavy client would measure
itself. Its CPU use is printed next to the figures.

The publisher sends one change at a time on a fixed schedule (a change whose slot comes while the
previous one is in flight waits for it, so a slow server lowers the achieved rate, printed);
`--overlap` sends each change at its slot regardless. Latency is "request sent -> received": the
publisher's `time.time()` just before it sends the change, against the client's `time.time()`
when the bytes reach its event loop (one machine, one clock). "ts -> received" measures from the
event's own `ts` (Doorstep: the outbox row's `created_at` inside the transaction; Socket.IO:
when the handler emits). Memory per connection is the server's RSS after all clients connected
minus before, divided by N. Every server is started fresh for each measurement and runs alone,
after the machine has gone quiet (`--wait-quiet`); the CPU other processes used meanwhile is
printed.

    .venv/bin/python bench/realtime_fanout.py --nice -5  # 1,000 and 5,000 clients, 1/s, 30 s
    .venv/bin/python bench/realtime_fanout.py --quick    # 100 clients, 10/s, 3 s
    .venv/bin/python bench/realtime_fanout.py --clients 5000 --rate 20 --seconds 10
    .venv/bin/python bench/realtime_fanout.py --systems doorstep --src /tmp/patched/src --json x

(`--src` serves a patched copy of Doorstep's `src/` to try a change; `--json` also writes each
change's send, ts, first and last receipt.) The script prints figures and compares them with the
aim (p99 under 100 ms at 5,000 clients, nothing lost, faster than python-socketio); it fails
only when something does not work. Results and findings: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import resource
import secrets
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import httpx

BENCH = Path(__file__).resolve()
ROOT = BENCH.parent.parent
ADMIN = "admin@doorstep.demo"
PASSWORD = "doorstep-demo"  # noqa: S105 - the published demo password
SYSTEMS = ("doorstep", "socketio")
ROOM = "tenant:1"
EVENT = "user.updated"
AIM_P99_MS = 100.0
AIM_CLIENTS = 5000
CLIENT_PING_SECONDS = 30.0  # what static/js/live.js does, so the server's idle timeout holds


# --- file descriptors ------------------------------------------------------------------------


def raise_nofile() -> int:
    """Lift the soft descriptor limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the minimal WebSocket client ------------------------------------------------------------


class Recorder:
    """Everything the clients of one process received, as flat arrays."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.conns = array("I")
        self.seqs = array("I")
        self.times = array("d")
        self.ts: dict[int, float] = {}
        self.received = 0
        self.other = Counter[str]()

    def event(self, conn: int, msg: dict[str, Any], now: float) -> None:
        kind = msg.get("type")
        if kind != EVENT:
            self.other[str(kind)] += 1
            return
        phone = msg["data"].get("phone") or ""
        if not phone.startswith(self.prefix):
            self.other["foreign"] += 1
            return
        seq = int(phone[len(self.prefix) :])
        self.conns.append(conn)
        self.seqs.append(seq)
        self.times.append(now)
        self.received += 1
        if seq not in self.ts:
            self.ts[seq] = datetime.fromisoformat(msg["ts"]).timestamp()


class Client(asyncio.Protocol):
    """One WebSocket connection: handshake, unmasked server frames in, masked frames out."""

    def __init__(
        self, index: int, host: str, port: int, path: str, recorder: Recorder, deflate: bool
    ) -> None:
        self.index = index
        self.recorder = recorder
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.inflater: Any = None
        self.offer_deflate = deflate
        key = base64.b64encode(os.urandom(16)).decode()
        extension = (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            if deflate
            else ""
        )
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{extension}\r\n"
        ).encode()

    # asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection {self.index} lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            if not head.startswith("HTTP/1.1 101"):
                self._fail(ConnectionError(f"handshake refused: {head.splitlines()[0]}"))
                return
            self.upgraded = True
            if "permessage-deflate" in head.lower():
                self.inflater = zlib.decompressobj(-15)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, header = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, header = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, header = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < header + length:
                break
            payload = bytes(buf[pos + header : pos + header + length])
            pos += header + length
            if b0 & 0x40:  # RSV1: a compressed message (permessage-deflate, context kept)
                payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            opcode = b0 & 0x0F
            if opcode == 0x1:
                self.on_text(payload, now)
            elif opcode == 0x9:
                self.send_frame(0xA, payload)
            elif opcode == 0x8:
                self._fail(ConnectionError(f"connection {self.index} closed: {payload[:80]!r}"))
            elif opcode == 0x0:  # the servers measured here never fragment
                self._fail(ConnectionError("fragmented message"))
        if pos:
            del buf[:pos]

    # frames ----------------------------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.transport.write(head + mask + body)

    def send_text(self, text: str) -> None:
        self.send_frame(0x1, text.encode())

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send_frame(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        for future in (self.ready, self.lost):
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: a late loss is counted, not logged

    # the application protocol ----------------------------------------------------------------

    def on_text(self, payload: bytes, now: float) -> None:
        raise NotImplementedError

    def keepalive(self) -> None:
        """What a live client sends now and then."""


class DoorstepClient(Client):
    def on_text(self, payload: bytes, now: float) -> None:
        msg = json.loads(payload)
        if msg.get("type") == "hello" and not self.ready.done():
            self.ready.set_result(None)
            return
        self.recorder.event(self.index, msg, now)

    def keepalive(self) -> None:
        self.send_text('{"type": "ping"}')


class SocketioClient(Client):
    """Engine.IO v4 over a WebSocket from the start, Socket.IO v5 default namespace."""

    def on_text(self, payload: bytes, now: float) -> None:
        if payload[:2] == b"42":  # Engine.IO message + Socket.IO EVENT: ["name", data]
            _name, msg = json.loads(payload[2:])
            self.recorder.event(self.index, msg, now)
        elif payload == b"2":  # Engine.IO ping (the server pings; the client answers)
            self.send_text("3")
        elif payload[:1] == b"0":  # Engine.IO open: join the default namespace
            self.send_text("40")
        elif payload[:2] == b"40" and not self.ready.done():  # Socket.IO CONNECT ack
            self.ready.set_result(None)


@dataclass(frozen=True)
class ClientSpec:
    system: str
    host: str
    port: int
    path: str
    first: int
    count: int
    prefix: str
    deflate: bool
    batch: int


async def open_clients(spec: ClientSpec, recorder: Recorder) -> list[Client]:
    loop = asyncio.get_running_loop()
    kind = DoorstepClient if spec.system == "doorstep" else SocketioClient
    clients: list[Client] = []
    for start in range(spec.first, spec.first + spec.count, spec.batch):
        stop = min(start + spec.batch, spec.first + spec.count)

        async def one(index: int) -> Client:
            _, client = await loop.create_connection(
                lambda index=index: kind(  # type: ignore[misc]
                    index, spec.host, spec.port, spec.path, recorder, spec.deflate
                ),
                spec.host,
                spec.port,
            )
            await asyncio.wait_for(client.ready, timeout=60)
            return client

        clients.extend(await asyncio.gather(*(one(i) for i in range(start, stop))))
    return clients


async def client_main(spec: ClientSpec, out: Path) -> None:
    """The `clients` subcommand: connect, say READY, record until told to STOP, dump."""
    loop = asyncio.get_running_loop()
    recorder = Recorder(spec.prefix)
    began = time.perf_counter()
    clients = await open_clients(spec, recorder)
    connect_seconds = time.perf_counter() - began
    deflated = sum(1 for c in clients if c.inflater is not None)
    print(f"{len(clients)} connected, {deflated} with permessage-deflate", file=sys.stderr)
    print("READY", flush=True)

    async def keepalive() -> None:
        tick = 0
        while True:
            await asyncio.sleep(1)
            tick += 1
            for client in clients[tick % int(CLIENT_PING_SECONDS) :: int(CLIENT_PING_SECONDS)]:
                client.keepalive()

    pinger = asyncio.create_task(keepalive())
    cpu_start = wall_start = 0.0
    expected_each = 0
    drain_seconds = 0.0
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "STOP":
            if line:
                expected_each, drain_seconds = int(line[1]), float(line[2])
            break
        if line[0] == "GO":
            cpu_start, wall_start = _cpu_seconds(), time.perf_counter()
    deadline = time.perf_counter() + drain_seconds
    while recorder.received < expected_each * len(clients) and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    cpu = (_cpu_seconds() - cpu_start) / max(time.perf_counter() - wall_start, 1e-9)
    lost_connections = sum(1 for c in clients if c.lost.done())
    pinger.cancel()
    for client in clients:
        client.close()
    recorder.conns.tofile(out.with_suffix(".conn").open("wb"))
    recorder.seqs.tofile(out.with_suffix(".seq").open("wb"))
    recorder.times.tofile(out.with_suffix(".time").open("wb"))
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "ts": recorder.ts,
                "cpu": cpu,
                "connect_seconds": connect_seconds,
                "lost_connections": lost_connections,
                "other": recorder.other,
            }
        )
    )
    print("DONE", flush=True)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_clients(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="realtime_fanout.py clients")
    parser.add_argument("--system", choices=SYSTEMS, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    raise_nofile()
    spec = ClientSpec(
        system=args.system,
        host="127.0.0.1",
        port=args.port,
        path=args.path,
        first=args.first,
        count=args.count,
        prefix=args.prefix,
        deflate=args.deflate,
        batch=args.batch,
    )
    import uvloop

    uvloop.run(client_main(spec, args.out))


# --- the python-socketio reference server ----------------------------------------------------


def serve_socketio(argv: list[str]) -> None:
    """The `serve-socketio` subcommand: the reference, under doorstep serve's uvicorn settings."""
    import socketio
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    parser = argparse.ArgumentParser(prog="realtime_fanout.py serve-socketio")
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args(argv).port
    raise_nofile()
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])

    async def connect(sid: str, _environ: dict[str, Any]) -> None:
        await sio.enter_room(sid, ROOM)

    sio.on("connect", connect)

    async def publish(request: Request) -> Response:
        body = await request.json()
        # The shape of Doorstep's `user.updated` message, stamped when it is emitted.
        msg = {
            "id": body["seq"],
            "type": EVENT,
            "ts": datetime.now(UTC).isoformat(),
            "data": {
                "user_id": body["user_id"],
                "full_name": "Demo Admin",
                "role": "admin",
                "is_active": True,
                "phone": body["phone"],
            },
        }
        await sio.emit(EVENT, msg, room=ROOM)
        return Response(status_code=204)

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "clients": len(sio.manager.rooms.get("/", {}))})

    routes = [Route("/publish", publish, methods=["POST"]), Route("/readyz", health)]
    app = socketio.ASGIApp(sio, other_asgi_app=Starlette(routes=routes))
    # The same call `doorstep serve` makes (src/doorstep/cli.py).
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=True)


# --- the orchestrator ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_ticks(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all processes of the machine have used so far (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Case:
    system: str
    clients: int
    deflate: bool
    published: int = 0
    publish_failures: dict[str, int] = field(default_factory=dict)
    achieved_rate: float = 0.0  # changes sent per second
    expected: int = 0
    delivered: int = 0
    duplicates: int = 0
    lost_connections: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    ts_p50_ms: float = 0.0
    ts_p99_ms: float = 0.0
    span_p50_ms: float = 0.0  # first client to last client, per event
    span_max_ms: float = 0.0
    request_p50_ms: float = 0.0  # the publisher's request round trip
    request_p99_ms: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    kib_per_connection: float = 0.0
    connect_seconds: float = 0.0
    server_cpu: float = 0.0  # cores busy while publishing and draining (1.0 = one core)
    client_cpu: float = 0.0
    other_cpu: float = 0.0  # everything else on the machine (publisher included), same window
    server_us_per_message: float = 0.0  # server CPU while publishing / messages delivered
    idle_wait_seconds: float = 0.0  # how long the machine took to become quiet beforehand
    # Per change (--json only): sent (s from the first), then ts / first / last receipt in ms.
    events: list[dict[str, float]] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


class Env:
    """A migrated, seeded SQLite database and the environment every server gets."""

    def __init__(self, workdir: Path, src: Path) -> None:
        self.workdir = workdir
        self.env = {
            **os.environ,
            "DOORSTEP_DATABASE_URL": f"sqlite:///{workdir / 'doorstep.db'}",
            "DOORSTEP_SECRET_KEY": secrets.token_urlsafe(36),  # 48 characters
            "DOORSTEP_ACCESS_TOKEN_MINUTES": "600",
            "DOORSTEP_SECURE_COOKIES": "false",
            "DOORSTEP_JOBS_PATH": str(workdir / "jobs.db"),
            "PYTHONPATH": str(src),
        }
        self.env.pop("DOORSTEP_REDIS_URL", None)
        for command in (["migrate"], ["seed-demo"]):
            subprocess.run(
                [sys.executable, "-m", "doorstep.cli", *command],
                env=self.env,
                cwd=workdir,
                check=True,
                capture_output=True,
            )


@contextmanager
def server(system: str, env: Env, port: int, tag: str) -> Iterator[subprocess.Popen[bytes]]:
    command = (
        [sys.executable, "-m", "doorstep.cli", "serve", "--port", str(port)]
        if system == "doorstep"
        else [sys.executable, str(BENCH), "serve-socketio", "--port", str(port)]
    )
    log = env.workdir / f"server-{tag}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command, env=env.env, cwd=env.workdir, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{system} server exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{system} server did not become ready")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Target:
    """Where the publisher sends its changes and what the clients subscribe to."""

    base_url: str
    token: str
    user_id: int
    ws_path: str


def doorstep_target(port: int) -> Target:
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as http:
        response = http.post("/api/auth/token", data={"username": ADMIN, "password": PASSWORD})
        response.raise_for_status()
        token = response.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        me = http.get("/api/auth/me", headers=headers).json()
        users = http.get("/api/users", params={"per_page": 100}, headers=headers).json()["items"]
    # Any other person of the tenant: the admin audience still receives the change.
    user_id = next(u["id"] for u in users if u["id"] != me["id"])
    channel = f"tenant:{me['tenant_id']}"
    return Target(base, token, user_id, f"/ws?token={quote(token)}&channels={quote(channel)}")


def socketio_target(port: int) -> Target:
    return Target(f"http://127.0.0.1:{port}", "", 2, "/socket.io/?EIO=4&transport=websocket")


@dataclass
class Published:
    sent: dict[int, float]  # send time (time.time()) of each change that succeeded, by seq
    durations: list[float]  # request round trips
    failures: Counter[str]
    seconds: float  # first send to last reply


async def publish(
    system: str, target: Target, prefix: str, rate: float, seconds: float, *, overlap: bool
) -> Published:
    """Send `rate * seconds` changes on a fixed schedule.

    One at a time by default, as one person editing would: a change whose slot comes while the
    previous one is still in flight waits for it, so a slow server lowers the achieved rate
    (printed). With `overlap` every change goes at its slot without waiting for replies."""
    count = max(1, round(rate * seconds))
    result = Published({}, [], Counter(), 0.0)
    headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=target.base_url, headers=headers, limits=limits, timeout=60
    ) as http:

        async def one(seq: int) -> None:
            phone = f"{prefix}{seq}"
            at = time.time()
            began = time.perf_counter()
            try:
                if system == "doorstep":
                    response = await http.patch(
                        f"/api/users/{target.user_id}", json={"phone": phone}
                    )
                else:
                    body = {"seq": seq, "phone": phone, "user_id": target.user_id}
                    response = await http.post("/publish", json=body)
            except httpx.HTTPError as exc:
                result.failures[type(exc).__name__] += 1
                return
            result.durations.append(time.perf_counter() - began)
            if response.is_success:
                result.sent[seq] = at
            else:
                result.failures[f"HTTP {response.status_code}"] += 1

        # One untimed change first (a prefix the clients ignore): opens the keep-alive
        # connection and takes each server's first-request costs out of the figures.
        if system == "doorstep":
            warm = await http.patch(f"/api/users/{target.user_id}", json={"phone": "+0-warm"})
        else:
            body = {"phone": "+0-warm", "seq": 0, "user_id": target.user_id}
            warm = await http.post("/publish", json=body)
        warm.raise_for_status()
        await asyncio.sleep(0.5)
        start = time.perf_counter() + 0.1
        tasks = []
        for seq in range(count):
            await asyncio.sleep(max(0.0, start + seq / rate - time.perf_counter()))
            if overlap:
                tasks.append(asyncio.create_task(one(seq)))
            else:
                await one(seq)
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - start
    return result


async def warm_up(system: str, port: int, path: str) -> None:
    """A few connections in and out first, so one-off imports and pools are not per-client."""
    spec = ClientSpec(system, "127.0.0.1", port, path, 0, 20, "warm", False, 20)
    for client in await open_clients(spec, Recorder("warm")):
        client.close()
    await asyncio.sleep(0.5)


def wait_line(process: subprocess.Popen[str], word: str, timeout: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"client process exited ({process.returncode}) before {word}")
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline().strip()
            if line == word:
                return
            if line:
                raise RuntimeError(f"client process said {line!r}, expected {word}")
    raise TimeoutError(f"client process did not say {word} within {timeout:.0f} s")


def tell(processes: list[subprocess.Popen[str]], line: str) -> None:
    for process in processes:
        stdin = process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()


def wait_for_quiet(limit: float, tag: str) -> float:
    """Wait (up to `limit` s) until the rest of the machine uses under 0.1 core for 3 s.

    Other work on a two-core machine changes every figure here; the "other CPU" column says
    how much there was while measuring."""
    began = time.perf_counter()
    while True:
        busy = machine_busy()
        time.sleep(3)
        load = (machine_busy() - busy) / 3
        waited = time.perf_counter() - began
        if load < 0.1 or waited >= limit:
            if waited > 4:
                print(f"  {tag}: waited {waited:.0f} s for a quiet machine", file=sys.stderr)
            return waited
        print(f"  {tag}: machine busy ({load:.2f} cores elsewhere), waiting", file=sys.stderr)


def measure(system: str, n: int, env: Env, args: argparse.Namespace, deflate: bool) -> Case:
    case = Case(system=system, clients=n, deflate=deflate)
    tag = f"{system}-{n}{'-deflate' if deflate else ''}"
    prefix = f"+1-{secrets.token_hex(3)}-"
    port = free_port()
    case.idle_wait_seconds = wait_for_quiet(args.wait_quiet, tag)
    print(f"  {tag}: starting the server", file=sys.stderr, flush=True)
    with server(system, env, port, tag) as proc:
        target = doorstep_target(port) if system == "doorstep" else socketio_target(port)
        asyncio.run(warm_up(system, port, target.ws_path))
        case.rss_before_kib = rss_kib(proc.pid)
        procs_n = max(1, args.client_procs)
        shares = [n // procs_n + (1 if i < n % procs_n else 0) for i in range(procs_n)]
        clients: list[subprocess.Popen[str]] = []
        outs: list[Path] = []
        first = 0
        try:
            for i, share in enumerate(shares):
                out = env.workdir / f"recv-{tag}-{i}"
                outs.append(out)
                command = [
                    sys.executable,
                    str(BENCH),
                    "clients",
                    f"--system={system}",
                    f"--port={port}",
                    f"--path={target.ws_path}",
                    f"--first={first}",
                    f"--count={share}",
                    f"--prefix={prefix}",
                    f"--out={out}",
                ] + (["--deflate"] if deflate else [])
                first += share
                log = (env.workdir / f"clients-{tag}-{i}.log").open("w")
                clients.append(
                    subprocess.Popen(
                        command,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        cwd=env.workdir,
                    )
                )
            print(f"  {tag}: connecting {n} clients", file=sys.stderr, flush=True)
            for process in clients:
                wait_line(process, "READY", 600)
            time.sleep(1.0)
            case.rss_after_kib = rss_kib(proc.pid)
            case.kib_per_connection = (case.rss_after_kib - case.rss_before_kib) / n
            print(f"  {tag}: publishing", file=sys.stderr, flush=True)
            tell(clients, "GO")
            cpu0, busy0, wall0 = cpu_ticks(proc.pid), machine_busy(), time.perf_counter()
            published = asyncio.run(
                publish(system, target, prefix, args.rate, args.seconds, overlap=args.overlap)
            )
            tell(clients, f"STOP {len(published.sent)} {args.drain}")
            for process in clients:
                wait_line(process, "DONE", args.drain + 120)
            wall = time.perf_counter() - wall0
            server_seconds = cpu_ticks(proc.pid) - cpu0
            case.server_cpu = server_seconds / wall
            machine_cpu = (machine_busy() - busy0) / wall
            for process in clients:
                process.wait(timeout=60)
        finally:
            for process in clients:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    summarise(case, outs, published)
    case.other_cpu = max(0.0, machine_cpu - case.server_cpu - case.client_cpu)
    case.server_us_per_message = server_seconds / max(case.delivered, 1) * 1e6
    return case


def summarise(case: Case, outs: list[Path], published: Published) -> None:
    sent, durations = published.sent, published.durations
    events = max(sent) + 1 if sent else 0
    case.published = len(sent)
    case.publish_failures = dict(published.failures)
    case.achieved_rate = (len(sent) + published.failures.total()) / max(published.seconds, 1e-9)
    case.expected = case.clients * len(sent)
    seen = bytearray(case.clients * max(events, 1))
    latencies: list[float] = []
    from_ts: list[float] = []
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    ts: dict[int, float] = {}
    cpu = connect = 0.0
    for out in outs:
        meta = json.loads(out.with_suffix(".json").read_text())
        ts.update({int(k): v for k, v in meta["ts"].items()})
        cpu += meta["cpu"]
        connect = max(connect, meta["connect_seconds"])
        case.lost_connections += meta["lost_connections"]
        conns, seqs, times = array("I"), array("I"), array("d")
        for arr, suffix in ((conns, ".conn"), (seqs, ".seq"), (times, ".time")):
            data = out.with_suffix(suffix).read_bytes()
            arr.frombytes(data)
        for conn, seq, at in zip(conns, seqs, times, strict=True):
            start = sent.get(seq)
            if start is None:
                continue
            slot = conn * events + seq
            if seen[slot]:
                case.duplicates += 1
                continue
            seen[slot] = 1
            latencies.append(at - start)
            from_ts.append(at - ts[seq])
            first[seq] = min(first.get(seq, at), at)
            last[seq] = max(last.get(seq, at), at)
    case.delivered = len(latencies)
    case.client_cpu, case.connect_seconds = cpu, connect
    latencies.sort()
    from_ts.sort()
    spans = sorted(last[s] - first[s] for s in first)
    t0 = min(sent.values(), default=0.0)
    case.events = [
        {
            "seq": seq,
            "sent_s": round(sent[seq] - t0, 4),
            "ts_ms": round((ts[seq] - sent[seq]) * 1e3, 1),
            "first_ms": round((first[seq] - sent[seq]) * 1e3, 1),
            "last_ms": round((last[seq] - sent[seq]) * 1e3, 1),
        }
        for seq in sorted(first)
    ]
    durations.sort()
    case.p50_ms, case.p99_ms = percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3
    case.max_ms = latencies[-1] * 1e3 if latencies else float("nan")
    case.ts_p50_ms = percentile(from_ts, 0.5) * 1e3
    case.ts_p99_ms = percentile(from_ts, 0.99) * 1e3
    case.span_p50_ms = percentile(spans, 0.5) * 1e3
    case.span_max_ms = (spans[-1] if spans else float("nan")) * 1e3
    case.request_p50_ms = percentile(durations, 0.5) * 1e3
    case.request_p99_ms = percentile(durations, 0.99) * 1e3


# --- the report --------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def source(src: Path) -> str:
    """Which Doorstep was measured: the commit, and whether its tree had local changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return f"{src} (not a git checkout)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{src} at {commit}" + (f", uncommitted: {', '.join(changed)}" if changed else "")


def table(cases: list[Case]) -> str:
    rows = [
        "| clients | server | changes/s | delivered / expected | p50 ms | p99 ms | max ms "
        "| ts→recv p99 ms | fan-out span p50 / max ms | publish req p50 / p99 ms | RSS KiB / conn "
        "| server CPU | server µs / msg | client CPU | other CPU |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        name = "Doorstep /ws" if c.system == "doorstep" else "python-socketio"
        if c.deflate:
            name += " (deflate)"
        rows.append(
            f"| {c.clients:,} | {name} | {c.achieved_rate:.1f} | {c.delivered:,} / {c.expected:,} "
            f"| {c.p50_ms:.1f} "
            f"| {c.p99_ms:.1f} | {c.max_ms:.1f} | {c.ts_p99_ms:.1f} "
            f"| {c.span_p50_ms:.1f} / {c.span_max_ms:.1f} "
            f"| {c.request_p50_ms:.1f} / {c.request_p99_ms:.1f} | {c.kib_per_connection:.1f} "
            f"| {c.server_cpu:.2f} | {c.server_us_per_message:.1f} | {c.client_cpu:.2f} "
            f"| {c.other_cpu:.2f} |"
        )
    return "\n".join(rows)


def verdict(cases: list[Case]) -> list[str]:
    lines = []
    by = {(c.system, c.clients, c.deflate): c for c in cases}
    for c in cases:
        if c.publish_failures or c.lost_connections:
            lines.append(
                f"{c.system} {c.clients:,}: failed changes {c.publish_failures}, "
                f"connections lost {c.lost_connections}"
            )
        if c.system != "doorstep":
            continue
        ref = by.get(("socketio", c.clients, c.deflate))
        lost = c.expected - c.delivered
        parts = [
            f"{c.clients:,} clients{' (deflate)' if c.deflate else ''}: "
            f"p99 {c.p99_ms:.1f} ms "
            f"({'under' if c.p99_ms < AIM_P99_MS else 'NOT under'} {AIM_P99_MS:.0f} ms)",
            "nothing lost" if lost == 0 else f"{lost:,} LOST",
        ]
        if ref is not None:
            faster = c.p99_ms < ref.p99_ms
            parts.append(
                f"python-socketio p99 {ref.p99_ms:.1f} ms "
                f"({'Doorstep faster' if faster else 'Doorstep NOT faster'})"
            )
        lines.append("; ".join(parts))
    return lines


def _floor_reader(port: int, n: int, size: int, rounds: int, done: Any) -> None:
    """The floor's client side: `n` connections read with epoll, as the clients process does;
    reports on `done` after each round's last byte."""
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    done.send("connected")
    poller = select.epoll()
    for sock in sockets:
        sock.setblocking(False)
        poller.register(sock.fileno(), select.EPOLLIN)
    by_fd = {sock.fileno(): sock for sock in sockets}
    for _ in range(rounds):
        received = 0
        while received < n * size:
            for fd, _event in poller.poll():
                received += len(by_fd[fd].recv(65536))
        done.send("round")
    for sock in sockets:
        sock.close()


def send_floor(n: int, size: int = 330, rounds: int = 5) -> tuple[float, float]:
    """The kernel's share: milliseconds to write `size` bytes once to each of `n` loopback TCP
    connections with plain `socket.send` from one thread, while another process reads them
    with epoll (as the clients do), and milliseconds until that reader has the last byte;
    medians of `rounds`. No framework, no WebSocket framing, no request before the fan-out: any
    one-process fan-out to `n` clients on this machine pays at least this."""
    import multiprocessing

    listener = socket.create_server(("127.0.0.1", 0), backlog=n)
    parent, child = multiprocessing.Pipe()
    reader = multiprocessing.get_context("fork").Process(
        target=_floor_reader, args=(listener.getsockname()[1], n, size, rounds, child)
    )
    reader.start()
    writers = []
    try:
        for _ in range(n):
            writer, _address = listener.accept()
            writer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            writers.append(writer)
        parent.recv()  # connected
        payload, written, read = b"x" * size, [], []
        for _ in range(rounds):
            started = time.perf_counter()
            for writer in writers:
                writer.send(payload)
            written.append((time.perf_counter() - started) * 1000)
            parent.recv()  # the reader has it all
            read.append((time.perf_counter() - started) * 1000)
        return statistics.median(written), statistics.median(read)
    finally:
        reader.join(timeout=30)
        for sock in (*writers, listener):
            sock.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        run_clients(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "serve-socketio":
        serve_socketio(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1000,5000", help="comma-separated client counts")
    parser.add_argument("--rate", type=float, default=1.0, help="changes per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to publish")
    parser.add_argument("--drain", type=float, default=30.0, help="wait for stragglers (s)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="doorstep,socketio")
    parser.add_argument("--client-procs", type=int, default=1, help="client processes")
    parser.add_argument(
        "--deflate", action="store_true", help="clients offer permessage-deflate, as browsers do"
    )
    parser.add_argument(
        "--overlap", action="store_true", help="send each change at its slot without waiting"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=600.0,
        help="before each measurement, wait up to this long for other processes to go quiet",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling priority for the servers, clients and publisher (root may go below 0)",
    )
    parser.add_argument("--quick", action="store_true", help="100 clients, 10/s for 3 s")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--src",
        type=Path,
        default=ROOT / "src",
        help="Doorstep source tree to serve (to try a change to platform/realtime.py)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds, args.rate = "100", 3.0, 10.0
    counts = [int(x) for x in args.clients.split(",") if x]
    systems = [s for s in args.systems.split(",") if s]
    if args.nice:
        os.nice(args.nice)  # inherited by every process this script starts
    limit = raise_nofile()
    if limit < max(counts) + 200:
        sys.exit(f"file-descriptor limit {limit} is too low for {max(counts)} clients")
    started = datetime.now(UTC)
    print(f"machine: {machine()}", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="doorstep-fanout-"))
    cases: list[Case] = []
    try:
        env = Env(workdir, args.src.resolve())
        for n in counts:
            for system in systems:
                cases.append(measure(system, n, env, args, args.deflate))
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"Real-time fan-out, {started:%Y-%m-%d %H:%M} UTC; {machine()}; "
        f"{args.rate:g} changes/s for {args.seconds:g} s; {args.client_procs} client process(es)"
        + (f"; nice {args.nice}" if args.nice else "")
    )
    print(f"Doorstep source: {source(args.src.resolve())}")
    print()
    print(table(cases))
    print()
    for n in counts:
        written, read = send_floor(n)
        print(
            f"kernel floor: {written:.1f} ms to write one 330-byte message to each of {n:,} "
            f"loopback sockets read by another process, {read:.1f} ms until it has read them all "
            "(socket.send and epoll, no framework, no request: what any one-process fan-out "
            "on this machine pays)"
        )
    for line in verdict(cases):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in cases], indent=2))


if __name__ == "__main__":
    main()
