"""Machinery of the real-time tests: demo databases, real server processes that can be killed and
restarted, API calls, and WebSocket clients that keep every message they receive.

Everything waits on conditions (a message arrived, a row exists, a process exited), each with a
generous deadline, never on fixed sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import redis
import websockets
from sqlalchemy import Engine, delete, select
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from doorstep.platform.auth import User
from doorstep.platform.db import make_engine
from doorstep.platform.events import Event
from tests.conftest import RUN_ID, free_port, start_server
from tests.databases import REDIS, copy_of

DEMO_PASSWORD = "doorstep-demo"
ADMIN = "admin@doorstep.demo"
AGENT = "agent@doorstep.demo"
BUYER = "buyer@doorstep.demo"
HARBOR_ADMIN = "admin@harborhomes.demo"
TIMEOUT = 30.0  # generous: a loaded CI machine must never fail a wait that would succeed


# --- a database with the demo data, and server processes on it ---------------------------------


@dataclass
class Site:
    """One demo database (migrated and seeded by the CLI, as a user does) and how to serve it."""

    workdir: Path
    database_url: str
    env: dict[str, str]
    engine: Engine

    def user_id(self, email: str) -> int:
        with self.engine.connect() as conn:
            found = conn.scalar(select(User.id).where(User.email == email))
        assert found is not None, email
        return int(found)

    def tenant_of(self, email: str) -> int:
        with self.engine.connect() as conn:
            found = conn.scalar(select(User.tenant_id).where(User.email == email))
        assert found is not None, email
        return int(found)

    def events(self, *, tenant_id: int, after: int = 0, type_: str | None = None) -> list[Event]:
        stmt = select(Event).where(Event.tenant_id == tenant_id, Event.id > after)
        if type_ is not None:
            stmt = stmt.where(Event.type == type_)
        with self.engine.connect() as conn:
            return [Event(**row._mapping) for row in conn.execute(stmt.order_by(Event.id))]

    def latest_event_id(self, tenant_id: int) -> int:
        rows = self.events(tenant_id=tenant_id)
        return rows[-1].id if rows else 0

    def delete_events(self, *, up_to: int) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(delete(Event).where(Event.id <= up_to)).rowcount)


@contextlib.contextmanager
def demo_site(workdir: Path, label: str, demo_database: str) -> Iterator[Site]:
    """A site of its own on a copy of the demo data (conftest's `demo_database`)."""
    with copy_of(demo_database, workdir, label) as url:
        env = {
            **os.environ,
            "DOORSTEP_DATABASE_URL": url,
            "DOORSTEP_SECRET_KEY": "realtime-secret-" + "z" * 40,
            "DOORSTEP_SECURE_COOKIES": "false",
            "DOORSTEP_REDIS_PREFIX": f"doorstep-rt-{RUN_ID}-{label}",
            "DOORSTEP_JOBS_PATH": str(workdir / "jobs.db"),
            # No job threads beside the requests: jobs play no part here, and on SQLite their
            # writes make concurrent request transactions fail ("database is locked").
            "DOORSTEP_RUN_JOBS_IN_SERVER": "false",
        }
        for name in [k for k in env if k.startswith("DOORSTEP_WS_")]:
            del env[name]
        if REDIS:
            env["DOORSTEP_REDIS_URL"] = REDIS
        else:
            env.pop("DOORSTEP_REDIS_URL", None)
        engine = make_engine(url)
        try:
            yield Site(workdir=workdir, database_url=url, env=env, engine=engine)
        finally:
            engine.dispose()
            if REDIS:
                _forget_redis_keys(env["DOORSTEP_REDIS_PREFIX"])


def _forget_redis_keys(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS or "")
    huey = "huey.redis." + re.sub(r"[^a-z0-9]", "", f"{prefix}:jobs")  # Huey's own naming
    for pattern in (f"{prefix}:*", f"{huey}*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()


@dataclass
class Server:
    """`doorstep serve` in its own process; `kill()` is a SIGKILL, `start()` again restarts it on
    the same port and database."""

    site: Site
    name: str
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Server:
        self.starts += 1
        log = self.site.workdir / f"{self.name}-{self.starts}.log"
        self.process = start_server({**self.site.env, **self.settings}, self.port, log)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was in flight is cut off."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=TIMEOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self) -> str:
        log = self.site.workdir / f"{self.name}-{self.starts}.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""


@contextlib.contextmanager
def running(site: Site, name: str, **settings: str) -> Iterator[Server]:
    server = Server(site, name, settings=settings).start()
    try:
        yield server
    finally:
        server.stop()


# --- the API -------------------------------------------------------------------------------------


def access_token(server: Server, email: str) -> str:
    response = httpx.post(
        f"{server.url}/api/auth/token",
        data={"username": email, "password": DEMO_PASSWORD},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def session_cookie(server: Server, email: str) -> str:
    """Sign in through the login form, as a browser does; returns the session cookie's value."""
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as web:
        page = web.get("/login")
        match = CSRF_INPUT.search(page.text)
        assert match, "login page has no CSRF field"
        response = web.post(
            "/login",
            data={"email": email, "password": DEMO_PASSWORD, "csrf_token": match.group(1)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        cookie = web.cookies.get("doorstep_session")
    assert cookie, "signing in set no session cookie"
    return cookie


@dataclass
class Api:
    """PATCHes users as one signed-in person (Bearer token)."""

    server: Server
    token: str
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=TIMEOUT,
            limits=httpx.Limits(max_keepalive_connections=8),
        )

    async def set_phone(self, user_id: int, phone: str) -> httpx.Response:
        return await self.http.patch(
            f"{self.server.url}/api/users/{user_id}", json={"phone": phone}
        )

    async def changed(self, user_id: int, phone: str) -> None:
        response = await self.set_phone(user_id, phone)
        assert response.status_code == 200, response.text

    async def aclose(self) -> None:
        await self.http.aclose()


# --- WebSocket clients ---------------------------------------------------------------------------

CONTROL = frozenset({"hello", "heartbeat", "pong", "error", "reload", "subscribed"})


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = TIMEOUT
) -> None:
    """Poll a condition that no message signals (a row in the database, a process state)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def ws_url(
    server: Server,
    *,
    token: str | None = None,
    channels: list[str] | None = None,
    last_event_id: int | str | None = None,
) -> str:
    query: dict[str, str] = {}
    if token is not None:
        query["token"] = token
    if channels is not None:
        query["channels"] = ",".join(channels)
    if last_event_id is not None:
        query["last_event_id"] = str(last_event_id)
    return server.ws_url + (f"?{urlencode(query)}" if query else "")


@dataclass
class Client:
    """One WebSocket connection whose messages a background task reads and keeps, in order."""

    connection: ClientConnection
    label: str = "client"
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: ConnectionClosed | None = None
    received_at: list[float] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, label: str = "client", **options: Any) -> Client:
        connection = await websockets.connect(url, compression=None, **options)
        client = cls(connection, label)
        client._reader = asyncio.create_task(client._read(), name=f"ws-reader-{label}")
        return client

    async def _read(self) -> None:
        try:
            while True:  # recv raises ConnectionClosed(OK|Error) once the connection is closed
                raw = await self.connection.recv()
                self.messages.append(json.loads(raw))
                self.received_at.append(time.monotonic())
                self._arrived.set()
        except ConnectionClosed as closed:
            self.closed = closed
        finally:
            self._arrived.set()

    async def wait_for(
        self, check: Callable[[Client], bool], what: str, timeout: float = TIMEOUT
    ) -> None:
        """Wake on every message (or the close) until `check` holds."""
        deadline = time.monotonic() + timeout
        while not check(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.label}: timed out after {timeout}s waiting for {what}; "
                    f"last messages {self.messages[-3:]}, closed {self.closed!r}"
                )
            self._arrived.clear()
            if check(self):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def wait_closed(self, timeout: float = TIMEOUT) -> ConnectionClosed:
        await self.wait_for(lambda c: c.closed is not None, "the connection to close", timeout)
        assert self.closed is not None
        return self.closed

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] in types]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The stream's events: everything but the connection's own control messages."""
        return [m for m in self.messages if m["type"] not in CONTROL]

    def event_ids(self) -> list[int]:
        return [int(m["id"]) for m in self.events]

    def has_event(self, event_id: int) -> bool:
        return any(m["id"] == event_id for m in self.events)

    @property
    def close_code(self) -> int | None:
        return self.closed.rcvd.code if self.closed and self.closed.rcvd else None

    @property
    def close_reason(self) -> str:
        return self.closed.rcvd.reason if self.closed and self.closed.rcvd else ""

    async def pause(self) -> None:
        """Stop reading: frames then pile up in the library's buffer and the socket buffers."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def resume(self) -> None:
        self._reader = asyncio.create_task(self._read(), name=f"ws-reader-{self.label}")

    async def send(self, payload: dict[str, Any] | str) -> None:
        await self.connection.send(payload if isinstance(payload, str) else json.dumps(payload))

    async def close(self) -> None:
        await self.connection.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


async def hello(url: str, label: str = "client", **options: Any) -> Client:
    """Connect and wait for the server's `hello` (the subscription is in place after it)."""
    client = await Client.open(url, label, **options)
    await client.wait_for(
        lambda c: bool(c.of_type("hello")) or c.closed is not None, "the hello message"
    )
    assert client.of_type("hello"), f"{label}: no hello; {client.messages} {client.closed!r}"
    return client


async def refused(url: str, **options: Any) -> Client:
    """Connect to a handshake the server is expected to refuse; returns the closed client."""
    client = await Client.open(url, "refused", **options)
    await client.wait_closed()
    return client
