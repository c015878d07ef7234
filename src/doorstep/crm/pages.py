"""HTML routes of the CRM (seed 003): the Kanban, the leads, properties and clients tables, the
multi-step property form, tasks, appointments, the agent's home widgets and the admin views.
They call the same service as the JSON API; the rules' refusals come back with every reason."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from doorstep.crm import gallery, rules, service
from doorstep.crm.models import (
    AppointmentStatus,
    ClientStatus,
    Heat,
    InteractionKind,
    LeadSource,
    MessageChannel,
    MessageType,
    PropertyStatus,
    PropertyType,
    TaskStatus,
)
from doorstep.crm.schemas import (
    AppointmentUpdate,
    InteractionCreate,
    LeadCreate,
    MessageCreate,
    PropertyCreate,
    TaskUpdate,
)
from doorstep.platform import accounts, channels
from doorstep.platform.auth import Principal, Role, Tenant, User
from doorstep.platform.db import utcnow
from doorstep.platform.errors import DoorstepError, RuleViolation
from doorstep.platform.http import DB, DoorstepRoute, require_role
from doorstep.web.formatting import local_time, money, safe_next
from doorstep.web.templating import flash, render

router = APIRouter(route_class=DoorstepRoute, include_in_schema=False)

STAFF = (Role.admin, Role.broker, Role.agent)
StaffPage = Annotated[Principal, require_role(*STAFF)]
AdminPage = Annotated[Principal, require_role(Role.admin)]
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
Text100 = Annotated[str | None, Query(max_length=100)]
LEADS_PER_PAGE = 50
PROPERTIES_PER_PAGE = 25
CLIENTS_PER_PAGE = 25
LOG_PER_PAGE = 25
APPOINTMENT_DAYS = 30

HEAT_COLORS = {"hot": "red", "warm": "orange", "cold": "azure"}
PROPERTY_STATUS_COLORS = {
    "active": "green",
    "deposit_taken": "yellow",
    "sold": "purple",
    "withdrawn": "secondary",
}
TASK_KIND_ICONS = {"call": "phone", "meeting": "users", "email": "mail", "follow_up": "repeat"}
APPOINTMENT_COLORS = {
    "scheduled": "blue",
    "completed": "green",
    "no_show": "orange",
    "cancelled": "secondary",
}
MESSAGE_COLORS = {"queued": "secondary", "sent": "green", "captured": "green", "failed": "red"}
LEAD_SORT_KEYS = ("name", "created_at", "heat_score", "stage_entered_at", "budget")
LEAD_SORT_LABELS = {
    "name": "Name",
    "created_at": "Created",
    "heat_score": "Heat",
    "stage_entered_at": "In stage since",
    "budget": "Budget",
    "last_interaction_at": "Last touch",
}
PROPERTY_SORT_KEYS = ("title", "price", "city", "bedrooms", "area_sqft", "status", "created_at")
CLIENT_SORT_KEYS = ("name", "status", "created_at")
PROPERTY_FIELDS = ("title", "address", "city", "state", "zip_code", "price", "description")
ATTRIBUTE_FIELDS = {
    "residential": (
        "bedrooms",
        "bathrooms",
        "living_area_sqft",
        "year_built",
        "lot_size_sqft",
        "garage_spaces",
    ),
    "commercial": ("zoning", "units", "building_area_sqft", "cap_rate", "year_built"),
    "land": ("acreage", "zoning"),
}
# Which step of the property form holds a field, so that a refused form opens on its error.
STEP_OF = {"property_type": 1, "title": 1, "address": 1, "city": 1, "state": 1, "zip_code": 1}


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


# --- helpers the templates use -------------------------------------------------------------------


def days_since(value: datetime | None) -> int:
    if value is None:
        return 0
    return max((utcnow() - value).days, 0)


def label(value: str | None) -> str:
    return (value or "").replace("_", " ").capitalize()


def _common(db: Session, principal: Principal) -> tuple[Tenant, dict[str, Any]]:
    tenant = accounts.get_tenant(db, principal=principal)
    process = service.sales_rules(db, principal.tenant_id)
    return tenant, {
        "money": money,
        "local": local_time(tenant),
        "days_since": days_since,
        "label": label,
        "heat_colors": HEAT_COLORS,
        "property_colors": PROPERTY_STATUS_COLORS,
        "property_labels": rules.PROPERTY_STATUS_LABELS,
        "task_icons": TASK_KIND_ICONS,
        "appointment_colors": APPOINTMENT_COLORS,
        "message_colors": MESSAGE_COLORS,
        "stage_label": lambda name: s.label if (s := process.stage(name)) else label(name),
        "process": process,
        "now": utcnow(),
        "is_admin": principal.role == Role.admin,
    }


@dataclass(frozen=True)
class Query_:
    """A list page's query string: filters, sort and page, and links that change one of them."""

    params: dict[str, Any]

    def qs(self, **changes: Any) -> str:
        merged = {**self.params, **changes}
        pairs: list[tuple[str, Any]] = []
        for key, value in merged.items():
            if isinstance(value, list | tuple):
                pairs.extend((key, v) for v in value if v not in (None, ""))
            elif value not in (None, ""):
                pairs.append((key, value))
        return urlencode(pairs)

    def page(self, number: int) -> str:
        return self.qs(page=number)

    def sort(self, key: str) -> str:
        """The link of a column header: sort by it, or flip its direction."""
        current = str(self.params.get("sort") or "")
        return self.qs(sort=f"-{key}" if current == key else key, page=None)


