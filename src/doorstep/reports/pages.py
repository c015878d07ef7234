"""The report builder and history page (`/reports`): pick a template, its subject, sections and
format; the history shows each report's status and refreshes itself while one is being made."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform import accounts
from doorstep.platform.access import readable
from doorstep.platform.auth import Principal, Tenant
from doorstep.platform.errors import DoorstepError
from doorstep.platform.http import DB, DoorstepRoute, is_htmx, require_role
from doorstep.reports import builder, rules, service
from doorstep.reports.models import Company
from doorstep.web.formatting import local_time
from doorstep.web.templating import flash, render

router = APIRouter(route_class=DoorstepRoute, include_in_schema=False)
Viewer = Annotated[Principal, require_role(*rules.VIEWER_ROLES)]


def _history(db: Session, principal: Principal, tenant: Tenant) -> dict[str, Any]:
    """What the history card shows (all its self-refresh asks for while a report is made)."""
    reports, total = service.history(db, principal, page=1, per_page=25)
    shown = local_time(tenant)
    return {
        "reports": [{**service.summary(r), "created": shown(r.created_at)} for r in reports],
        "total": total,
        "pending": any(r.status in rules.PENDING_STATUSES for r in reports),
    }


def _context(db: Session, principal: Principal, tenant: Tenant) -> dict[str, Any]:
    companies = db.scalars(readable(select(Company), principal).order_by(Company.name)).all()
    templates = [t for t in rules.TEMPLATES.values() if rules.may_generate(principal.role, t)]
    return {
        "templates": templates,
        "section_titles": rules.SECTION_TITLES,
        "formats": rules.FORMATS,
        "companies": companies,
        "agents": builder.reportable_agents(db, principal),
        **_history(db, principal, tenant),
        "schedules": service.list_schedules(db, principal),
        "cadences": rules.CADENCES,
        "error": None,
        "chosen": {},
    }


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, db: DB, principal: Viewer) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    if is_htmx(request):
        return render(
            request, "reports/_history.html", _history(db, principal, tenant), tenant=tenant
        )
    return render(request, "reports/index.html", _context(db, principal, tenant), tenant=tenant)


@router.post("/reports", response_class=HTMLResponse)
def ask(
    request: Request,
    db: DB,
    principal: Viewer,
    template: Annotated[str, Form(max_length=48)] = "",
    format: Annotated[str, Form(max_length=8)] = "pdf",
    subject: Annotated[str, Form(max_length=12)] = "",
    sections: Annotated[list[str] | None, Form(max_length=20)] = None,
) -> Response:
    """The builder's form: the same checks as the API; a refusal is shown with its reason.
    The one subject field names a company or an agent: the service keeps the one the template
    reports on."""
    subject_id = int(subject) if subject.isdigit() and 0 < int(subject) < 2**31 else None
    req = service.Request(
        template=template,
        format=format,
        sections=[s[:48] for s in sections or []],
        company_id=subject_id,
        agent_id=subject_id,
    )
    try:
        service.request_report(db, principal, req)
    except DoorstepError as exc:
        tenant = accounts.get_tenant(db, principal=principal)
        context = _context(db, principal, tenant)
        context.update(
            error=exc.detail,
            chosen={
                "template": template,
                "format": format,
                "subject": subject,
                "sections": sections or [],
            },
        )
        return render(request, "reports/index.html", context, status_code=422, tenant=tenant)
    response = RedirectResponse("/reports", status_code=303)
    flash(response, "Your report is being made; it appears below when it is ready.")
    return response
