"""One Jinja2 environment for every module's pages, with the layout's context filled in."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from doorstep.modules import installed_modules, nav_for
from doorstep.platform.auth import Principal, Tenant
from doorstep.platform.http import CSRF_COOKIE, csrf_token_for

WEB_DIR = Path(__file__).parent
FLASH_COOKIE = "doorstep_flash"
THEME_COOKIE = "doorstep_theme"


def build_templates() -> Jinja2Templates:
    dirs = [WEB_DIR / "templates"] + [m.templates for m in installed_modules() if m.templates]
    templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    templates.env.loader = ChoiceLoader([FileSystemLoader(str(d)) for d in dirs])
    templates.env.globals["quote"] = quote
    templates.env.filters["unquote"] = unquote
    return templates


def _rgb(color: str) -> str:
    return ", ".join(str(int(color[i : i + 2], 16)) for i in (1, 3, 5))


def _unread_count(request: Request, principal: Principal | None) -> int:
    """The navbar bell's badge, read in the request's own session."""
    db: Session | None = getattr(request.state, "db", None)
    if principal is None or db is None:
        return 0  # signed out, or an error page after the request's session ended
    from doorstep.platform.notify import unread_count

    try:
        return unread_count(db, principal=principal)
    except SQLAlchemyError:
        return 0


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    tenant: Tenant | None = None,
) -> HTMLResponse:
    """Render a page (or, for htmx, the fragment it asks for) with the layout's context."""
    principal: Principal | None = getattr(request.state, "principal", None)
    csrf = csrf_token_for(request)
    color = tenant.primary_color if tenant else "#206bc4"
    full = {
        "principal": principal,
        "tenant": tenant,
        "brand_rgb": _rgb(color),
        "brand_color": color,
        "nav": nav_for(principal.role) if principal else [],
        "csrf_token": csrf,
        "flash": request.cookies.get(FLASH_COOKIE),
        "theme": "dark" if request.cookies.get(THEME_COOKIE) == "dark" else "light",
        "path": request.url.path,
        "unread_count": _unread_count(request, principal),
        **(context or {}),
    }
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(request, template, full, status_code=status_code)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")
    if principal is None and request.cookies.get(CSRF_COOKIE) != csrf:
        response.set_cookie(
            CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="lax",
            secure=request.app.state.settings.cookies_secure,
            path="/",
        )
    return response


def flash(response: Any, message: str) -> None:
    """A one-time message shown as a toast on the next page."""
    response.set_cookie(FLASH_COOKIE, quote(message), max_age=60, samesite="lax", path="/")
