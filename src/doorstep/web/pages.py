"""HTML routes of the platform: sign-in, the home page per role, and the admin pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from doorstep.platform import accounts, auth
from doorstep.platform.api import login_limits
from doorstep.platform.auth import Principal, Role, User
from doorstep.platform.errors import DoorstepError, InvalidCredentials, TooManyRequests
from doorstep.platform.http import (
    DB,
    SESSION_COOKIE,
    CurrentPrincipal,
    DoorstepRoute,
    OptionalPrincipal,
    client_ip,
    require_role,
)
from doorstep.platform.schemas import TenantUpdate, UserCreate
from doorstep.web.formatting import safe_next
from doorstep.web.templating import THEME_COOKIE, flash, render

router = APIRouter(route_class=DoorstepRoute, include_in_schema=False)
AdminPage = Annotated[Principal, require_role(Role.admin)]
PER_PAGE = 25


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, principal: OptionalPrincipal, next: str | None = None) -> Response:
    if principal is not None:
        return redirect(safe_next(next))
    return render(request, "login.html", {"next": safe_next(next), "email": ""})


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    db: DB,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    try:
        user = accounts.sign_in(
            db, email=email, password=password, ip=client_ip(request), limits=login_limits(request)
        )
    except (InvalidCredentials, TooManyRequests) as exc:
        response = render(
            request,
            "login.html",
            {"next": safe_next(next), "email": email, "error": exc.detail},
            status_code=exc.status_code,
        )
        response.headers.update(exc.headers)
        return response
    cookie, _ = auth.start_web_session(
        db,
        user=user,
        cfg=request.app.state.token_settings,
        user_agent=request.headers.get("user-agent"),
        ip=client_ip(request),
    )
    settings = request.app.state.settings
    done = redirect(safe_next(next))
    done.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
        path="/",
    )
    return done


@router.post("/logout")
def logout(db: DB, principal: CurrentPrincipal) -> Response:
    accounts.logout(db, principal=principal, refresh_token=None)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    flash(response, "You are signed out.")
    return response


@router.post("/theme")
def toggle_theme(request: Request, principal: CurrentPrincipal) -> Response:
    dark = request.cookies.get(THEME_COOKIE) != "dark"
    response = Response(status_code=204)
    response.set_cookie(
        THEME_COOKIE, "dark" if dark else "light", max_age=365 * 86400, samesite="lax"
    )
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    context: dict[str, object] = {}
    if principal.role == Role.admin:
        counts = dict(
            db.execute(
                select(User.role, func.count())
                .where(User.tenant_id == principal.tenant_id)
                .group_by(User.role)
            ).all()
        )
        context["role_counts"] = [(role, counts.get(role, 0)) for role in Role]
        context["recent"] = _recent_changes(db, principal)
    elif principal.role == Role.broker:
        context["agents"], context["agent_total"] = accounts.list_users(
            db, principal=principal, role=Role.agent, per_page=12
        )
    elif principal.role == Role.agent:
        context["clients"], _ = accounts.list_users(db, principal=principal, role=Role.client)
        context["broker"] = (
            accounts.get_user(db, principal=principal, user_id=principal.broker_id)
            if principal.broker_id
            else None
        )
    if principal.role in (Role.agent, Role.broker):
        from doorstep.crm.pages import home_widgets

        context.update(home_widgets(db, principal))
    if principal.role == Role.client and principal.agent_id:
        context["agent"] = accounts.get_user(db, principal=principal, user_id=principal.agent_id)
    return render(request, f"home/{principal.role}.html", context, tenant=tenant)


def _recent_changes(db: DB, principal: Principal) -> list[object]:
    rows, _ = accounts.list_audit(
        db, principal=principal, filters=accounts.AuditFilter(), page=1, per_page=8
    )
    return list(rows)


@router.get("/admin/recent-changes", response_class=HTMLResponse)
def recent_changes(request: Request, db: DB, principal: AdminPage) -> Response:
    """The admin home's "Recent changes" card, re-fetched live when users or branding change."""
    return render(request, "home/_recent_changes.html", {"recent": _recent_changes(db, principal)})


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    db: DB,
    principal: AdminPage,
    role: Annotated[Role | Literal[""] | None, Query(description="empty: all roles")] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    role = role or None  # the filter form sends role= for "All roles"
    rows, total = accounts.list_users(
        db, principal=principal, role=role, query=q, page=page, per_page=PER_PAGE
    )
    brokers, _ = accounts.list_users(db, principal=principal, role=Role.broker, per_page=200)
    context = {
        "users": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PER_PAGE)),
        "role": role,
        "q": q or "",
        "roles": list(Role),
        "brokers": brokers,
        "query_for": lambda p: urlencode(
            {k: v for k, v in {"role": role, "q": q, "page": p}.items() if v}
        ),
    }
    return render(
        request, "admin/users.html", context, tenant=accounts.get_tenant(db, principal=principal)
    )


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    db: DB,
    principal: AdminPage,
    email: Annotated[str, Form(max_length=254)],
    full_name: Annotated[str, Form(max_length=120)],
    role: Annotated[str, Form(max_length=16)],
    password: Annotated[str, Form(max_length=256)],
    broker_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    try:
        data = UserCreate(
            email=email,
            full_name=full_name,
            role=role,
            password=password,
            broker_id=int(broker_id) if broker_id.strip() else None,
        )
        user = accounts.create_user(db, principal=principal, data=data)
    except (ValidationError, ValueError, DoorstepError) as exc:
        form = {"email": email, "full_name": full_name, "role": role, "broker_id": broker_id}
        return _form_error(request, db, principal, _messages(exc), form)
    response = redirect("/admin/users")
    flash(response, f"{user.full_name} can now sign in as {user.email}.")
    return response


