"""Use cases of tenants and users: sign-in, user administration, white-label branding, audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from doorstep.platform import auth, events, notify
from doorstep.platform.access import get_readable, readable
from doorstep.platform.audit import AuditEntry
from doorstep.platform.auth import Principal, Role, Tenant, TokenSettings, User
from doorstep.platform.errors import Conflict, Forbidden, NotFound, RuleViolation, TooManyRequests
from doorstep.platform.ratelimit import RateLimiter
from doorstep.platform.schemas import TenantUpdate, UserCreate, UserUpdate

LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
MAX_LOGO_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class LoginLimits:
    limiter: RateLimiter
    attempts: int
    window: int


def _limit_keys(email: str, ip: str) -> list[tuple[str, int]]:
    # Per address and e-mail, plus a looser cap per address against password spraying.
    return [(f"login:{ip}:{email}", 1), (f"login-ip:{ip}", 5)]


def sign_in(session: Session, *, email: str, password: str, ip: str, limits: LoginLimits) -> User:
    """Check credentials under the login rate limit (429 with Retry-After when exhausted)."""
    email = email.strip().lower()
    keys = _limit_keys(email, ip)
    for key, factor in keys:
        wait = limits.limiter.blocked(key, limit=limits.attempts * factor)
        if wait is not None:
            raise TooManyRequests(
                f"Too many login attempts; try again in {wait} seconds", retry_after=wait
            )
    try:
        user = auth.authenticate(session, email=email, password=password)
    except auth.InvalidCredentials:
        for key, factor in keys:
            limits.limiter.hit(key, limit=limits.attempts * factor, window=limits.window)
        raise
    limits.limiter.reset(keys[0][0])
    return user


def token_sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    ip: str,
    user_agent: str | None,
    limits: LoginLimits,
    cfg: TokenSettings,
) -> auth.TokenPair:
    user = sign_in(session, email=email, password=password, ip=ip, limits=limits)
    return auth.issue_tokens(session, user=user, cfg=cfg, user_agent=user_agent, ip=ip)


def logout(session: Session, *, principal: Principal, refresh_token: str | None) -> None:
    if refresh_token:
        auth.revoke_by_refresh_token(session, token=refresh_token)
    if principal.session_id:
        auth.revoke_session(session, session_id=principal.session_id, reason="logout")


def get_tenant(session: Session, *, principal: Principal) -> Tenant:
    tenant = session.get(Tenant, principal.tenant_id)
    if tenant is None:
        raise NotFound("Tenant not found")
    return tenant


def get_logo(session: Session, *, principal: Principal) -> tuple[bytes, str]:
    tenant = session.scalar(
        select(Tenant).options(undefer(Tenant.logo)).where(Tenant.id == principal.tenant_id)
    )
    if tenant is None or tenant.logo is None or tenant.logo_content_type is None:
        raise NotFound("This tenant has no logo")
    return tenant.logo, tenant.logo_content_type


def _require_admin(principal: Principal) -> None:
    if principal.role != Role.admin:
        raise Forbidden("Only an admin can do this")


def update_tenant(session: Session, *, principal: Principal, changes: TenantUpdate) -> Tenant:
    _require_admin(principal)
    tenant = get_tenant(session, principal=principal)
    values = changes.model_dump(exclude_unset=True)
    for key, value in values.items():
        if value is None:
            raise RuleViolation(f"{key} cannot be empty")
        setattr(tenant, key, value)
    session.flush()
    events.record(
        session,
        tenant_id=tenant.id,
        channels=[f"tenant:{tenant.id}"],
        type="tenant.updated",
        data={"changed": sorted(values)},
    )
    return tenant


def _user_changed(session: Session, user: User, kind: str) -> None:
    """Admins (and the person concerned) see user changes live."""
    events.record(
        session,
        tenant_id=user.tenant_id,
        channels=[f"tenant:{user.tenant_id}", f"user:{user.id}"],
        type=f"user.{kind}",
        data={
            "user_id": user.id,
            "full_name": user.full_name,
            "role": str(user.role),
            "is_active": user.is_active,
            "phone": user.phone,
        },
        audience=events.Audience(users=(user.id,), roles=(Role.admin,)),
    )


def set_logo(session: Session, *, principal: Principal, data: bytes) -> Tenant:
    _require_admin(principal)
    if len(data) > MAX_LOGO_BYTES:
        raise RuleViolation(f"The logo must be at most {MAX_LOGO_BYTES // 1024} KB")
    content_type = next((t for magic, t in LOGO_TYPES.items() if data.startswith(magic)), None)
    if content_type is None:
        raise RuleViolation("The logo must be a PNG or JPEG image")
    tenant = get_tenant(session, principal=principal)
    tenant.logo = data
    tenant.logo_content_type = content_type
    session.flush()
    return tenant


def list_users(
    session: Session,
    *,
    principal: Principal,
    role: Role | None = None,
    query: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> tuple[list[User], int]:
    stmt = readable(select(User), principal)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(func.lower(User.full_name).like(like) | User.email.like(like))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(User.full_name, User.id).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total


def get_user(session: Session, *, principal: Principal, user_id: int) -> User:
    if user_id == principal.user_id:
        # Everyone may read themselves; the session check has usually loaded this row already.
        me = session.get(User, user_id)
        if me is not None:
            return me
    return get_readable(session, User, user_id, principal)


def _check_links(
    session: Session,
    *,
    principal: Principal,
    role: Role,
    broker_id: int | None,
    agent_id: int | None,
) -> None:
    """An agent's broker must be a broker, a client's agent an agent, both of the same tenant."""
    for field, ident, needed in (
        ("broker_id", broker_id, Role.broker),
        ("agent_id", agent_id, Role.agent),
    ):
        if ident is None:
            continue
        other = session.scalar(
            select(User).where(User.id == ident, User.tenant_id == principal.tenant_id)
        )
        if other is None or other.role != needed:
            raise RuleViolation(f"{field} must be the id of a {needed} of this tenant")
    if broker_id is not None and role != Role.agent:
        raise RuleViolation("Only an agent belongs to a broker (broker_id)")
    if agent_id is not None and role != Role.client:
        raise RuleViolation("Only a client is served by an agent (agent_id)")


def create_user(session: Session, *, principal: Principal, data: UserCreate) -> User:
    _require_admin(principal)
    email = data.email.lower()
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"A user with the email {email} already exists")
    _check_links(
        session,
        principal=principal,
        role=data.role,
        broker_id=data.broker_id,
        agent_id=data.agent_id,
    )
    user = User(
        tenant_id=principal.tenant_id,
        email=email,
        full_name=data.full_name,
        role=data.role,
        phone=data.phone,
        broker_id=data.broker_id,
        agent_id=data.agent_id,
        password_hash=auth.hash_password(data.password),
    )
    session.add(user)
    session.flush()
    _user_changed(session, user, "created")
    return user


def update_user(
    session: Session, *, principal: Principal, user_id: int, changes: UserUpdate
) -> User:
    _require_admin(principal)
    user = get_user(session, principal=principal, user_id=user_id)
    values: dict[str, Any] = changes.model_dump(exclude_unset=True)
    if user.id == principal.user_id and (
        values.get("is_active") is False or values.get("role", Role.admin) != Role.admin
    ):
        raise RuleViolation("You cannot deactivate yourself or remove your own admin role")
    role = values.get("role", user.role)
    _check_links(
        session,
        principal=principal,
        role=Role(role),
        broker_id=values.get("broker_id", user.broker_id),
        agent_id=values.get("agent_id", user.agent_id),
    )
    changed = [key for key, value in values.items() if getattr(user, key, None) != value]
    if "password" in values:
        password = values.pop("password")
        if password is None:
            raise RuleViolation("password cannot be empty")
        user.password_hash = auth.hash_password(password)
    for key, value in values.items():
        if key in ("full_name", "role", "is_active") and value is None:
            raise RuleViolation(f"{key} cannot be empty")
        setattr(user, key, value)
    if values.get("is_active") is False:
        _revoke_all_sessions(session, user_id=user.id)
    session.flush()
    if changed and user.id != principal.user_id:
        _tell_user_of_changes(session, principal=principal, user=user, changed=changed)
    _user_changed(session, user, "updated")
    return user


_FIELD_NAMES = {
    "full_name": "name",
    "role": "role",
    "phone": "phone number",
    "broker_id": "broker",
    "agent_id": "agent",
    "is_active": "access",
    "password": "password",
}


def _tell_user_of_changes(
    session: Session, *, principal: Principal, user: User, changed: list[str]
) -> None:
    fields = [_FIELD_NAMES.get(key, key) for key in changed]
    listed = fields[0] if len(fields) == 1 else ", ".join(fields[:-1]) + " and " + fields[-1]
    notify.notify(
        session,
        user_id=user.id,
        type=notify.ACCOUNT_UPDATED.key,
        title="Your account was updated",
        body=f"{principal.full_name} changed your {listed}.",
        link="/",
    )


def _revoke_all_sessions(session: Session, *, user_id: int) -> None:
    for sid in session.scalars(
        select(auth.AuthSession.id).where(
            auth.AuthSession.user_id == user_id, auth.AuthSession.revoked_at.is_(None)
        )
    ):
        auth.revoke_session(session, session_id=sid, reason="deactivated")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    entity: str | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _aware(moment: datetime) -> datetime:
    """Query-string times without a zone are read as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_audit(
    session: Session, *, principal: Principal, filters: AuditFilter, page: int, per_page: int
) -> tuple[list[AuditEntry], int]:
    _require_admin(principal)
    stmt = select(AuditEntry).where(AuditEntry.tenant_id == principal.tenant_id)
    if filters.entity:
        stmt = stmt.where(AuditEntry.entity == filters.entity)
    if filters.action:
        stmt = stmt.where(AuditEntry.action == filters.action)
    if filters.actor:
        stmt = stmt.where(AuditEntry.actor.like(f"%{filters.actor.lower()}%"))
    if filters.since:
        stmt = stmt.where(AuditEntry.at >= _aware(filters.since))
    if filters.until:
        stmt = stmt.where(AuditEntry.at < _aware(filters.until))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(AuditEntry.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total


def audit_entities(session: Session, *, principal: Principal) -> list[str]:
    _require_admin(principal)
    return list(
        session.scalars(
            select(AuditEntry.entity)
            .where(AuditEntry.tenant_id == principal.tenant_id)
            .distinct()
            .order_by(AuditEntry.entity)
        )
    )
