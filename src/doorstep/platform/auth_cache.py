"""Live sessions seen recently, so that an authenticated request needs no database query.

A request acts only for a live session: unrevoked, unexpired, its user active. Reading that from
the database on every request was the largest cost of an authenticated read (one query on a
worker thread; docs/performance.md, "API baseline"). The cache keeps what the check found, as an
`Identity`, for `ttl` seconds, and forgets it as soon as it may have changed:

* a unit of work that revokes a session or changes a user or a tenant collects their keys
  (`changed`, and the flush listener below for ORM changes); after its commit, every cache of
  this process drops the entries concerned before the response leaves, and the bus tells the
  other server processes (Redis in production);
* an entry is stored only if nothing was invalidated while it was being read (the generation
  check), so a read that raced a revocation never keeps the revoked session as live;
* `ttl` bounds what a lost bus message, or a change made outside the server processes (the CLI,
  SQL by hand), can leave stale. `DOORSTEP_AUTH_CACHE_SECONDS=0` turns the cache off.
"""

from __future__ import annotations

import hmac
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from doorstep.platform import auth
from doorstep.platform.auth import CHANGED_KEY, Principal, Tenant, TokenSettings, User, changed
from doorstep.platform.errors import InvalidToken
from doorstep.platform.events import BUS_KEY
from doorstep.platform.schemas import Me, TenantRead, UserRead

MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class Identity:
    """A live session as the check found it: who acts, and what `/api/auth/me` shows."""

    principal: Principal
    me_json: bytes  # the body of `/api/auth/me`, rendered once
    kind: str
    secret_hash: str | None
    csrf_token: str | None
    expires_at: float  # epoch seconds

    @property
    def session_id(self) -> str:
        assert self.principal.session_id is not None
        return self.principal.session_id

    def for_token(self, claims: dict[str, Any]) -> Identity:
        """This identity for an access token's claims (already verified), or InvalidToken."""
        self._check_live()
        if str(self.principal.user_id) != str(claims["sub"]):
            raise InvalidToken("Token does not match its session")
        return self

    def for_cookie(self, secret: str) -> Identity:
        """This identity for a session cookie's secret, or InvalidToken."""
        self._check_live()
        if (
            self.kind != "web"
            or self.secret_hash is None
            or not hmac.compare_digest(self.secret_hash, auth.digest(secret))
        ):
            raise InvalidToken("Invalid session")
        return self

    def _check_live(self) -> None:
        if self.expires_at < time.time():
            raise InvalidToken("Session has ended")


def load(session: Session, *, session_id: str) -> Identity:
    """Read the session from the database (InvalidToken when it is not live)."""
    user, auth_session, tenant = auth.live_session(session, session_id=session_id)
    return Identity(
        principal=Principal.of(user, session_id=auth_session.id),
        me_json=Me(**UserRead.model_validate(user).model_dump(), tenant=TenantRead.of(tenant))
        .model_dump_json()
        .encode(),
        kind=auth_session.kind,
        secret_hash=auth_session.secret_hash,
        csrf_token=auth_session.csrf_token,
        expires_at=auth_session.expires_at.timestamp(),
    )


def authenticate_edge(
    state: Any,
    *,
    token: str | None,
    cookie: str | None,
    origin: str | None,
    host: str | None,
    sign_in_hint: str,
) -> Principal:
    """Who opens a long-lived connection (`/ws`, Socket.IO): an access token, else the session
    cookie, which rides along on cross-site handshakes too and so counts only from our own
    pages. `state` is the app's state (its session cache, sessionmaker and token settings)."""
    cache: SessionCache = state.session_cache
    if token:
        claims = cache.claims(token, state.token_settings)
        with state.sessionmaker() as session:
            return cache.fetch(session, str(claims["sid"])).for_token(claims).principal
    if not cookie:
        raise InvalidToken(f"Sign in first ({sign_in_hint})")
    if origin is not None and origin.split("://", 1)[-1] != host:
        raise InvalidToken("Cross-site connection refused")
    sid, secret = auth.split_token(cookie)
    with state.sessionmaker() as session:
        return cache.fetch(session, sid).for_cookie(secret).principal


class SessionCache:
    """Identities by session id, and verified access-token claims by token (per process)."""

    def __init__(self, ttl: float, *, clock: Any = time.monotonic) -> None:
        self.ttl = ttl
        self.generation = 0  # bumped by every invalidation
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Identity]] = {}
        self._claims: dict[str, dict[str, Any]] = {}
        _CACHES.add(self)

    def get(self, session_id: str) -> Identity | None:
        found = self._entries.get(session_id)
        if found is None:
            return None
        stored_at, identity = found
        if self._clock() - stored_at >= self.ttl:
            self._entries.pop(session_id, None)
            return None
        return identity

    def fetch(self, session: Session, session_id: str) -> Identity:
        """The cached identity, or the database's answer (kept for the next requests)."""
        found = self.get(session_id)
        if found is None:
            generation = self.generation
            found = load(session, session_id=session_id)
            self.store(found, generation=generation)
        return found

    def store(self, identity: Identity, *, generation: int) -> None:
        """Keep `identity`, read when the generation was `generation`, unless it moved since."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.pop(next(iter(self._entries)))
            self._entries[identity.session_id] = (self._clock(), identity)

    def claims(self, token: str, cfg: TokenSettings) -> dict[str, Any]:
        """The token's verified claims; the signature is checked once per token and process."""
        claims = self._claims.get(token)
        if claims is None:
            claims = auth.decode_access_token(token, cfg)
            if self.ttl > 0:
                if len(self._claims) >= MAX_ENTRIES:
                    self._claims.pop(next(iter(self._claims)))
                self._claims[token] = claims
        elif claims["exp"] <= time.time():
            self._claims.pop(token, None)
            raise InvalidToken("Access token expired")
        return claims

    def invalidate(self, keys: Iterable[str]) -> None:
        """Drop the entries of sessions `s:<id>`, users `u:<id>` and tenants `t:<id>`."""
        named: dict[str, set[str]] = {"s": set(), "u": set(), "t": set()}
        for key in keys:
            kind, _, ident = key.partition(":")
            named.get(kind, set()).add(ident)
        sessions, users, tenants = named["s"], named["u"], named["t"]
        with self._lock:
            self.generation += 1
            for sid, (_at, identity) in list(self._entries.items()):
                principal = identity.principal
                if (
                    sid in sessions
                    or str(principal.user_id) in users
                    or str(principal.tenant_id) in tenants
                ):
                    del self._entries[sid]

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()
            self._claims.clear()


_CACHES: weakref.WeakSet[SessionCache] = weakref.WeakSet()


def invalidate_local(keys: Iterable[str]) -> None:
    """Drop the entries from every cache of this process (the bus calls this for the others)."""
    keys = list(keys)
    for cache in list(_CACHES):
        cache.invalidate(keys)


@event.listens_for(Session, "after_flush")
def _note_orm_changes(session: Session, _context: Any) -> None:
    keys = [
        f"u:{obj.id}" if isinstance(obj, User) else f"t:{obj.id}"
        for obj in (*session.dirty, *session.deleted)
        if isinstance(obj, User | Tenant)
    ]
    if keys:
        changed(session, keys)


@event.listens_for(Session, "after_commit")
def _invalidate_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT was released: nothing is committed yet
    keys: set[str] = session.info.pop(CHANGED_KEY, set())
    if not keys:
        return
    invalidate_local(keys)
    bus = session.info.get(BUS_KEY)
    if bus is not None:
        bus.invalidate(sorted(keys))


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(CHANGED_KEY, None)