def _messages(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if isinstance(exc, DoorstepError):
        return exc.detail
    return "broker must be chosen from the list"


def _form_error(
    request: Request, db: DB, principal: Principal, message: str, form: dict[str, str]
) -> Response:
    db.rollback()
    rows, total = accounts.list_users(db, principal=principal, per_page=PER_PAGE)
    brokers, _ = accounts.list_users(db, principal=principal, role=Role.broker, per_page=200)
    return render(
        request,
        "admin/users.html",
        {
            "users": rows,
            "total": total,
            "page": 1,
            "pages": max(1, -(-total // PER_PAGE)),
            "role": None,
            "q": "",
            "roles": list(Role),
            "brokers": brokers,
            "form_error": message,
            "form": form,
            "query_for": lambda p: urlencode({"page": p}),
        },
        status_code=422,
        tenant=accounts.get_tenant(db, principal=principal),
    )


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    db: DB,
    principal: AdminPage,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(pattern="^(create|update|delete)?$")] = None,
    actor: Annotated[str | None, Query(max_length=254)] = None,
    since: Annotated[str | None, Query(max_length=32)] = None,
    until: Annotated[str | None, Query(max_length=32)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    filters = accounts.AuditFilter(
        entity=entity or None,
        action=action or None,
        actor=actor or None,
        since=_date(since),
        until=_date(until),
    )
    rows, total = accounts.list_audit(
        db, principal=principal, filters=filters, page=page, per_page=PER_PAGE
    )
    params = {"entity": entity, "action": action, "actor": actor, "since": since, "until": until}
    return render(
        request,
        "admin/audit.html",
        {
            "entries": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PER_PAGE)),
            "entities": accounts.audit_entities(db, principal=principal),
            "filters": params,
            "query_for": lambda p: urlencode({**{k: v for k, v in params.items() if v}, "page": p}),
        },
        tenant=accounts.get_tenant(db, principal=principal),
    )


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise DoorstepError(f"'{value}' is not a date (use YYYY-MM-DD)") from exc


@router.get("/admin/branding", response_class=HTMLResponse)
def branding_page(request: Request, db: DB, principal: AdminPage) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    return render(
        request,
        "admin/branding.html",
        {"has_logo": tenant.logo_content_type is not None},
        tenant=tenant,
    )


@router.post("/admin/branding", response_class=HTMLResponse)
def save_branding(
    request: Request,
    db: DB,
    principal: AdminPage,
    name: Annotated[str, Form(max_length=120)],
    primary_color: Annotated[str, Form(max_length=7)],
    timezone: Annotated[str, Form(max_length=64)],
    logo: UploadFile | None = None,
) -> Response:
    try:
        changes = TenantUpdate(name=name, primary_color=primary_color, timezone=timezone)
        accounts.update_tenant(db, principal=principal, changes=changes)
        if logo is not None and logo.filename:
            accounts.set_logo(
                db, principal=principal, data=logo.file.read(accounts.MAX_LOGO_BYTES + 1)
            )
    except (ValidationError, DoorstepError) as exc:
        db.rollback()
        message = _messages(exc)
        tenant = accounts.get_tenant(db, principal=principal)
        return render(
            request,
            "admin/branding.html",
            {"form_error": message, "has_logo": tenant.logo_content_type is not None},
            status_code=422,
            tenant=tenant,
        )
    response = redirect("/admin/branding")
    flash(response, "Branding saved.")
    return response
