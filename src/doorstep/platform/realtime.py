"""The WebSocket hub: authorised channel subscriptions, resume from `last_event_id`, heartbeats,
and bounded per-connection queues. Edges (the raw WebSocket here, a Socket.IO edge later) attach
`Subscriber`s to the one `Hub` that the bus feeds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from doorstep.platform.auth import Principal
from doorstep.platform.auth_cache import authenticate_edge
from doorstep.platform.db import utcnow
from doorstep.platform.errors import DoorstepError
from doorstep.platform.events import Event, audience_allows, fetch_after, latest_id
from doorstep.platform.http import SESSION_COOKIE
from doorstep.platform.observability import LatencyWindow
from doorstep.platform.wsserver import EXTENSION, text_frame

log = logging.getLogger("doorstep.realtime")

CHANNEL = re.compile(r"^([a-z_]+):([A-Za-z0-9_-]{1,64})$")
MAX_CHANNELS = 32
FANOUT_SLICE = 250  # subscribers written to per turn of the event loop (about 10 ms)
# Close codes (4000-4999 are the application's): the client reacts to each differently.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_OVERFLOW = 4008  # too slow: reconnect with last_event_id to resume
CLOSE_IDLE = 4000
CLOSE_BAD_INPUT = 4400

ChannelRule = Callable[[Session, Principal, str], bool]
_channel_rules: dict[str, ChannelRule] = {}


def register_channel(kind: str, rule: ChannelRule) -> None:
    """Declare a channel kind (`transaction:{id}`) and who may subscribe to it."""
    _channel_rules[kind] = rule


register_channel("user", lambda _s, p, arg: arg == str(p.user_id))
register_channel("tenant", lambda _s, p, arg: arg == str(p.tenant_id))


def default_channels(principal: Principal) -> list[str]:
    return [f"user:{principal.user_id}", f"tenant:{principal.tenant_id}"]


class ChannelRefused(DoorstepError):
    status_code = 403
    code = "channel_forbidden"


def authorize_channels(session: Session, principal: Principal, channels: list[str]) -> None:
    if len(channels) > MAX_CHANNELS:
        raise ChannelRefused(f"At most {MAX_CHANNELS} channels per connection")
    for channel in channels:
        match = CHANNEL.match(channel)
        rule = _channel_rules.get(match.group(1)) if match else None
        if match is None or rule is None:
            raise ChannelRefused(f"Unknown channel '{channel[:80]}'")
        if not rule(session, principal, match.group(2)):
            raise ChannelRefused(f"You may not subscribe to '{channel}'")


def message(event_id: int, type_: str, data: dict[str, Any], ts: str | None = None) -> str:
    return json.dumps(
        {"id": event_id, "type": type_, "ts": ts or utcnow().isoformat(), "data": data}
    )


@dataclass(eq=False)
class Subscriber:
    """One live connection's view of the stream, whatever edge carries it.

    Delivery has two paths, and a connection is on exactly one at a time:

    * **Direct.** While the connection is caught up (its sender is idle: nothing queued, nothing
      being written), `offer` writes the event itself, from the hub's fan-out loop, by stepping
      the edge's send coroutine once. With the socket writable that send completes without
      suspending, so a message costs no task wake-up, queue entry or timer, and leaves no
      object behind for the garbage collector (docs/performance.md, "Real-time fan-out").
    * **Queued.** Otherwise events wait in the bounded queue, in id order, and the edge's sender
      writes them one by one. A direct write that finds the socket paused becomes the head of
      that queue (a `_Paused` send), so everything after it queues behind it. A full queue
      drops the client (`on_overflow`); it resumes from the outbox with `last_event_id`.
    """

    principal: Principal
    channels: set[str]
    queue_size: int = 1000
    on_overflow: Callable[[Subscriber], None] = lambda _s: None
    queue: asyncio.Queue[tuple[int, str | _Paused | _Heartbeat]] = field(init=False)
    overflowed: bool = False
    idled: bool = False  # its client said nothing for the hub's idle limit
    last_sent: int = 0
    # What a resuming client missed, (after, up_to]: the sender replays it from the outbox at
    # the client's pace before the live queue, which only ever holds newer events.
    backlog: tuple[int, int] | None = None
    # The edge's send, set only while its sender waits with nothing queued: the hub may then
    # write directly. None whenever the sender holds, or is writing, anything.
    direct: Callable[[str], Coroutine[Any, Any, None]] | None = field(default=None, init=False)
    # The server's prebuilt-frame write (platform/wsserver.py), when the edge is a raw
    # WebSocket served by Doorstep's protocol: a direct write is then one transport write.
    write_frame: Callable[[bytes], bool] | None = None
    # A raw WebSocket's liveness, kept by the hub's clock (`Hub.keep_time`) rather than by
    # timers of its own: heartbeats when nothing was written for a while, and `on_idle` when
    # the client said nothing for too long. Edges that are not sockets (Socket.IO) leave it off.
    keepalive: bool = False
    on_idle: Callable[[Subscriber], None] = lambda _s: None
    written: bool = field(default=False, init=False)  # since the clock's last tick
    heard: bool = field(default=False, init=False)
    quiet_for: float = field(default=0.0, init=False)
    silent_for: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_size)

    def wants(self, event: Event | _Addressed) -> bool:
        return (
            event.tenant_id == self.principal.tenant_id
            and not self.channels.isdisjoint(event.channels)
            and audience_allows(event.audience, self.principal)
        )

    def offer(self, event_id: int, text: str, frame: bytes | None = None) -> None:
        """Deliver an event (`frame`: the same text as a prebuilt WebSocket frame)."""
        if self.overflowed or event_id <= self.last_sent:
            return  # the client has it: it resumed from a later id than this process had read
        send = self.direct
        if send is not None and self.queue.empty():
            if frame is not None and self.write_frame is not None and self.write_frame(frame):
                self.last_sent = event_id  # written: the common case on Doorstep's server
                self.written = True
                return
            coro = send(text)
            try:
                waiting = coro.send(None)
            except StopIteration:
                self.last_sent = event_id  # written: the common case
                self.written = True
                return
            except Exception:
                # The socket is closing or gone. Hand the event to the sender, which meets the
                # same error on its own and ends the connection the usual way.
                self.direct = None
                self.queue.put_nowait((event_id, text))
                return
            # The socket is paused (the client reads slowly): the sender finishes this write,
            # and every later event queues behind it.
            self.direct = None
            self.queue.put_nowait((event_id, _Paused(coro, waiting)))
            return
        try:
            self.queue.put_nowait((event_id, text))
        except asyncio.QueueFull:
            # Never wait for a slow client: drop it; it resumes from the outbox.
            self.overflowed = True
            self.direct = None
            self.on_overflow(self)

    def tick(self, elapsed: float, *, heartbeat: float, idle: float) -> None:
        """One beat of the hub's clock, `elapsed` seconds after the last."""
        self.quiet_for = 0.0 if self.written else self.quiet_for + elapsed
        self.silent_for = 0.0 if self.heard else self.silent_for + elapsed
        self.written = self.heard = False
        if self.silent_for >= idle:
            if not self.idled:
                self.idled = True
                self.on_idle(self)
        elif self.quiet_for >= heartbeat:
            self.quiet_for = 0.0
            # Through the sender, like any queued write; a connection with a full queue is
            # anything but quiet.
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait((0, HEARTBEAT))


