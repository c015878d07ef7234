"""The event outbox and the bus that announces it.

Services append events inside the request's transaction (`record`). Only after the commit does
the bus announce "tenant T has events up to id N"; every server process then reads the new rows
from the outbox in id order and hands them to its connections (platform/realtime.py). A rollback
announces nothing, and a process that crashes between commit and announcement loses nothing:
the hub also polls the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from sqlalchemy import BigInteger, Integer, String, delete, event, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from doorstep.platform.auth import Principal, Role
from doorstep.platform.db import Base, JSONType, TenantMixin, utcnow

log = logging.getLogger("doorstep.events")
BUS_KEY = "doorstep.bus"
_PENDING_KEY = "doorstep.pending_events"


class Event(TenantMixin, Base):
    """One row of the outbox. `id` orders a tenant's events as they were committed."""

    __tablename__ = "events"
    # SQLite would otherwise reuse ids after pruning empties the table; clients resume by id.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    channels: Mapped[list[str]] = mapped_column(JSONType)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    audience: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


@dataclass(frozen=True, slots=True)
class Audience:
    """Who may receive an event, besides being subscribed to one of its channels.

    Named users and/or roles; neither means everyone of the tenant who may read the channel."""

    users: tuple[int, ...] = ()
    roles: tuple[Role, ...] = ()

    @classmethod
    def everyone(cls) -> Audience:
        return cls()

    @classmethod
    def user(cls, user_id: int) -> Audience:
        return cls(users=(user_id,))

    @classmethod
    def staff(cls) -> Audience:
        """Agent-only: the brokerage's people, never a client."""
        return cls(roles=(Role.agent, Role.broker, Role.admin))

    @classmethod
    def parties(cls, user_ids: Iterable[int], *, roles: Iterable[Role] = ()) -> Audience:
        """A transaction's parties (its buyers and agent), plus whole roles such as the broker."""
        return cls(users=tuple(sorted(set(user_ids))), roles=tuple(roles))

    def to_json(self) -> dict[str, Any]:
        return {"users": list(self.users), "roles": [str(r) for r in self.roles]}


def audience_allows(audience: dict[str, Any], principal: Principal) -> bool:
    users, roles = audience.get("users") or [], audience.get("roles") or []
    if not users and not roles:
        return True
    return principal.user_id in users or str(principal.role) in roles


def _serialize_tenant_writers(session: Session, tenant_id: int) -> None:
    # Ids must reach readers in commit order: a reader that has seen id N must never later find
    # an id below N committing. PostgreSQL hands out ids at insert time, so event-writing
    # transactions of one tenant queue on an advisory lock held until commit. SQLite already
    # serialises writers for the whole transaction.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7301, :t)"), {"t": tenant_id})


def record(
    session: Session,
    *,
    tenant_id: int,
    channels: Iterable[str],
    type: str,
    data: dict[str, Any],
    audience: Audience | None = None,
) -> Event:
    """Append an event to the outbox in the caller's transaction; announced after commit."""
    _serialize_tenant_writers(session, tenant_id)
    row = Event(
        tenant_id=tenant_id,
        channels=sorted(set(channels)),
        type=type,
        data=data,
        audience=(audience or Audience.everyone()).to_json(),
    )
    session.add(row)
    session.flush()
    pending: dict[int, int] = session.info.setdefault(_PENDING_KEY, {})
    pending[tenant_id] = max(pending.get(tenant_id, 0), row.id)
    return row


@event.listens_for(Session, "after_commit")
def _announce(session: Session) -> None:
    if session.in_nested_transaction():
        # SQLAlchemy also fires this when a SAVEPOINT is released: nothing is committed yet,
        # and a hub reading now would not see the rows (and the real commit would announce
        # nothing, leaving delivery to the hubs' 1 s polling).
        return
    pending: dict[int, int] = session.info.pop(_PENDING_KEY, {})
    bus: Bus | None = session.info.get(BUS_KEY)
    if bus is None:
        return  # the hubs' polling picks these up (CLI, scripts)
    for tenant_id, last_id in pending.items():
        try:
            bus.announce(tenant_id, last_id)
        except Exception:  # the commit stands; polling delivers what the announcement missed
            log.exception("could not announce events of tenant %s", tenant_id)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT rolled back: the outer transaction's events still stand
    session.info.pop(_PENDING_KEY, None)


