"""Tenants, users, roles, passwords, JWT access tokens, rotating refresh tokens, cookie sessions,
and the Principal every request acts as."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ForeignKey, LargeBinary, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from doorstep.platform.audit import Audited
from doorstep.platform.db import Base, TenantMixin, TimestampMixin, utcnow
from doorstep.platform.errors import InvalidCredentials, InvalidToken

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "doorstep"


class Role(StrEnum):
    admin = "admin"
    broker = "broker"
    agent = "agent"
    client = "client"
    analyst = "analyst"


class Tenant(Audited, TimestampMixin, Base):
    """A brokerage or another business; its name, logo and colour brand every page it sees."""

    __tablename__ = "tenants"
    __audit_redact__ = frozenset({"logo"})

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    primary_color: Mapped[str] = mapped_column(String(7), default="#206bc4")
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True, default=None)
    logo_content_type: Mapped[str | None] = mapped_column(String(32), default=None)

    @property
    def audit_tenant_id(self) -> int:
        return self.id

    @property
    def zone(self) -> ZoneInfo:
        """The brokerage's time zone (UTC when the stored name is unknown)."""
        try:
            return ZoneInfo(self.timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


class User(Audited, TenantMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __audit_redact__ = frozenset({"password_hash"})
    __audit_ignore__ = frozenset({"updated_at", "last_login_at"})

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    # An agent belongs to a broker; a client (home buyer or seller) is served by an agent.
    broker_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


class AuthSession(TenantMixin, Base):
    """One signed-in device: a browser cookie session or an API refresh-token family.

    Revoking it logs that device out at once: every request checks it is still live."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "web" or "api"
    secret_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    csrf_token: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(256), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as. Services take it; access.py turns it into query filters."""

    user_id: int
    tenant_id: int
    role: Role
    email: str
    full_name: str
    session_id: str | None = None
    broker_id: int | None = None
    agent_id: int | None = None

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles

    @classmethod
    def of(cls, user: User, session_id: str | None = None) -> Principal:
        return cls(
            user_id=user.id,
            tenant_id=user.tenant_id,
            role=Role(user.role),
            email=user.email,
            full_name=user.full_name,
            session_id=session_id,
            broker_id=user.broker_id,
            agent_id=user.agent_id,
        )


# --- passwords -------------------------------------------------------------------------------

_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both paths take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, *, email: str, password: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise InvalidCredentials("Incorrect email or password")
    if not verify_password(user.password_hash, password) or not user.is_active:
        raise InvalidCredentials("Incorrect email or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


# --- tokens and sessions ---------------------------------------------------------------------


def digest(secret: str) -> str:
    """The SHA-256 a secret (refresh token, cookie) is stored as."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str]:
    """A cookie or refresh token's id and secret (InvalidToken when malformed)."""
    ident, _, secret = token.partition(".")
    if not ident or not secret or len(ident) > 32:
        raise InvalidToken("Malformed token")
    return ident, secret


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105


@dataclass(frozen=True, slots=True)
class TokenSettings:
    secret_key: str
    access_minutes: int
    refresh_days: int
    session_days: int


def encode_access_token(user: User, session_id: str, cfg: TokenSettings) -> str:
    now = utcnow()
    claims: dict[str, Any] = {
        "iss": JWT_ISSUER,
        "sub": str(user.id),
        "tid": user.tenant_id,
        "sid": session_id,
        "role": str(user.role),
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=cfg.access_minutes),
    }
    return jwt.encode(claims, cfg.secret_key, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, cfg: TokenSettings) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            cfg.secret_key,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("Access token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("Invalid access token") from exc
    if claims.get("typ") != "access":
        raise InvalidToken("Not an access token")
    return claims


def _new_refresh_token(session: Session, auth_session: AuthSession, cfg: TokenSettings) -> str:
    ident, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=ident,
            session_id=auth_session.id,
            token_hash=digest(secret),
            expires_at=utcnow() + timedelta(days=cfg.refresh_days),
        )
    )
    return f"{ident}.{secret}"


def issue_tokens(
    session: Session, *, user: User, cfg: TokenSettings, user_agent: str | None, ip: str | None
) -> TokenPair:
    """Start an API session (a refresh-token family) and return its first token pair."""
    auth_session = AuthSession(
        id=secrets.token_hex(16),
        tenant_id=user.tenant_id,
        user_id=user.id,
        kind="api",
        expires_at=utcnow() + timedelta(days=cfg.refresh_days),
        user_agent=(user_agent or "")[:256] or None,
        ip=ip,
    )
    session.add(auth_session)
    session.flush()
    return TokenPair(
        access_token=encode_access_token(user, auth_session.id, cfg),
        refresh_token=_new_refresh_token(session, auth_session, cfg),
        expires_in=cfg.access_minutes * 60,
    )


class RefreshTokenReused(InvalidToken):
    """A refresh token came back after it was exchanged: the family is revoked and stays so."""

    persist_changes = True


def rotate_refresh_token(session: Session, *, token: str, cfg: TokenSettings) -> TokenPair:
    ident, secret = split_token(token)
    row = session.get(RefreshToken, ident)
    if row is None or not hmac.compare_digest(row.token_hash, digest(secret)):
        raise InvalidToken("Invalid refresh token")
    auth_session = session.get(AuthSession, row.session_id)
    now = utcnow()
    if auth_session is None or auth_session.revoked_at is not None:
        raise InvalidToken("Session has been revoked")
    # Mark used atomically: of two concurrent exchanges of one token, only one wins.
    claimed = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == ident, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        revoke_session(session, session_id=auth_session.id, reason="refresh_token_reuse")
        raise RefreshTokenReused("Refresh token was already used; the session has been revoked")
    if row.expires_at < now or auth_session.expires_at < now:
        raise InvalidToken("Refresh token expired")
    user = session.get(User, auth_session.user_id)
    if user is None or not user.is_active:
        raise InvalidToken("User is not active")
    auth_session.expires_at = now + timedelta(days=cfg.refresh_days)
    return TokenPair(
        access_token=encode_access_token(user, auth_session.id, cfg),
        refresh_token=_new_refresh_token(session, auth_session, cfg),
        expires_in=cfg.access_minutes * 60,
    )


def start_web_session(
    session: Session, *, user: User, cfg: TokenSettings, user_agent: str | None, ip: str | None
) -> tuple[str, AuthSession]:
    """Create a browser session; returns the cookie value and the row."""
    secret = secrets.token_urlsafe(32)
    auth_session = AuthSession(
        id=secrets.token_hex(16),
        tenant_id=user.tenant_id,
        user_id=user.id,
        kind="web",
        secret_hash=digest(secret),
        csrf_token=secrets.token_urlsafe(32),
        expires_at=utcnow() + timedelta(days=cfg.session_days),
        user_agent=(user_agent or "")[:256] or None,
        ip=ip,
    )
    session.add(auth_session)
    session.flush()
    return f"{auth_session.id}.{secret}", auth_session


CHANGED_KEY = "doorstep.auth.changed"  # Session.info: sessions/users/tenants changed


def changed(session: Session, keys: Iterable[str]) -> None:
    """Say that this unit of work changes sessions `s:<id>`, users `u:<id>` or tenants `t:<id>`:
    after its commit, cached session checks of them are dropped (platform/auth_cache.py)."""
    session.info.setdefault(CHANGED_KEY, set()).update(keys)


def revoke_session(session: Session, *, session_id: str, reason: str) -> None:
    changed(session, [f"s:{session_id}"])
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def revoke_by_refresh_token(session: Session, *, token: str) -> None:
    ident, secret = split_token(token)
    row = session.get(RefreshToken, ident)
    if row is None or not hmac.compare_digest(row.token_hash, digest(secret)):
        raise InvalidToken("Invalid refresh token")
    revoke_session(session, session_id=row.session_id, reason="logout")


def live_session(session: Session, *, session_id: str) -> tuple[User, AuthSession, Tenant]:
    """The session, its user and tenant, if the session is unrevoked, unexpired and the user
    active; InvalidToken otherwise. One query; platform/auth_cache.py keeps its answer."""
    row = session.execute(
        select(User, AuthSession, Tenant)
        .join(AuthSession, AuthSession.user_id == User.id)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
    ).first()
    if row is None:
        raise InvalidToken("Session has ended")
    user, auth_session, tenant = row
    if auth_session.expires_at < utcnow() or not user.is_active:
        raise InvalidToken("Session has ended")
    return user, auth_session, tenant