@dataclass(frozen=True, slots=True)
class _Addressed:
    """Who an outbox row is for, read off the ORM row once for the whole fan-out: the same
    checks then cost plain attribute reads instead of 3 instrumented ones per subscriber."""

    tenant_id: int
    channels: frozenset[str]
    audience: dict[str, Any]

    @classmethod
    def of(cls, row: Event) -> _Addressed:
        return cls(tenant_id=row.tenant_id, channels=frozenset(row.channels), audience=row.audience)


class _Heartbeat:
    """The clock's heartbeat in a connection's queue: written with the last id sent by then."""


HEARTBEAT = _Heartbeat()


class _Paused:
    """A direct write that suspended part-way: its coroutine and what it is waiting for."""

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    async def finish(self) -> None:
        """Drive the coroutine to its end as its own task would have (asyncio.Task.__step):
        take the future it yielded, wait for it, then resume the coroutine with the outcome.
        Cancelling the caller cancels that future, and the write with it."""
        coro, waiting = self.coro, self.waiting
        while True:
            try:
                if waiting is None:  # a bare yield: let the loop run once
                    await asyncio.sleep(0)
                elif getattr(waiting, "_asyncio_future_blocking", None) is not None:
                    # What a task does with a yielded future before it waits for it; without
                    # this, awaiting it again raises "await wasn't used with future".
                    waiting._asyncio_future_blocking = False
                    await waiting
                else:
                    raise RuntimeError(f"a send yielded {waiting!r}, not a future")
            except BaseException as exc:  # the future's error, or our own cancellation
                try:
                    waiting = coro.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                waiting = coro.send(None)
            except StopIteration:
                return

    def close(self) -> None:
        self.coro.close()


