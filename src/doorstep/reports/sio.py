"""The live dashboard's Socket.IO edge (seed 002): `io(origin)` connects at /socket.io.

A second edge of the platform's one hub (platform/realtime.py), beside the raw WebSocket: for
each dashboard user joined on this process it attaches one hub `Subscriber` (that user's
principal and default channels), so every event the user may see, committed by any process and
announced over the bus, becomes an `activity_update` and a refreshed `dashboard_data` for the
user's sockets here. A background task pushes `performance_update` (this process's figures) and
`market_update` every `dashboard_interval_seconds`.

With Redis configured the server uses python-socketio's `AsyncRedisManager` (channel
`<prefix>:socketio`), so that an emit to a user's room (a manual refresh) reaches that user's
sockets on every server process. Hub-fed and periodic pushes stay local (`ignore_queue`):
each process serves its own sockets from its own hub, which the bus already feeds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any

import socketio
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from doorstep.platform import auth
from doorstep.platform.auth import Principal
from doorstep.platform.auth_cache import authenticate_edge
from doorstep.platform.errors import DoorstepError
from doorstep.platform.http import SESSION_COOKIE
from doorstep.platform.realtime import Hub, Subscriber, default_channels
from doorstep.reports import dashboard, rules

log = logging.getLogger("doorstep.reports.sio")
UPDATE_TYPES = ("dashboard", "market", "performance")


class _Refused(DoorstepError):
    status_code = 403
    code = "forbidden"


def room_of(user_id: int) -> str:
    return f"dashboard:{user_id}"


@dataclass(eq=False)
class _Watcher:
    """One dashboard user joined on this process: their sockets and their hub subscription."""

    principal: Principal
    subscriber: Subscriber
    sids: set[str] = field(default_factory=set)
    relay: asyncio.Task[None] | None = None


class DashboardEdge:
    def __init__(self, app: FastAPI) -> None:
        self.app = app
        settings = app.state.settings
        self.interval = float(settings.dashboard_interval_seconds)
        self.queue_size = int(settings.ws_queue_size)
        manager = (
            socketio.AsyncRedisManager(
                settings.redis_url, channel=f"{settings.redis_prefix}:socketio"
            )
            if settings.redis_url
            else None
        )
        # Same-origin only (python-engineio's default when no origins are listed).
        self.server = socketio.AsyncServer(
            async_mode="asgi", client_manager=manager, logger=False, engineio_logger=False
        )
        # Mounted at /socket.io by app.py: routing happens there, so every request that reaches
        # this app is Engine.IO's (engineio_path None).
        self.asgi = socketio.ASGIApp(self.server, socketio_path=None)
        self._sids: set[str] = set()
        self._watchers: dict[int, _Watcher] = {}
        self._lock = asyncio.Lock()
        self._pusher: asyncio.Task[None] | None = None
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnect)
        self.server.on("join_dashboard", self._join)
        self.server.on("request_update", self._request_update)

    # -- figures ----------------------------------------------------------------------------

    @property
    def clients(self) -> int:
        """Socket.IO connections on this process."""
        return len(self._sids)

    @property
    def hub_subscribers(self) -> int:
        return len(self._watchers)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.app.state.started_at = time.time()
        self._pusher = asyncio.create_task(self._push(), name="doorstep-dashboard-push")

    async def stop(self) -> None:
        tasks = [self._pusher] + [w.relay for w in self._watchers.values()]
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        hub: Hub = self.app.state.hub
        for watcher in self._watchers.values():
            hub.detach(watcher.subscriber)
        self._watchers.clear()

    # -- connections ------------------------------------------------------------------------

    def _authenticate(self, environ: dict[str, Any], credentials: Any) -> Principal:
        """The same checks as the raw WebSocket: a JWT in the auth payload, or the session
        cookie from one of our own pages."""
        token = None
        if credentials is not None:
            token = credentials.get("token") if isinstance(credentials, dict) else None
            if not isinstance(token, str) or not token:
                raise auth.InvalidToken('auth must be {"token": "<access token>"}')
        cookie = None
        with contextlib.suppress(CookieError):
            morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get(SESSION_COOKIE)
            cookie = morsel.value if morsel is not None else None
        return authenticate_edge(
            self.app.state,
            token=token,
            cookie=cookie,
            origin=environ.get("HTTP_ORIGIN"),
            host=environ.get("HTTP_HOST"),
            sign_in_hint='session cookie or auth={"token": ...}',
        )

    async def _connect(self, sid: str, environ: dict[str, Any], credentials: Any = None) -> None:
        try:
            principal = await run_in_threadpool(self._authenticate, environ, credentials)
            if principal.role not in rules.VIEWER_ROLES:
                allowed = ", ".join(sorted(str(r) for r in rules.VIEWER_ROLES))
                raise _Refused(f"The live dashboard needs one of the roles: {allowed}")
        except DoorstepError as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                exc.detail, {"code": exc.code, "detail": exc.detail}
            ) from None
        except (KeyError, ValueError) as exc:  # a token without a session id, a bad cookie
            raise socketio.exceptions.ConnectionRefusedError(
                "Invalid credentials", {"code": "invalid_token", "detail": str(exc)[:200]}
            ) from None
        await self.server.save_session(sid, {"principal": principal})
        self._sids.add(sid)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self._sids.discard(sid)
        async with self._lock:
            for user_id, watcher in list(self._watchers.items()):
                if sid in watcher.sids:
                    watcher.sids.discard(sid)
                    if not watcher.sids:
                        await self._unwatch(user_id, watcher)

    async def _principal(self, sid: str) -> Principal:
        session = await self.server.get_session(sid)
        principal: Principal = session["principal"]
        return principal

    async def _error(self, sid: str, event: str, code: str, detail: str) -> None:
        await self.server.emit(
            "error", {"event": event, "code": code, "detail": detail}, to=sid, ignore_queue=True
        )

    # -- client events ----------------------------------------------------------------------

    async def _join(self, sid: str, data: Any = None) -> None:
        principal = await self._principal(sid)
        user_id = await self._user_id(sid, "join_dashboard", data, principal)
        if user_id is None:
            return
        await self.server.enter_room(sid, room_of(user_id))
        await self._watch(principal, sid)
        await self.server.emit(
            "joined_dashboard",
            {"user_id": user_id, "room": room_of(user_id), "interval_seconds": self.interval},
            to=sid,
            ignore_queue=True,
        )
        board = await run_in_threadpool(self._dashboard, principal, False)
        await self.server.emit("dashboard_data", board, to=sid, ignore_queue=True)

    async def _request_update(self, sid: str, data: Any = None) -> None:
        principal = await self._principal(sid)
        user_id = await self._user_id(sid, "request_update", data, principal)
        if user_id is None:
            return
        kind = data.get("type")
        if not isinstance(kind, str) or kind not in UPDATE_TYPES:
            await self._error(
                sid,
                "request_update",
                "bad_request",
                f"type must be one of: {', '.join(UPDATE_TYPES)}",
            )
            return
        watcher = self._watchers.get(user_id)
        if watcher is None or sid not in watcher.sids:
            await self._error(sid, "request_update", "not_joined", "Send join_dashboard first")
            return
        if kind == "dashboard":
            board = await run_in_threadpool(self._dashboard, principal, True)
            # Through the manager: the user's sockets on every server process refresh.
            await self.server.emit("dashboard_data", board, room=room_of(user_id))
        elif kind == "market":
            market = await run_in_threadpool(self._market, principal)
            await self.server.emit("market_update", market, to=sid, ignore_queue=True)
        else:
            figures = await run_in_threadpool(dashboard.system_metrics, self.app)
            await self.server.emit("performance_update", figures, to=sid, ignore_queue=True)

    async def _user_id(self, sid: str, event: str, data: Any, principal: Principal) -> int | None:
        """The payload's `user_id`, which must be the signed-in user's; None after an error."""
        if not isinstance(data, dict):
            await self._error(sid, event, "bad_request", 'Send an object: {"user_id": <int>}')
            return None
        user_id = data.get("user_id")
        if user_id is None:
            await self._error(sid, event, "bad_request", "user_id is required")
            return None
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            await self._error(sid, event, "bad_request", "user_id must be an integer")
            return None
        if user_id != principal.user_id:
            await self._error(
                sid, event, "forbidden", "You may only follow your own dashboard (your user_id)"
            )
            return None
        return user_id

    # -- figures, read in a thread ----------------------------------------------------------

    def _dashboard(self, principal: Principal, fresh: bool) -> dict[str, Any]:
        with self.app.state.sessionmaker() as session:
            return dashboard.dashboard_data(session, principal, fresh=fresh)

    def _market(self, principal: Principal) -> dict[str, Any]:
        with self.app.state.sessionmaker() as session:
            return dashboard.market_data(session, principal)

    # -- fed by the hub ---------------------------------------------------------------------

    def _subscriber(self, principal: Principal) -> Subscriber:
        return Subscriber(
            principal=principal,
            channels=set(default_channels(principal)),
            queue_size=self.queue_size,
        )

    async def _watch(self, principal: Principal, sid: str) -> None:
        async with self._lock:
            watcher = self._watchers.get(principal.user_id)
            if watcher is None:
                watcher = _Watcher(principal, self._subscriber(principal))
                await self.app.state.hub.attach(watcher.subscriber, None)
                watcher.relay = asyncio.create_task(
                    self._relay(watcher), name=f"doorstep-dashboard-relay-{principal.user_id}"
                )
                self._watchers[principal.user_id] = watcher
            watcher.sids.add(sid)

    async def _unwatch(self, user_id: int, watcher: _Watcher) -> None:
        self._watchers.pop(user_id, None)
        self.app.state.hub.detach(watcher.subscriber)
        if watcher.relay is not None:
            watcher.relay.cancel()

    async def _relay(self, watcher: _Watcher) -> None:
        """Turn the events the hub queues for this user into Socket.IO pushes: each one an
        `activity_update`, then one refreshed `dashboard_data` for the batch."""
        room = room_of(watcher.principal.user_id)
        hub: Hub = self.app.state.hub
        while True:
            subscriber = watcher.subscriber
            event_id, payload = await subscriber.queue.get()
            batch = [payload]
            while not subscriber.queue.empty():
                event_id, payload = subscriber.queue.get_nowait()
                batch.append(payload)
            subscriber.last_sent = event_id
            try:
                for text in batch:
                    if isinstance(text, str):  # never a paused write: `direct` stays unset
                        event = json.loads(text)
                        await self.server.emit(
                            "activity_update", event, room=room, ignore_queue=True
                        )
                dashboard.invalidate_tenant(watcher.principal.tenant_id)
                board = await run_in_threadpool(self._dashboard, watcher.principal, True)
                await self.server.emit("dashboard_data", board, room=room, ignore_queue=True)
            except Exception:
                log.exception("could not push dashboard updates to user %s", room)
            if subscriber.overflowed:
                # Too far behind: start afresh; the refreshed dashboard covers what was dropped.
                hub.detach(subscriber)
                watcher.subscriber = self._subscriber(watcher.principal)
                await hub.attach(watcher.subscriber, None)

    # -- the periodic pushes ----------------------------------------------------------------

    async def _push(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self._watchers:
                continue
            try:
                await self._push_once()
            except Exception:
                log.exception("could not push the periodic dashboard updates")

    async def _push_once(self) -> None:
        figures = await run_in_threadpool(dashboard.system_metrics, self.app)
        markets: dict[tuple[int, str], dict[str, Any]] = {}
        for user_id, watcher in list(self._watchers.items()):
            principal = watcher.principal
            key = (principal.tenant_id, str(principal.role))
            if key not in markets:
                markets[key] = await run_in_threadpool(self._market, principal)
            room = room_of(user_id)
            await self.server.emit("performance_update", figures, room=room, ignore_queue=True)
            await self.server.emit("market_update", markets[key], room=room, ignore_queue=True)
