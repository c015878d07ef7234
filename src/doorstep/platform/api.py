"""JSON routes of the platform: auth, users, tenant branding, audit log. Thin by design."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from doorstep.platform import accounts, auth
from doorstep.platform.auth import Principal, Role
from doorstep.platform.http import (
    DB,
    CurrentPrincipal,
    DirectRoute,
    DoorstepRoute,
    client_ip,
    current_identity,
    require_role,
)
from doorstep.platform.schemas import (
    AuditRead,
    LogoutRequest,
    Me,
    Page,
    RefreshRequest,
    TenantRead,
    TenantUpdate,
    TokenResponse,
    UserCreate,
    UserRead,
    UserUpdate,
)

router = APIRouter(prefix="/api", route_class=DoorstepRoute)
Admin = Annotated[Principal, require_role(Role.admin)]
PageNo = Annotated[int, Query(ge=1, le=10_000)]
PerPage = Annotated[int, Query(ge=1, le=200)]


def login_limits(request: Request) -> accounts.LoginLimits:
    cfg = request.app.state.settings
    return accounts.LoginLimits(
        limiter=request.app.state.rate_limiter,
        attempts=cfg.login_attempts,
        window=cfg.login_window_seconds,
    )


def _tokens(pair: auth.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
    )


@router.post("/auth/token", response_model=TokenResponse, tags=["auth"])
def token(
    request: Request,
    db: DB,
    username: Annotated[str, Form(max_length=254, description="The user's e-mail")],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenResponse:
    """OAuth2 password grant: a short-lived access token and a rotating refresh token."""
    pair = accounts.token_sign_in(
        db,
        email=username,
        password=password,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        limits=login_limits(request),
        cfg=request.app.state.token_settings,
    )
    return _tokens(pair)


@router.post("/auth/refresh", response_model=TokenResponse, tags=["auth"])
def refresh(request: Request, db: DB, body: RefreshRequest) -> TokenResponse:
    """Exchange a refresh token for a new pair. Reusing an old one revokes the whole family."""
    pair = auth.rotate_refresh_token(
        db, token=body.refresh_token, cfg=request.app.state.token_settings
    )
    return _tokens(pair)


@router.post("/auth/logout", status_code=204, tags=["auth"])
def logout(db: DB, principal: CurrentPrincipal, body: LogoutRequest | None = None) -> Response:
    accounts.logout(db, principal=principal, refresh_token=body.refresh_token if body else None)
    return Response(status_code=204)


async def me(request: Request) -> Response:
    """The signed-in user and their tenant, as the session check found them (no query)."""
    identity = await current_identity(request)
    return Response(identity.me_json, media_type="application/json")


# The hottest authenticated read: the app puts it ahead of every module's router (app.py).
me_route = DirectRoute("/api/auth/me", me, methods=["GET"], response_model=Me, tags=["auth"])


@router.get("/users", response_model=Page[UserRead], tags=["users"])
def list_users(
    db: DB,
    principal: CurrentPrincipal,
    role: Role | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: PageNo = 1,
    per_page: PerPage = 25,
) -> Page[UserRead]:
    rows, total = accounts.list_users(
        db, principal=principal, role=role, query=q, page=page, per_page=per_page
    )
    return Page[UserRead](
        items=[UserRead.model_validate(u) for u in rows], total=total, page=page, per_page=per_page
    )


@router.post("/users", response_model=UserRead, status_code=201, tags=["users"])
def create_user(db: DB, principal: Admin, body: UserCreate) -> UserRead:
    return UserRead.model_validate(accounts.create_user(db, principal=principal, data=body))


@router.get("/users/{user_id}", response_model=UserRead, tags=["users"])
def get_user(db: DB, principal: CurrentPrincipal, user_id: int) -> UserRead:
    return UserRead.model_validate(accounts.get_user(db, principal=principal, user_id=user_id))


@router.patch("/users/{user_id}", response_model=UserRead, tags=["users"])
def update_user(db: DB, principal: Admin, user_id: int, body: UserUpdate) -> UserRead:
    user = accounts.update_user(db, principal=principal, user_id=user_id, changes=body)
    return UserRead.model_validate(user)


@router.get("/tenant", response_model=TenantRead, tags=["tenant"])
def get_tenant(db: DB, principal: CurrentPrincipal) -> TenantRead:
    return TenantRead.of(accounts.get_tenant(db, principal=principal))


@router.patch("/tenant", response_model=TenantRead, tags=["tenant"])
def update_tenant(db: DB, principal: Admin, body: TenantUpdate) -> TenantRead:
    return TenantRead.of(accounts.update_tenant(db, principal=principal, changes=body))


@router.put("/tenant/logo", response_model=TenantRead, tags=["tenant"])
def upload_logo(db: DB, principal: Admin, logo: Annotated[UploadFile, File()]) -> TenantRead:
    data = logo.file.read(accounts.MAX_LOGO_BYTES + 1)
    return TenantRead.of(accounts.set_logo(db, principal=principal, data=data))


@router.get("/tenant/logo", tags=["tenant"], response_class=Response)
def logo(db: DB, principal: CurrentPrincipal) -> Response:
    data, content_type = accounts.get_logo(db, principal=principal)
    return Response(
        data, media_type=content_type, headers={"Cache-Control": "private, max-age=300"}
    )


@router.get("/audit", response_model=Page[AuditRead], tags=["audit"])
def audit_log(
    db: DB,
    principal: Admin,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(pattern="^(create|update|delete)$")] = None,
    actor: Annotated[str | None, Query(max_length=254)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: PageNo = 1,
    per_page: PerPage = 50,
) -> Page[AuditRead]:
    filters = accounts.AuditFilter(
        entity=entity, action=action, actor=actor, since=since, until=until
    )
    rows, total = accounts.list_audit(
        db, principal=principal, filters=filters, page=page, per_page=per_page
    )
    return Page[AuditRead](
        items=[AuditRead.model_validate(r) for r in rows], total=total, page=page, per_page=per_page
    )