@dataclass(eq=False)
class _TenantStream:
    last_id: int
    subscribers: set[Subscriber] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pumping: bool = False
    dirty: bool = False


class Hub:
    """Reads each tenant's new outbox rows once per process and fans them out in id order."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        retention: timedelta,
        poll_seconds: float = 1.0,
        latency: LatencyWindow | None = None,
        heartbeat: float = 20.0,
        idle: float = 90.0,
    ) -> None:
        self._factory = factory
        self.retention = retention
        self.poll_seconds = poll_seconds
        self.heartbeat = heartbeat
        self.idle = idle
        # Outbox row written -> fanned out, once per event that had a recipient here: the
        # system status's live event latency.
        self.latency = latency if latency is not None else LatencyWindow()
        self._streams: dict[int, _TenantStream] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        # A fresh list: an app started again (two test clients on one app, each with its own
        # event loop) stops only what its own start began.
        self._tasks = [asyncio.create_task(self._poll(), name="doorstep-hub-poll")]
        self.start_clock()

    def start_clock(self) -> None:
        self._tasks.append(asyncio.create_task(self.keep_time(), name="doorstep-hub-clock"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def connections(self) -> int:
        return sum(len(s.subscribers) for s in self._streams.values())

    # -- the bus's announcements -----------------------------------------------------------

    def announce(self, tenant_id: int, last_id: int) -> None:
        stream = self._streams.get(tenant_id)
        if stream is None or last_id <= stream.last_id:
            return
        self._schedule(tenant_id, stream)

    def _schedule(self, tenant_id: int, stream: _TenantStream) -> None:
        if stream.pumping:
            stream.dirty = True
            return
        stream.pumping = True
        asyncio.get_running_loop().create_task(self._pump(tenant_id, stream))

    async def _pump(self, tenant_id: int, stream: _TenantStream) -> None:
        try:
            while True:
                stream.dirty = False
                async with stream.lock:
                    await self._deliver_new(tenant_id, stream)
                if not stream.dirty:
                    return
        except Exception:
            log.exception("hub could not deliver events of tenant %s", tenant_id)
        finally:
            stream.pumping = False

    async def _deliver_new(self, tenant_id: int, stream: _TenantStream) -> None:
        while True:
            rows = await run_in_threadpool(self._read, tenant_id, stream.last_id, None)
            for row in rows:
                text = message(row.id, row.type, row.data, row.created_at.isoformat())
                frame = text_frame(text)  # one frame for every connection (platform/wsserver.py)
                addressed = _Addressed.of(row)
                # Caught-up subscribers are written to right here, without suspending (see
                # Subscriber); the others get the event queued. Every FANOUT_SLICE of them the
                # loop gets a turn, so that a large fan-out does not hold up HTTP responses or
                # other tenants for its whole length. Subscribers cannot attach meanwhile: the
                # stream's lock is held.
                delivered = False
                for n, subscriber in enumerate(list(stream.subscribers), 1):
                    if subscriber.wants(addressed):
                        subscriber.offer(row.id, text, frame)
                        delivered = True
                    if n % FANOUT_SLICE == 0:
                        await asyncio.sleep(0)
                if delivered:  # one clock read per event, not per subscriber
                    self.latency.add(max(0.0, (utcnow() - row.created_at).total_seconds()))
                stream.last_id = row.id
            if len(rows) < 500:
                return

    def _read(self, tenant_id: int, after: int, up_to: int | None) -> list[Event]:
        with self._factory() as session:
            rows = fetch_after(session, tenant_id=tenant_id, after_id=after, up_to=up_to)
            session.expunge_all()
            return rows

    async def _poll(self) -> None:
        # Covers announcements that never came: a crash between commit and publish, a Redis
        # hiccup, or events written by a process without a bus (the CLI, a worker).
        while True:
            await asyncio.sleep(self.poll_seconds)
            for tenant_id, stream in list(self._streams.items()):
                if stream.subscribers:
                    self._schedule(tenant_id, stream)

    async def keep_time(self) -> None:
        """Heartbeats and idle closes for every raw WebSocket of this process, from one clock.

        Per-connection timers (a timeout around each wait and each read) left thousands of
        objects per second behind at 5,000 connections, which grew the collector's oldest
        generation until a full collection stopped the process for 0.7 s
        (docs/performance.md, "Real-time fan-out"). The clock allocates nothing per
        connection: a heartbeat comes after `heartbeat` to `heartbeat + tick` seconds without a
        write, an idle close after `idle` to `idle + tick` seconds without a word."""
        tick = min(self.heartbeat, self.idle) / 2
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            elapsed, last = now - last, now
            for stream in list(self._streams.values()):
                for subscriber in list(stream.subscribers):
                    if subscriber.keepalive:
                        subscriber.tick(elapsed, heartbeat=self.heartbeat, idle=self.idle)

    # -- connections -----------------------------------------------------------------------

    async def attach(self, subscriber: Subscriber, last_event_id: int | None) -> bool:
        """Register a subscriber; with `last_event_id`, note what it missed for `replay`.

        Returns False when that id is not (or no longer) one of its tenant's events in the
        outbox, e.g. past retention: the client must reload."""
        tenant_id = subscriber.principal.tenant_id
        # Any id the client claims must be one of its tenant's events still in the outbox, even
        # one newer than this process has read so far.
        complete = not last_event_id or await run_in_threadpool(
            self._known, tenant_id, last_event_id
        )
        stream = self._streams.get(tenant_id)
        created = stream is None
        if stream is None:
            newest = await run_in_threadpool(self._latest, tenant_id)
            stream = self._streams.setdefault(tenant_id, _TenantStream(last_id=newest))
        async with stream.lock:  # no live delivery can interleave with the backlog
            if not created and not stream.subscribers:
                # A stream nobody listens to is not polled: bring it up to date first.
                newest = await run_in_threadpool(self._latest, tenant_id)
                stream.last_id = max(stream.last_id, newest)
            if complete and last_event_id is not None and last_event_id < stream.last_id:
                subscriber.backlog = (last_event_id, stream.last_id)
            stream.subscribers.add(subscriber)
        return complete

    def _latest(self, tenant_id: int) -> int:
        with self._factory() as session:
            return latest_id(session, tenant_id=tenant_id)

    async def replay(self, subscriber: Subscriber, send: Callable[[str], Awaitable[None]]) -> None:
        """Send a resuming subscriber its backlog, page by page, each send awaited: however far
        behind it is, the missed events never crowd its bounded live queue."""
        if subscriber.backlog is None:
            return
        (after, up_to), subscriber.backlog = subscriber.backlog, None
        tenant_id = subscriber.principal.tenant_id
        while after < up_to:
            rows = await run_in_threadpool(self._read, tenant_id, after, up_to)
            if not rows:
                break
            for row in rows:
                if subscriber.wants(row):
                    await send(message(row.id, row.type, row.data, row.created_at.isoformat()))
                    subscriber.last_sent = row.id
                    subscriber.written = True
                after = row.id

    def _known(self, tenant_id: int, event_id: int) -> bool:
        with self._factory() as session:
            row = session.get(Event, event_id)
            return row is not None and row.tenant_id == tenant_id

    def detach(self, subscriber: Subscriber) -> None:
        stream = self._streams.get(subscriber.principal.tenant_id)
        if stream is not None:
            stream.subscribers.discard(subscriber)
        subscriber.direct = None
        while not subscriber.queue.empty():  # a write the socket never took: abandon it
            _event_id, payload = subscriber.queue.get_nowait()
            if isinstance(payload, _Paused):
                payload.close()


# --- the raw WebSocket edge ----------------------------------------------------------------

router = APIRouter()


def _authenticate(websocket: WebSocket, token: str | None) -> Principal:
    return authenticate_edge(
        websocket.app.state,
        token=token,
        cookie=websocket.cookies.get(SESSION_COOKIE),
        origin=websocket.headers.get("origin"),
        host=websocket.headers.get("host"),
        sign_in_hint="session cookie or ?token=",
    )


def _authorize(websocket: WebSocket, principal: Principal, channels: list[str]) -> None:
    with websocket.app.state.sessionmaker() as session:
        authorize_channels(session, principal, channels)


@router.websocket("/ws")
async def websocket_endpoint(
    websocket: WebSocket,
    token: str | None = None,
    channels: str | None = None,
    last_event_id: str | None = None,
) -> None:
    wanted = [c for c in (channels or "").split(",") if c] or None
    await stream(websocket, token=token, channels=wanted, last_event_id=last_event_id)


async def stream(
    websocket: WebSocket,
    *,
    token: str | None,
    channels: list[str] | None,
    last_event_id: str | None,
) -> None:
    """Serve one WebSocket from the hub: authenticate, authorise every channel (None: the
    principal's defaults), replay from `last_event_id`, then live events until it closes.
    Every raw WebSocket edge (`/ws`, a transaction's `/live`) is this function."""
    await websocket.accept()
    settings = websocket.app.state.settings
    hub: Hub = websocket.app.state.hub
    try:
        principal = await run_in_threadpool(_authenticate, websocket, token)
        wanted = channels or default_channels(principal)
        await run_in_threadpool(_authorize, websocket, principal, wanted)
        resume = _parse_last_id(last_event_id)
    except DoorstepError as exc:
        code = (
            CLOSE_UNAUTHENTICATED
            if exc.status_code == 401
            else (CLOSE_FORBIDDEN if exc.status_code in (403, 404) else CLOSE_BAD_INPUT)
        )
        await websocket.send_text(message(0, "error", {"detail": exc.detail, "code": exc.code}))
        await websocket.close(code=code, reason=exc.code)
        return

    closed = asyncio.Event()

    def stop(_sub: Subscriber) -> None:  # overflowed or idle: the flags on it say which
        closed.set()

    prebuilt = websocket.scope.get("extensions", {}).get(EXTENSION)
    subscriber = Subscriber(
        principal=principal,
        channels=set(wanted),
        queue_size=settings.ws_queue_size,
        on_overflow=stop,
        write_frame=prebuilt["write"] if prebuilt else None,
        keepalive=True,
        on_idle=stop,
    )
    subscriber.last_sent = resume or 0
    complete = await hub.attach(subscriber, resume)
    last_sent = subscriber.last_sent
    try:
        await websocket.send_text(
            message(last_sent, "hello", {"channels": sorted(wanted), "user_id": principal.user_id})
        )
        if not complete:
            await websocket.send_text(
                message(last_sent, "reload", {"detail": "Missed events are past retention; reload"})
            )
        sender = asyncio.create_task(_send(websocket, hub, subscriber, closed))
        receiver = asyncio.create_task(_receive(websocket, principal, subscriber))
        done, pending = await asyncio.wait(
            {sender, receiver, asyncio.create_task(closed.wait())},
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()
        if subscriber.overflowed:
            await _close(websocket, CLOSE_OVERFLOW, f"overflow; resume from {subscriber.last_sent}")
        elif subscriber.idled:
            await _close(websocket, CLOSE_IDLE, "idle")
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None and not isinstance(failure, WebSocketDisconnect):
                raise failure
    finally:
        hub.detach(subscriber)


def _parse_last_id(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit() or len(value) > 18:
        raise _BadInput("last_event_id must be a non-negative integer")
    return int(value)


class _BadInput(DoorstepError):
    status_code = 400
    code = "bad_request"


async def _send(
    websocket: WebSocket,
    hub: Hub,
    subscriber: Subscriber,
    closed: asyncio.Event,
) -> None:
    """The connection's sender: its backlog, then whatever queues up (events the hub could not
    write directly, the clock's heartbeats); when there is nothing to write it lets the hub
    write directly."""
    send = websocket.send_text
    queue = subscriber.queue
    try:
        await hub.replay(subscriber, send)
        while not closed.is_set():
            if queue.empty():
                event_id, payload = await _idle(subscriber, send)
            else:
                event_id, payload = queue.get_nowait()
            if isinstance(payload, _Heartbeat):  # not an event: the last id stays
                await send(message(subscriber.last_sent, "heartbeat", {}))
            else:
                await (send(payload) if isinstance(payload, str) else payload.finish())
                subscriber.last_sent = event_id
            subscriber.written = True
    finally:
        subscriber.direct = None


async def _idle(
    subscriber: Subscriber, send: Callable[[str], Coroutine[Any, Any, None]]
) -> tuple[int, str | _Paused | _Heartbeat]:
    """Wait, caught up, for the next queued item while the hub writes to the socket directly.
    No timer: heartbeats come from the hub's clock, through the queue."""
    subscriber.direct = send
    try:
        return await subscriber.queue.get()
    finally:
        subscriber.direct = None


async def _receive(websocket: WebSocket, principal: Principal, subscriber: Subscriber) -> None:
    """Client messages: {"type": "ping"} and {"type": "subscribe"|"unsubscribe", "channel": c}.
    Each one tells the hub's clock the client is alive (`Subscriber.heard`)."""
    while True:
        raw = await websocket.receive_text()
        subscriber.heard = True
        try:
            body = json.loads(raw)
            kind = body["type"] if isinstance(body, dict) else None
        except (ValueError, KeyError):
            kind = None
        if kind == "ping":
            await websocket.send_text(message(0, "pong", {}))
        elif kind in ("subscribe", "unsubscribe") and isinstance(body.get("channel"), str):
            await _change_subscription(websocket, principal, subscriber, kind, body["channel"])
        else:
            await websocket.send_text(
                message(
                    0,
                    "error",
                    {
                        "detail": 'Unknown message; send {"type": "ping"} or subscribe',
                        "code": "bad_message",
                    },
                )
            )


async def _change_subscription(
    websocket: WebSocket, principal: Principal, subscriber: Subscriber, kind: str, channel: str
) -> None:
    if kind == "unsubscribe":
        subscriber.channels.discard(channel)
        return
    try:
        await run_in_threadpool(_authorize, websocket, principal, [channel])
    except DoorstepError as exc:
        await websocket.send_text(message(0, "error", {"detail": exc.detail, "code": exc.code}))
        return
    subscriber.channels.add(channel)
    await websocket.send_text(message(0, "subscribed", {"channel": channel}))


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason)