def _pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def _agents(db: Session, principal: Principal) -> list[User]:
    """The brokerage's pipeline owners (agents and brokers), for admins' pickers."""
    agents, _ = accounts.list_users(db, principal=principal, role=Role.agent, per_page=1000)
    brokers, _ = accounts.list_users(db, principal=principal, role=Role.broker, per_page=200)
    return sorted((u for u in [*agents, *brokers] if u.is_active), key=lambda u: u.full_name)


def _errors_of(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()]
    if isinstance(exc, DoorstepError):
        return list(exc.errors) if exc.errors else [exc.detail]
    return [str(exc)]


def _field_errors(messages: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Split "field: message" lines into per-field messages and the rest."""
    fields: dict[str, list[str]] = {}
    general: list[str] = []
    for message in messages:
        key, sep, text = message.partition(": ")
        if sep and key.replace(".", "").replace("_", "").isalnum() and " " not in key:
            fields.setdefault(key, []).append(text)
        elif message.startswith("feature "):
            fields.setdefault("features", []).append(message)
        else:
            general.append(message)
    return fields, general


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value and value.strip() else None
    except ValueError:
        return None


# --- the agent's home ----------------------------------------------------------------------------


def home_widgets(db: Session, principal: Principal) -> dict[str, Any]:
    """The CRM cards of an agent's or broker's home page (web/pages.py includes them)."""
    tenant = accounts.get_tenant(db, principal=principal)
    return {
        "crm_home": service.agent_home(db, principal=principal),
        "crm_local": local_time(tenant),
        "crm_money": money,
        "heat_colors": HEAT_COLORS,
    }


# --- Kanban --------------------------------------------------------------------------------------


@router.get("/crm/leads/board", response_class=HTMLResponse)
def board_page(
    request: Request,
    db: DB,
    principal: StaffPage,
    agent_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    tenant, context = _common(db, principal)
    agents = _agents(db, principal) if principal.role == Role.admin else []
    owner = agent_id if principal.role == Role.admin else None
    columns = (
        service.board(db, principal=principal, agent_id=owner)
        if principal.role != Role.admin or owner is not None
        else []
    )
    process = context["process"]
    context.update(
        columns=columns,
        allowed={c.stage.name: process.allowed_targets(c.stage.name) for c in columns},
        agents=agents,
        agent_id=owner,
        owner_name=next((a.full_name for a in agents if a.id == owner), principal.full_name),
        closed_limit=service.CLOSED_COLUMN_LIMIT,
    )
    return render(request, "crm/board.html", context, tenant=tenant)


# --- leads ---------------------------------------------------------------------------------------

LeadSort = Annotated[str, Query(pattern=r"^-?(" + "|".join(LEAD_SORT_LABELS) + ")$")]


@router.get("/crm/leads", response_class=HTMLResponse)
def leads_page(
    request: Request,
    db: DB,
    principal: StaffPage,
    stage: Annotated[str | None, Query(max_length=40)] = None,
    heat: Annotated[Heat | Literal[""] | None, Query()] = None,
    source: Annotated[LeadSource | Literal[""] | None, Query()] = None,
    agent_id: Annotated[int | None, Query(ge=1)] = None,
    q: Text100 = None,
    sort: LeadSort = "-created_at",
    page: PageNo = 1,
) -> Response:
    tenant, context = _common(db, principal)
    is_admin = principal.role == Role.admin
    filters = service.LeadFilter(
        stage=[stage] if stage else [],
        heat=[str(heat)] if heat else [],
        source=[str(source)] if source else [],
        agent_id=agent_id if is_admin else None,
        q=(q or "").strip() or None,
    )
    rows, total = service.list_leads(
        db,
        principal=principal,
        filters=filters,
        sort=sort,
        offset=(page - 1) * LEADS_PER_PAGE,
        limit=LEADS_PER_PAGE,
    )
    agents = _agents(db, principal) if is_admin else []
    params = {
        "stage": stage,
        "heat": heat,
        "source": source,
        "agent_id": agent_id if is_admin else None,
        "q": (q or "").strip(),
        "sort": sort,
    }
    query = Query_(params)
    export = {
        "stage": stage,
        "heat": heat,
        "source": source,
        "agent_id": params["agent_id"],
        "search": params["q"],
        "ordering": sort,
    }
    context.update(
        leads=rows,
        total=total,
        page=page,
        pages=_pages(total, LEADS_PER_PAGE),
        filters=params,
        query=query,
        query_for=query.page,
        sort=sort,
        sort_labels=LEAD_SORT_LABELS,
        sources=list(LeadSource),
        heats=list(Heat),
        agents=agents,
        agent_names={a.id: a.full_name for a in agents},
        export_url="/api/leads/export?" + Query_(export).qs(),
        back=str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
    )
    return render(request, "crm/leads.html", context, tenant=tenant)


@router.post("/crm/leads/reassign")
def reassign_leads(
    db: DB,
    principal: AdminPage,
    lead_ids: Annotated[list[int], Form(max_length=200)],
    agent_id: Annotated[str, Form(max_length=12)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/crm/leads",
) -> Response:
    """Admins hand the checked leads to an agent, or let the assignment chain decide again."""
    target = _int(agent_id)
    for lead_id in lead_ids:
        service.reassign_lead(db, principal=principal, lead_id=lead_id, agent_id=target)
    response = _redirect(safe_next(next, "/crm/leads"))
    who = "the assignment rules" if target is None else "the chosen agent"
    flash(response, f"{len(lead_ids)} lead(s) reassigned by {who}.")
    return response


# --- lead import ---------------------------------------------------------------------------------

MAX_CSV_BYTES = 5 * 1024 * 1024


@router.get("/crm/leads/import", response_class=HTMLResponse)
def import_page(request: Request, db: DB, principal: StaffPage) -> Response:
    tenant, context = _common(db, principal)
    context.update(preview=None, columns=service.LEAD_COLUMNS)
    return render(request, "crm/import.html", context, tenant=tenant)


def _import_preview(
    request: Request,
    db: Session,
    principal: Principal,
    text: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    tenant, context = _common(db, principal)
    preview: service.ImportPreview | None = None
    problems: list[str] = [error] if error else []
    try:
        preview = service.parse_leads_csv(text)
        if not preview.rows:
            problems.append("The CSV has no rows.")
    except DoorstepError as exc:
        problems.extend(_errors_of(exc))
        status_code = 422
    context.update(
        preview=preview,
        csv_text=text,
        problems=problems,
        columns=preview.columns if preview else service.LEAD_COLUMNS,
    )
    return render(request, "crm/import.html", context, status_code=status_code, tenant=tenant)


@router.post("/crm/leads/import", response_class=HTMLResponse)
async def import_upload(
    request: Request,
    db: DB,
    principal: StaffPage,
    file: Annotated[UploadFile, File()],
) -> Response:
    """Step one: check the file and show every row with its errors; nothing is imported yet."""
    data = await file.read(MAX_CSV_BYTES + 1)
    error = None
    if len(data) > MAX_CSV_BYTES:
        data, error = b"", f"The CSV is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB."
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text, error = "", "The CSV must be UTF-8 text."
    if error:
        return await run_in_threadpool(
            _import_preview, request, db, principal, "name\n", error, 422
        )
    return await run_in_threadpool(_import_preview, request, db, principal, text)


@router.post("/crm/leads/import/confirm", response_class=HTMLResponse)
def import_confirm(
    request: Request,
    db: DB,
    principal: StaffPage,
    csv_text: Annotated[str, Form(max_length=MAX_CSV_BYTES)],
    only_valid: Annotated[bool, Form()] = False,
) -> Response:
    """Step two: import, refused while rows have errors unless only the valid ones are asked."""
    try:
        result = service.import_leads(db, principal=principal, text=csv_text, only_valid=only_valid)
    except DoorstepError as exc:
        db.rollback()
        return _import_preview(request, db, principal, csv_text, exc.detail, exc.status_code)
    response = _redirect("/crm/leads")
    skipped = f", {result.skipped} row(s) with errors skipped" if result.skipped else ""
    flash(response, f"Imported {result.imported} lead(s){skipped}.")
    return response


# --- one lead ------------------------------------------------------------------------------------


@router.get("/crm/leads/new", response_class=HTMLResponse)
def new_lead_page(request: Request, db: DB, principal: StaffPage) -> Response:
    return _lead_form(request, db, principal, {}, {}, [])


def _lead_form(
    request: Request,
    db: Session,
    principal: Principal,
    values: dict[str, str],
    field_errors: dict[str, list[str]],
    general: list[str],
    status_code: int = 200,
) -> Response:
    tenant, context = _common(db, principal)
    context.update(
        values=values,
        field_errors=field_errors,
        general_errors=general,
        sources=list(LeadSource),
        agents=_agents(db, principal) if principal.role == Role.admin else [],
    )
    return render(request, "crm/lead_new.html", context, status_code=status_code, tenant=tenant)


@router.post("/crm/leads/new", response_class=HTMLResponse)
def create_lead(
    request: Request,
    db: DB,
    principal: StaffPage,
    name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    source: Annotated[str, Form(max_length=24)] = "website",
    budget: Annotated[str, Form(max_length=20)] = "",
    zip_code: Annotated[str, Form(max_length=10)] = "",
    notes: Annotated[str, Form(max_length=5000)] = "",
    agent_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    values = {
        "name": name,
        "email": email,
        "phone": phone,
        "source": source,
        "budget": budget,
        "zip_code": zip_code,
        "notes": notes,
        "agent_id": agent_id,
    }
    payload: dict[str, Any] = {k: v.strip() for k, v in values.items() if v.strip()}
    if "budget" in payload:
        payload["budget"] = payload["budget"].replace(",", "").lstrip("$")
    try:
        data = LeadCreate.model_validate(payload)
        lead = service.create_lead(db, principal=principal, data=data, origin="web form")
    except (ValidationError, DoorstepError) as exc:
        if isinstance(exc, DoorstepError) and exc.status_code in (403, 404):
            raise
        db.rollback()
        fields, general = _field_errors(_errors_of(exc))
        return _lead_form(request, db, principal, values, fields, general, 422)
    response = _redirect(f"/crm/leads/{lead.id}")
    flash(response, f"Lead {lead.name} added.")
    return response


def _lead_context(db: Session, principal: Principal, lead_id: int) -> dict[str, Any]:
    lead = service.get_lead(db, principal=principal, lead_id=lead_id)
    process = service.sales_rules(db, principal.tenant_id)
    tasks, _ = service.list_tasks(
        db, principal=principal, status=[], due_before=None, lead_id=lead.id, limit=100
    )
    context: dict[str, Any] = {
        "lead": lead,
        "targets": [process.stage(n) for n in process.allowed_targets(lead.stage)],
        "interactions": service.interactions_of(db, principal=principal, lead_id=lead.id),
        "messages": service.messages_of(db, principal=principal, lead_id=lead.id),
        "tasks": [t for t, _ in tasks],
        "interaction_kinds": [
            k
            for k in InteractionKind
            if k not in (InteractionKind.stage_change, InteractionKind.message)
        ],
        "channels": list(MessageChannel),
        "message_types": list(MessageType),
        "owner": db.get(User, lead.agent_id) if lead.agent_id else None,
        "assignments": [],
        "agents": [],
    }
    if principal.role == Role.admin:
        context["assignments"], _ = service.assignment_log(
            db, principal=principal, lead_id=lead.id, offset=0, limit=10
        )
        context["agents"] = _agents(db, principal)
    return context


def _lead_page(
    request: Request,
    db: Session,
    principal: Principal,
    lead_id: int,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    tenant, context = _common(db, principal)
    context.update(_lead_context(db, principal, lead_id))
    context.update(extra)
    return render(request, "crm/lead.html", context, status_code=status_code, tenant=tenant)


@router.get("/crm/leads/{lead_id}", response_class=HTMLResponse)
def lead_page(request: Request, db: DB, principal: StaffPage, lead_id: Id) -> Response:
    return _lead_page(request, db, principal, lead_id)


@router.post("/crm/leads/{lead_id}/stage", response_class=HTMLResponse)
def change_stage(
    request: Request,
    db: DB,
    principal: StaffPage,
    lead_id: Id,
    to_stage: Annotated[str, Form(max_length=40)],
) -> Response:
    """The stage buttons: the same rules as the Kanban and the API, every reason shown."""
    try:
        lead = service.transition_lead(db, principal=principal, lead_id=lead_id, to_stage=to_stage)
    except service.TransitionRefused as exc:
        db.rollback()
        return _lead_page(
            request, db, principal, lead_id, 409, stage_errors=exc.errors, tried=to_stage
        )
    response = _redirect(f"/crm/leads/{lead.id}")
    process = service.sales_rules(db, principal.tenant_id)
    stage = process.stage(lead.stage)
    flash(response, f"{lead.name} moved to {stage.label if stage else lead.stage}.")
    return response


@router.post("/crm/leads/{lead_id}/interactions", response_class=HTMLResponse)
def log_interaction(
    request: Request,
    db: DB,
    principal: StaffPage,
    lead_id: Id,
    kind: Annotated[str, Form(max_length=16)],
    summary: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        body = InteractionCreate(kind=kind, summary=summary)
        service.record_interaction(
            db, principal=principal, lead_id=lead_id, kind=body.kind, summary=body.summary
        )
    except (ValidationError, RuleViolation) as exc:
        db.rollback()
        return _lead_page(request, db, principal, lead_id, 422, interaction_errors=_errors_of(exc))
    response = _redirect(f"/crm/leads/{lead_id}#interactions")
    flash(response, "Logged.")
    return response


@router.post("/crm/leads/{lead_id}/messages", response_class=HTMLResponse)
def send_message(
    request: Request,
    db: DB,
    principal: StaffPage,
    lead_id: Id,
    channel: Annotated[str, Form(max_length=12)],
    message_type: Annotated[str, Form(max_length=24)] = "general",
    body: Annotated[str, Form(max_length=1600)] = "",
) -> Response:
    try:
        data = MessageCreate(channel=channel, message_type=message_type, body=body)
        service.send_message(
            db,
            principal=principal,
            lead_id=lead_id,
            channel=data.channel,
            message_type=data.message_type,
            body=data.body,
        )
    except (ValidationError, RuleViolation, channels.DeliveryError) as exc:
        # DeliveryError: the lead's phone number is missing or unusable.
        db.rollback()
        return _lead_page(
            request,
            db,
            principal,
            lead_id,
            422,
            message_errors=_errors_of(exc),
            message_values={"channel": channel, "message_type": message_type, "body": body},
        )
    response = _redirect(f"/crm/leads/{lead_id}#messages")
    flash(response, f"{label(channel) if channel != 'sms' else 'SMS'} message queued.")
    return response


# --- tasks ---------------------------------------------------------------------------------------


@router.get("/crm/tasks", response_class=HTMLResponse)
def tasks_page(request: Request, db: DB, principal: StaffPage) -> Response:
    tenant, context = _common(db, principal)
    zone = tenant.zone
    now = utcnow()
    local_now = now.astimezone(zone)
    end_of_day = local_now.replace(hour=23, minute=59, second=59, microsecond=0)
    open_status = [TaskStatus.pending, TaskStatus.overdue]
    rows, total = service.list_tasks(
        db, principal=principal, status=[str(s) for s in open_status], due_before=None,
        lead_id=None, limit=300,
    )  # fmt: skip
    overdue = [r for r in rows if r[0].due_at < now]
    today = [r for r in rows if now <= r[0].due_at <= end_of_day]
    upcoming = [r for r in rows if r[0].due_at > end_of_day]
    context.update(
        groups=[
            ("overdue", "Overdue", "red", overdue),
            ("today", "Due today", "blue", today),
            ("upcoming", "Upcoming", "secondary", upcoming),
        ],
        total=total,
        shown=len(rows),
    )
    return render(request, "crm/tasks.html", context, tenant=tenant)


@router.post("/crm/tasks/{task_id}/done")
def task_done(
    db: DB,
    principal: StaffPage,
    task_id: Id,
    next: Annotated[str, Form(max_length=2000)] = "/crm/tasks",
) -> Response:
    task = service.update_task(
        db, principal=principal, task_id=task_id, data=TaskUpdate(status=TaskStatus.done)
    )
    response = _redirect(safe_next(next, "/crm/tasks"))
    flash(response, f"Done: {task.title}.")
    return response


# --- clients and appointments --------------------------------------------------------------------

ClientSort = Annotated[str, Query(pattern=r"^-?(" + "|".join(CLIENT_SORT_KEYS) + ")$")]


@router.get("/crm/clients", response_class=HTMLResponse)
def clients_page(
    request: Request,
    db: DB,
    principal: StaffPage,
    status: Annotated[ClientStatus | Literal[""] | None, Query()] = None,
    q: Text100 = None,
    sort: ClientSort = "name",
    page: PageNo = 1,
) -> Response:
    tenant, context = _common(db, principal)
    rows, total = service.list_clients(
        db,
        principal=principal,
        status=[str(status)] if status else [],
        agent_id=None,
        q=(q or "").strip() or None,
        sort=sort,
        offset=(page - 1) * CLIENTS_PER_PAGE,
        limit=CLIENTS_PER_PAGE,
    )
    params = {"status": status, "q": (q or "").strip(), "sort": sort}
    query = Query_(params)
    owners = {c.agent_id for c in rows}
    names = {u.id: u.full_name for u in (db.get(User, i) for i in owners) if u is not None}
    context.update(
        clients=rows,
        total=total,
        page=page,
        pages=_pages(total, CLIENTS_PER_PAGE),
        filters=params,
        query=query,
        query_for=query.page,
        sort=sort,
        statuses=list(ClientStatus),
        agent_names=names,
    )
    return render(request, "crm/clients.html", context, tenant=tenant)


@router.get("/crm/appointments", response_class=HTMLResponse)
def appointments_page(
    request: Request,
    db: DB,
    principal: StaffPage,
    days: Annotated[int, Query(ge=1, le=366)] = APPOINTMENT_DAYS,
    past: Annotated[int, Query(ge=0, le=90)] = 7,
) -> Response:
    """A calendar list grouped by day: the last `past` days (to record outcomes) and the next
    `days`."""
    tenant, context = _common(db, principal)
    now = utcnow()
    rows, total = service.list_appointments(
        db,
        principal=principal,
        start=now - timedelta(days=past),
        end=now + timedelta(days=days),
        status=[],
        offset=0,
        limit=500,
    )
    zone = tenant.zone
    by_day: dict[str, list[Any]] = {}
    for row in rows:
        by_day.setdefault(row.start_time.astimezone(zone).strftime("%A, %B %d"), []).append(row)
    context.update(
        days=list(by_day.items()),
        total=total,
        span=days,
        past=past,
        outcomes=[
            ("completed", "Completed", "check"),
            ("no_show", "No-show", "user-x"),
            ("cancelled", "Cancelled", "x"),
        ],
    )
    return render(request, "crm/appointments.html", context, tenant=tenant)


@router.post("/crm/appointments/{appointment_id}/outcome")
def appointment_outcome(
    db: DB,
    principal: StaffPage,
    appointment_id: Id,
    status: Annotated[AppointmentStatus, Form()],
) -> Response:
    row = service.update_appointment(
        db,
        principal=principal,
        appointment_id=appointment_id,
        data=AppointmentUpdate(status=status),
    )
    response = _redirect("/crm/appointments")
    flash(response, f"{row.title}: {label(str(status))}.")
    return response


# --- properties ----------------------------------------------------------------------------------

PropertySort = Annotated[str, Query(pattern=r"^-?(" + "|".join(PROPERTY_SORT_KEYS) + ")$")]


def _decimal(value: str | None, name: str) -> Decimal | None:
    if not value or not value.strip():
        return None
    try:
        return Decimal(value.replace(",", "").replace("$", "").strip())
    except InvalidOperation:
        raise RuleViolation(f"{name}: {value!r} is not a number") from None


@router.get("/crm/properties", response_class=HTMLResponse)
def properties_page(
    request: Request,
    db: DB,
    principal: StaffPage,
    status: Annotated[PropertyStatus | Literal[""] | None, Query()] = None,
    property_type: Annotated[PropertyType | Literal[""] | None, Query()] = None,
    min_price: Annotated[str | None, Query(max_length=20)] = None,
    max_price: Annotated[str | None, Query(max_length=20)] = None,
    city: Text100 = None,
    zip_code: Annotated[str | None, Query(pattern=r"^\d{0,5}$")] = None,
    min_bedrooms: Annotated[int | Literal[""] | None, Query()] = None,
    features: Annotated[str | None, Query(max_length=300)] = None,
    q: Text100 = None,
    sort: PropertySort = "-created_at",
    page: PageNo = 1,
) -> Response:
    tenant, context = _common(db, principal)
    problems: list[str] = []
    low = high = None
    feature_tags: list[str] = []
    try:
        low, high = _decimal(min_price, "min price"), _decimal(max_price, "max price")
        feature_tags = rules.property_search(low, high, [features or ""])
    except RuleViolation as exc:
        problems.append(exc.detail)
    except rules.RuleError as exc:
        problems.extend(exc.errors)
    bedrooms = min_bedrooms if isinstance(min_bedrooms, int) else None
    filters = service.PropertyFilter(
        status=[str(status)] if status else [],
        property_type=[str(property_type)] if property_type else [],
        min_price=low,
        max_price=high,
        city=(city or "").strip() or None,
        zip_code=zip_code or None,
        min_bedrooms=bedrooms,
        features=feature_tags,
        q=(q or "").strip() or None,
    )
    rows, total = service.list_properties(
        db,
        principal=principal,
        filters=filters,
        sort=sort,
        offset=(page - 1) * PROPERTIES_PER_PAGE,
        limit=PROPERTIES_PER_PAGE,
    )
    params = {
        "status": status,
        "property_type": property_type,
        "min_price": min_price,
        "max_price": max_price,
        "city": city,
        "zip_code": zip_code,
        "min_bedrooms": bedrooms,
        "features": features,
        "q": q,
        "sort": sort,
    }
    query = Query_(params)
    names = {
        u.id: u.full_name
        for u in (db.get(User, i) for i in {p.listing_agent_id for p in rows})
        if u is not None
    }
    context.update(
        properties=rows,
        total=total,
        page=page,
        pages=_pages(total, PROPERTIES_PER_PAGE),
        filters={k: ("" if v is None else v) for k, v in params.items()},
        query=query,
        query_for=query.page,
        sort=sort,
        statuses=list(PropertyStatus),
        types=list(PropertyType),
        agent_names=names,
        problems=problems,
    )
    return render(request, "crm/properties.html", context, tenant=tenant)


def _property_form(
    request: Request,
    db: Session,
    principal: Principal,
    values: dict[str, Any],
    field_errors: dict[str, list[str]],
    general: list[str],
    status_code: int = 200,
) -> Response:
    tenant, context = _common(db, principal)
    first_step = 1
    if field_errors or general:
        steps = [_step_of(k) for k in field_errors] or [3]
        first_step = min(steps)
    context.update(
        values=values,
        field_errors=field_errors,
        general_errors=general,
        types=list(PropertyType),
        utilities=list(rules.Utility),
        step=first_step,
        agents=_agents(db, principal) if principal.role == Role.admin else [],
    )
    return render(
        request, "crm/property_form.html", context, status_code=status_code, tenant=tenant
    )


def _step_of(field: str) -> int:
    if field.split(".", 1)[0] in ("attributes", *ATTRIBUTE_FIELDS):
        return 2
    return STEP_OF.get(field, 3)


@router.get("/crm/properties/new", response_class=HTMLResponse)
def new_property_page(request: Request, db: DB, principal: StaffPage) -> Response:
    values = {"property_type": "residential", "state": "", "road_access": True, "utilities": []}
    return _property_form(request, db, principal, values, {}, [])


def _property_payload(form: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form's flat fields as a PropertyCreate body, and the values to show again."""
    kind = str(form.get("property_type") or "")
    values: dict[str, Any] = {k: str(form.get(k) or "") for k in PROPERTY_FIELDS}
    values.update(
        property_type=kind,
        features=str(form.get("features") or ""),
        listing_agent_id=str(form.get("listing_agent_id") or ""),
        utilities=list(form.get("utilities") or []),
        road_access=bool(form.get("road_access")),
    )
    attributes: dict[str, Any] = {}
    for kind_name, names in ATTRIBUTE_FIELDS.items():
        for name in names:
            raw = str(form.get(f"{kind_name}.{name}") or "").strip()
            values[f"{kind_name}.{name}"] = raw
            if kind_name == kind and raw:
                attributes[name] = raw
    if kind == "land":
        attributes["utilities"] = values["utilities"]
        attributes["road_access"] = values["road_access"]
    payload: dict[str, Any] = {
        k: values[k].strip() for k in PROPERTY_FIELDS if values[k].strip() or k == "description"
    }
    payload["state"] = payload.get("state", "").upper() or None
    if "price" in payload:
        payload["price"] = payload["price"].replace(",", "").replace("$", "")
    payload.update(
        property_type=kind or None,
        attributes=attributes,
        features=[t.strip() for t in values["features"].split(",") if t.strip()],
    )
    if values["listing_agent_id"]:
        payload["listing_agent_id"] = values["listing_agent_id"]
    return {k: v for k, v in payload.items() if v is not None}, values


def _save_property(
    request: Request, db: Session, principal: Principal, form: dict[str, Any]
) -> Response:
    payload, values = _property_payload(form)
    try:
        data = PropertyCreate.model_validate(payload)
        prop = service.create_property(db, principal=principal, data=data)
    except (ValidationError, DoorstepError) as exc:
        if isinstance(exc, DoorstepError) and exc.status_code in (403, 404):
            raise
        db.rollback()
        fields, general = _field_errors(_errors_of(exc))
        # The form names a type's attributes "<type>.<name>", the rules "attributes.<name>".
        kind = values["property_type"]
        fields = {
            (f"{kind}.{k.split('.', 1)[1]}" if k.startswith("attributes.") else k): v
            for k, v in fields.items()
        }
        return _property_form(request, db, principal, values, fields, general, 422)
    response = _redirect(f"/crm/properties/{prop.id}")
    flash(response, f"{prop.title} is listed.")
    return response


@router.post("/crm/properties/new", response_class=HTMLResponse)
async def create_property(request: Request, db: DB, principal: StaffPage) -> Response:
    """The multi-step form's one submission: the server checks everything and, on a refusal,
    shows the form again with each message beside its field and the values kept."""
    raw = await request.form()
    form: dict[str, Any] = {k: raw.get(k) for k in raw if k != "utilities"}
    form["utilities"] = [str(u) for u in raw.getlist("utilities")]
    return await run_in_threadpool(_save_property, request, db, principal, form)


def _property_page(
    request: Request,
    db: Session,
    principal: Principal,
    property_id: int,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    tenant, context = _common(db, principal)
    prop = service.get_property(db, principal=principal, property_id=property_id)
    agent = db.get(User, prop.listing_agent_id)
    can_edit = agent is not None and service.can_edit_property(principal, agent)
    status = PropertyStatus(prop.status)
    photos = gallery.list_images(db, principal=principal, property_id=prop.id)
    context.update(
        prop=prop,
        property=prop,
        listing_agent=agent,
        can_edit=can_edit,
        gallery=photos,
        images=photos.json(),
        targets=[
            (t, rules.PROPERTY_STATUS_LABELS[t], rules.reason_required(status, t))
            for t in sorted(rules.PROPERTY_TRANSITIONS[status], key=list(PropertyStatus).index)
        ],
    )
    context.update(extra)
    return render(request, "crm/property.html", context, status_code=status_code, tenant=tenant)


@router.get("/crm/properties/{property_id}", response_class=HTMLResponse)
def property_page(request: Request, db: DB, principal: StaffPage, property_id: Id) -> Response:
    return _property_page(request, db, principal, property_id)


@router.post("/crm/properties/{property_id}/status", response_class=HTMLResponse)
def change_property_status(
    request: Request,
    db: DB,
    principal: StaffPage,
    property_id: Id,
    status: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        target = PropertyStatus(status)
    except ValueError:
        raise RuleViolation(f"status: unknown status {status!r}") from None
    try:
        prop = service.change_property_status(
            db, principal=principal, property_id=property_id, status=target, reason=reason
        )
    except (service.TransitionRefused, RuleViolation) as exc:
        db.rollback()
        return _property_page(
            request,
            db,
            principal,
            property_id,
            exc.status_code,
            status_errors=_errors_of(exc),
            tried=status,
        )
    response = _redirect(f"/crm/properties/{prop.id}")
    flash(response, f"{prop.title}: {rules.PROPERTY_STATUS_LABELS[target]}.")
    return response


# --- admin views ---------------------------------------------------------------------------------


def _assignment_page(
    request: Request,
    db: Session,
    principal: Principal,
    page: int,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    tenant, context = _common(db, principal)
    log, total = service.assignment_log(
        db,
        principal=principal,
        lead_id=None,
        offset=(page - 1) * LOG_PER_PAGE,
        limit=LOG_PER_PAGE,
    )
    lead_names = service.lead_names(db, principal=principal, ids={row.lead_id for row, _ in log})
    config, _ = service.assignment_config(db, principal.tenant_id)
    query = Query_({})
    context.update(
        log=log,
        total=total,
        page=page,
        pages=_pages(total, LOG_PER_PAGE),
        query_for=query.page,
        lead_names=lead_names,
        performance=service.agent_performance(db, principal=principal),
        config=config,
        config_json=extra.pop("config_json", None)
        or json.dumps(config.model_dump(mode="json"), indent=2),
        agent_names={a.id: a.full_name for a in _agents(db, principal)},
    )
    context.update(extra)
    return render(
        request, "crm/admin_assignment.html", context, status_code=status_code, tenant=tenant
    )


@router.get("/crm/admin/assignment", response_class=HTMLResponse)
def assignment_page(request: Request, db: DB, principal: AdminPage, page: PageNo = 1) -> Response:
    return _assignment_page(request, db, principal, page)


@router.post("/crm/admin/agents/{agent_id}/pause")
def pause_agent(
    db: DB,
    principal: AdminPage,
    agent_id: Id,
    paused: Annotated[bool, Form()],
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    service.set_paused(db, principal=principal, agent_id=agent_id, paused=paused, reason=reason)
    response = _redirect("/crm/admin/assignment#performance")
    flash(response, "Agent paused: no new leads until resumed." if paused else "Agent resumed.")
    return response


@router.post("/crm/admin/assignment/settings", response_class=HTMLResponse)
def save_assignment_settings(
    request: Request,
    db: DB,
    principal: AdminPage,
    config: Annotated[str, Form(max_length=100_000)],
) -> Response:
    try:
        parsed = rules.AssignmentConfig.model_validate_json(config)
        service.set_assignment_config(db, principal=principal, config=parsed)
    except (ValidationError, RuleViolation) as exc:
        db.rollback()
        return _assignment_page(
            request, db, principal, 1, 422, settings_errors=_errors_of(exc), config_json=config
        )
    response = _redirect("/crm/admin/assignment#settings")
    flash(response, "Assignment settings saved.")
    return response


def include_media(target: APIRouter) -> None:
    """The gallery's media files are served at the root, next to the pages."""
    from doorstep.crm.gallery_api import media_router

    target.include_router(media_router)


include_media(router)