def fetch_after(
    session: Session, *, tenant_id: int, after_id: int, up_to: int | None = None, limit: int = 500
) -> list[Event]:
    stmt = select(Event).where(Event.tenant_id == tenant_id, Event.id > after_id)
    if up_to is not None:
        stmt = stmt.where(Event.id <= up_to)
    return list(session.scalars(stmt.order_by(Event.id).limit(limit)))


def latest_id(session: Session, *, tenant_id: int) -> int:
    return session.scalar(select(func.max(Event.id)).where(Event.tenant_id == tenant_id)) or 0


def prune(session: Session, *, older_than: timedelta) -> int:
    """Drop events past the retention window; clients that missed them are told to reload."""
    result = session.execute(delete(Event).where(Event.created_at < utcnow() - older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- the bus -----------------------------------------------------------------------------------

Listener = Callable[[int, int], None]
# Told which sessions `s:<id>`, users `u:<id>` or tenants `t:<id>` changed (platform/auth_cache.py).
Invalidator = Callable[[list[str]], None]


class Bus(Protocol):
    def announce(self, tenant_id: int, last_id: int) -> None:
        """Say that `tenant_id` has committed events up to `last_id`. Thread-safe."""

    def invalidate(self, keys: list[str]) -> None:
        """Tell the other server processes that these sessions/users/tenants changed."""

    async def start(self, listener: Listener, invalidator: Invalidator | None = None) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class InProcessBus:
    """The embedded mode: announcements go straight to this process's hub."""

    _loop: asyncio.AbstractEventLoop | None = None
    _listener: Listener | None = None

    def announce(self, tenant_id: int, last_id: int) -> None:
        loop, listener = self._loop, self._listener
        if loop is None or listener is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(listener, tenant_id, last_id)

    def invalidate(self, keys: list[str]) -> None:
        pass  # one process: the commit already dropped them here

    async def start(self, listener: Listener, invalidator: Invalidator | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener = listener

    async def stop(self) -> None:
        self._listener = None


@dataclass
class RedisBus:
    """Production: announcements travel over Redis Pub/Sub to every server process."""

    url: str
    prefix: str
    _sync: redis.Redis | None = None
    _task: asyncio.Task[None] | None = None
    _client: aioredis.Redis | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def channel(self) -> str:
        return f"{self.prefix}:events"

    @property
    def auth_channel(self) -> str:
        return f"{self.prefix}:auth"

    def _publish(self, channel: str, payload: Any) -> None:
        if self._sync is None:
            self._sync = redis.Redis.from_url(self.url)
        self._sync.publish(channel, json.dumps(payload))

    def announce(self, tenant_id: int, last_id: int) -> None:
        self._publish(self.channel, [tenant_id, last_id])

    def invalidate(self, keys: list[str]) -> None:
        self._publish(self.auth_channel, keys)

    async def start(self, listener: Listener, invalidator: Invalidator | None = None) -> None:
        self._client = aioredis.Redis.from_url(self.url)
        self._task = asyncio.create_task(
            self._listen(listener, invalidator), name="doorstep-redis-bus"
        )
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=3)
        except TimeoutError:
            # Serve anyway: /readyz reports Redis, the listener keeps reconnecting, and the hub's
            # polling delivers events meanwhile.
            log.warning("event bus not subscribed to Redis yet; continuing to retry")

    async def _listen(self, listener: Listener, invalidator: Invalidator | None) -> None:
        assert self._client is not None
        auth_channel = self.auth_channel.encode()
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel, self.auth_channel)
                    self._ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            payload = json.loads(message["data"])
                            if message["channel"] == auth_channel:
                                if invalidator is not None:
                                    invalidator([str(key) for key in payload])
                                continue
                            tenant_id, last_id = payload
                            listener(int(tenant_id), int(last_id))
                        except (ValueError, TypeError):
                            log.warning("ignored a malformed bus message: %r", message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis went away: reconnect; the hub's polling covers the gap meanwhile.
                log.exception("event bus lost its Redis subscription; reconnecting")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        if self._sync is not None:
            self._sync.close()
