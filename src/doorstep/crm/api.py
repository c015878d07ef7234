"""JSON routes of seed 003: properties, leads and their transitions, clients, appointments,
tasks and the assignment log. Parse, call the service, shape the answer.

Lists use Django REST framework's page shape (`count`, `next`, `previous`, `results`; query
parameters `page`, `page_size`, `search`, `ordering`), so seed 003's PropertyService works
against them unchanged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from doorstep.crm import rules, service
from doorstep.crm.models import (
    AppointmentStatus,
    ClientStatus,
    Heat,
    Lead,
    LeadSource,
    PropertyStatus,
    PropertyType,
    TaskStatus,
)
from doorstep.crm.schemas import (
    AgentPause,
    AppointmentCreate,
    AppointmentRead,
    AppointmentUpdate,
    AssignmentRead,
    ClientCreate,
    ClientRead,
    ClientUpdate,
    DrfPage,
    InteractionCreate,
    InteractionRead,
    LeadCreate,
    LeadRead,
    LeadTransition,
    LeadUpdate,
    MessageCreate,
    MessageRead,
    PropertyCreate,
    PropertyRead,
    PropertyStatusChange,
    PropertyUpdate,
    ReassignRequest,
    TaskCreate,
    TaskRead,
    TaskUpdate,
)
from doorstep.platform.auth import Principal, Role, User
from doorstep.platform.errors import RuleViolation
from doorstep.platform.http import (
    DB,
    CurrentPrincipal,
    DoorstepRoute,
    read_csv_upload,
    require_role,
)

router = APIRouter(prefix="/api", route_class=DoorstepRoute, tags=["crm"])
Admin = Annotated[Principal, require_role(Role.admin)]
T = TypeVar("T")
R = TypeVar("R")

PageNo = Annotated[int, Query(ge=1, le=100_000, description="1-based page number")]
PageSize = Annotated[int, Query(ge=1, le=200)]
Search = Annotated[str | None, Query(min_length=1, max_length=100)]
Ordering = Annotated[str, Query(pattern=r"^-?[a-z_]+$", max_length=40)]
MAX_CSV_BYTES = 5 * 1024 * 1024


def drf_page(
    request: Request,
    rows: Sequence[T],
    total: int,
    page: int,
    page_size: int,
    read: Callable[[T], R],
) -> DrfPage[R]:
    def link(number: int) -> str:
        return str(request.url.include_query_params(page=number))

    last = max((total + page_size - 1) // page_size, 1)
    return DrfPage[R](
        count=total,
        next=link(page + 1) if page < last else None,
        previous=link(page - 1) if page > 1 and total else None,
        results=[read(r) for r in rows],
    )


def _names(db: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.execute(select(User.id, User.full_name).where(User.id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


# --- properties --------------------------------------------------------------------------------


def property_read(prop: Any, names: dict[int, str]) -> PropertyRead:
    read = PropertyRead.model_validate(prop)
    read.listing_agent_name = names.get(prop.listing_agent_id, "")
    if prop.cover_image_id:
        read.cover_thumbnail_url = f"/media/properties/{prop.cover_image_id}/thumb"
    return read


@router.get("/properties/", response_model=DrfPage[PropertyRead])
def list_properties(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    status: Annotated[list[PropertyStatus] | None, Query()] = None,
    property_type: Annotated[list[PropertyType] | None, Query()] = None,
    min_price: Annotated[Decimal | None, Query(ge=0)] = None,
    max_price: Annotated[Decimal | None, Query(ge=0)] = None,
    city: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    zip_code: Annotated[str | None, Query(pattern=r"^\d{1,5}$")] = None,
    min_bedrooms: Annotated[int | None, Query(ge=0, le=50)] = None,
    min_bathrooms: Annotated[float | None, Query(ge=0, le=50)] = None,
    features: Annotated[list[str] | None, Query(max_length=10)] = None,
    listing_agent_id: Annotated[int | None, Query(ge=1)] = None,
    search: Search = None,
    ordering: Ordering = "-created_at",
    page: PageNo = 1,
    page_size: PageSize = 25,
) -> DrfPage[PropertyRead]:
    """Listings, filtered by price range, location, features, status and type."""
    try:
        feature_tags = rules.property_search(min_price, max_price, features or [])
    except rules.RuleError as exc:
        raise service.refused(exc) from None
    filters = service.PropertyFilter(
        status=[str(s) for s in status or []],
        property_type=[str(t) for t in property_type or []],
        min_price=min_price,
        max_price=max_price,
        city=city,
        zip_code=zip_code,
        min_bedrooms=min_bedrooms,
        min_bathrooms=min_bathrooms,
        features=feature_tags,
        listing_agent_id=listing_agent_id,
        q=search,
    )
    rows, total = service.list_properties(
        db,
        principal=principal,
        filters=filters,
        sort=ordering,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    names = _names(db, {r.listing_agent_id for r in rows})
    return drf_page(request, rows, total, page, page_size, lambda r: property_read(r, names))


@router.post("/properties/", status_code=201, response_model=PropertyRead)
def create_property(db: DB, principal: CurrentPrincipal, body: PropertyCreate) -> PropertyRead:
    """List a property; its type's attributes are validated (rules.attributes_for)."""
    prop = service.create_property(db, principal=principal, data=body)
    return property_read(prop, _names(db, {prop.listing_agent_id}))


@router.get("/properties/{property_id:int}", response_model=PropertyRead)
def get_property(db: DB, principal: CurrentPrincipal, property_id: int) -> PropertyRead:
    prop = service.get_property(db, principal=principal, property_id=property_id)
    return property_read(prop, _names(db, {prop.listing_agent_id}))


@router.patch("/properties/{property_id:int}", response_model=PropertyRead)
def update_property(
    db: DB, principal: CurrentPrincipal, property_id: int, body: PropertyUpdate
) -> PropertyRead:
    prop = service.update_property(db, principal=principal, property_id=property_id, data=body)
    return property_read(prop, _names(db, {prop.listing_agent_id}))


@router.post("/properties/{property_id:int}/status", response_model=PropertyRead)
def change_property_status(
    db: DB, principal: CurrentPrincipal, property_id: int, body: PropertyStatusChange
) -> PropertyRead:
    """Active → Deposit Taken → Sold, and Withdrawn; a reason where it matters. Audited."""
    prop = service.change_property_status(
        db, principal=principal, property_id=property_id, status=body.status, reason=body.reason
    )
    return property_read(prop, _names(db, {prop.listing_agent_id}))


# --- leads -------------------------------------------------------------------------------------


def lead_read(lead: Lead, names: dict[int, str]) -> LeadRead:
    read = LeadRead.model_validate(lead)
    read.agent_name = names.get(lead.agent_id or 0, "")
    return read


def _lead_filter(
    stage: list[str] | None,
    heat: list[Heat] | None,
    source: list[LeadSource] | None,
    agent_id: int | None,
    unassigned: bool,
    search: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
) -> service.LeadFilter:
    return service.LeadFilter(
        stage=list(stage or []),
        heat=[str(h) for h in heat or []],
        source=[str(s) for s in source or []],
        agent_id=agent_id,
        unassigned=unassigned,
        q=search,
        created_from=created_from,
        created_to=created_to,
    )


StageQ = Annotated[list[str] | None, Query(max_length=20)]
HeatQ = Annotated[list[Heat] | None, Query()]
SourceQ = Annotated[list[LeadSource] | None, Query()]
AgentQ = Annotated[int | None, Query(ge=1)]


@router.get("/leads/", response_model=DrfPage[LeadRead])
def list_leads(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    stage: StageQ = None,
    heat: HeatQ = None,
    source: SourceQ = None,
    agent_id: AgentQ = None,
    unassigned: bool = False,
    search: Search = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    ordering: Ordering = "-created_at",
    page: PageNo = 1,
    page_size: PageSize = 50,
) -> DrfPage[LeadRead]:
    """The caller's leads (admins: all), filtered, sorted and paginated."""
    filters = _lead_filter(
        stage, heat, source, agent_id, unassigned, search, created_from, created_to
    )
    rows, total = service.list_leads(
        db,
        principal=principal,
        filters=filters,
        sort=ordering,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    names = _names(db, {r.agent_id for r in rows})
    return drf_page(request, rows, total, page, page_size, lambda r: lead_read(r, names))


@router.post("/leads/", status_code=201, response_model=LeadRead)
def create_lead(db: DB, principal: CurrentPrincipal, body: LeadCreate) -> LeadRead:
    """A new lead: an agent's own, or (admins, no agent named) assigned automatically."""
    lead = service.create_lead(db, principal=principal, data=body)
    return lead_read(lead, _names(db, {lead.agent_id}))


@router.get("/leads/export")
def export_leads(
    db: DB,
    principal: CurrentPrincipal,
    stage: StageQ = None,
    heat: HeatQ = None,
    source: SourceQ = None,
    agent_id: AgentQ = None,
    search: Search = None,
    ordering: Ordering = "-created_at",
) -> StreamingResponse:
    """The leads the caller may read, as CSV."""
    filters = _lead_filter(stage, heat, source, agent_id, False, search, None, None)
    rows = list(service.export_leads_csv(db, principal=principal, filters=filters, sort=ordering))
    return StreamingResponse(
        iter(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="leads.csv"'},
    )


class ImportRowRead(BaseModel):
    line: int
    values: dict[str, str]
    errors: list[str]


class ImportReport(BaseModel):
    dry_run: bool
    rows: int
    valid: int
    invalid: int
    imported: int
    problems: list[ImportRowRead]
    lead_ids: list[int]


@router.post("/leads/import", response_model=ImportReport)
async def import_leads(
    db: DB,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="CSV: name, email, phone, source, ...")],
    dry_run: Annotated[bool, Form()] = True,
    only_valid: Annotated[bool, Form()] = False,
) -> ImportReport:
    """Check (dry_run, the default) or import a lead CSV. While rows have errors nothing is
    imported unless `only_valid` is set."""
    text = await read_csv_upload(file, max_bytes=MAX_CSV_BYTES)
    return await run_in_threadpool(import_report, db, principal, text, dry_run, only_valid)


def import_report(
    db: Session, principal: Principal, text: str, dry_run: bool, only_valid: bool
) -> ImportReport:
    preview = service.parse_leads_csv(text)
    imported: list[int] = []
    if not dry_run:
        imported = service.import_leads(
            db, principal=principal, text=text, only_valid=only_valid
        ).lead_ids
    return ImportReport(
        dry_run=dry_run,
        rows=len(preview.rows),
        valid=len(preview.valid),
        invalid=len(preview.invalid),
        imported=len(imported),
        problems=[
            ImportRowRead(line=r.line, values=r.values, errors=r.errors) for r in preview.invalid
        ],
        lead_ids=imported,
    )


class BoardColumnRead(BaseModel):
    stage: str
    label: str
    kind: str
    total: int
    allowed_targets: list[str]
    leads: list[LeadRead]


@router.get("/leads/board", response_model=list[BoardColumnRead])
def lead_board(db: DB, principal: CurrentPrincipal, agent_id: AgentQ = None) -> list[Any]:
    """The Kanban: a pipeline owner's leads by stage, in card order."""
    columns = service.board(db, principal=principal, agent_id=agent_id)
    process = service.sales_rules(db, principal.tenant_id)
    names = _names(db, {agent_id or principal.user_id})
    return [
        BoardColumnRead(
            stage=c.stage.name,
            label=c.stage.label,
            kind=c.stage.kind,
            total=c.total,
            allowed_targets=process.allowed_targets(c.stage.name),
            leads=[lead_read(lead, names) for lead in c.leads],
        )
        for c in columns
    ]


@router.get("/leads/{lead_id:int}", response_model=LeadRead)
def get_lead(db: DB, principal: CurrentPrincipal, lead_id: int) -> LeadRead:
    lead = service.get_lead(db, principal=principal, lead_id=lead_id)
    return lead_read(lead, _names(db, {lead.agent_id}))


@router.patch("/leads/{lead_id:int}", response_model=LeadRead)
def update_lead(db: DB, principal: CurrentPrincipal, lead_id: int, body: LeadUpdate) -> LeadRead:
    lead = service.update_lead(db, principal=principal, lead_id=lead_id, data=body)
    return lead_read(lead, _names(db, {lead.agent_id}))


@router.post(
    "/leads/{lead_id:int}/transition",
    response_model=LeadRead,
    responses={409: {"description": "Refused; `errors` lists every reason"}},
)
def transition_lead(
    db: DB, principal: CurrentPrincipal, lead_id: int, body: LeadTransition
) -> LeadRead:
    """Move a lead to another stage (snake case: lead, needs_analysis, offer_sent, negotiation,
    contract_signed, closed_won, closed_lost). Entering a stage creates its follow-up tasks."""
    lead = service.transition_lead(
        db, principal=principal, lead_id=lead_id, to_stage=body.to_stage, position=body.position
    )
    return lead_read(lead, _names(db, {lead.agent_id}))


class PositionBody(BaseModel):
    position: int


@router.put("/leads/{lead_id:int}/position", response_model=LeadRead)
def move_card(db: DB, principal: CurrentPrincipal, lead_id: int, body: PositionBody) -> LeadRead:
    if not 0 <= body.position <= 100_000:
        raise RuleViolation("position: must be between 0 and 100000")
    lead = service.move_card(db, principal=principal, lead_id=lead_id, position=body.position)
    return lead_read(lead, _names(db, {lead.agent_id}))


@router.get("/leads/{lead_id:int}/interactions", response_model=list[InteractionRead])
def list_interactions(db: DB, principal: CurrentPrincipal, lead_id: int) -> list[Any]:
    return service.interactions_of(db, principal=principal, lead_id=lead_id)


@router.post("/leads/{lead_id:int}/interactions", status_code=201, response_model=InteractionRead)
def add_interaction(
    db: DB, principal: CurrentPrincipal, lead_id: int, body: InteractionCreate
) -> Any:
    """Log a call, e-mail, meeting or note; the lead's heat is recomputed."""
    return service.record_interaction(
        db, principal=principal, lead_id=lead_id, kind=body.kind, summary=body.summary
    )


@router.get("/leads/{lead_id:int}/messages", response_model=list[MessageRead])
def list_messages(db: DB, principal: CurrentPrincipal, lead_id: int) -> list[Any]:
    return service.messages_of(db, principal=principal, lead_id=lead_id)


@router.post("/leads/{lead_id:int}/messages", status_code=202, response_model=MessageRead)
def send_message(db: DB, principal: CurrentPrincipal, lead_id: int, body: MessageCreate) -> Any:
    """Send a WhatsApp or SMS message to the lead; delivery runs as a job (status `queued`,
    then `sent` or `failed`)."""
    return service.send_message(
        db,
        principal=principal,
        lead_id=lead_id,
        channel=body.channel,
        message_type=body.message_type,
        body=body.body,
    )


@router.post("/leads/{lead_id:int}/assign", response_model=LeadRead)
def reassign_lead(db: DB, principal: Admin, lead_id: int, body: ReassignRequest) -> LeadRead:
    """Admins: hand the lead to `agent_id`, or (null) let the assignment strategy choose."""
    lead = service.reassign_lead(db, principal=principal, lead_id=lead_id, agent_id=body.agent_id)
    return lead_read(lead, _names(db, {lead.agent_id}))


@router.get("/assignments/", response_model=DrfPage[AssignmentRead])
def assignment_log(
    request: Request,
    db: DB,
    principal: Admin,
    lead_id: Annotated[int | None, Query(ge=1)] = None,
    page: PageNo = 1,
    page_size: PageSize = 50,
) -> DrfPage[AssignmentRead]:
    """Every assignment and why that agent was chosen (admins)."""
    rows, total = service.assignment_log(
        db, principal=principal, lead_id=lead_id, offset=(page - 1) * page_size, limit=page_size
    )

    def read(row: tuple[Any, str]) -> AssignmentRead:
        out = AssignmentRead.model_validate(row[0])
        out.agent_name = row[1]
        return out

    return drf_page(request, rows, total, page, page_size, read)


# --- tasks -------------------------------------------------------------------------------------


def task_read(row: tuple[Any, str | None]) -> TaskRead:
    out = TaskRead.model_validate(row[0])
    out.lead_name = row[1]
    return out


@router.get("/tasks/", response_model=DrfPage[TaskRead])
def list_tasks(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    status: Annotated[list[TaskStatus] | None, Query()] = None,
    due_before: datetime | None = None,
    lead_id: Annotated[int | None, Query(ge=1)] = None,
    page: PageNo = 1,
    page_size: PageSize = 50,
) -> DrfPage[TaskRead]:
    rows, total = service.list_tasks(
        db,
        principal=principal,
        status=[str(s) for s in status or []],
        due_before=due_before,
        lead_id=lead_id,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    return drf_page(request, rows, total, page, page_size, task_read)


@router.post("/tasks/", status_code=201, response_model=TaskRead)
def create_task(db: DB, principal: CurrentPrincipal, body: TaskCreate) -> TaskRead:
    task = service.create_task(db, principal=principal, data=body)
    return task_read((task, None))


@router.patch("/tasks/{task_id:int}", response_model=TaskRead)
def update_task(db: DB, principal: CurrentPrincipal, task_id: int, body: TaskUpdate) -> TaskRead:
    task = service.update_task(db, principal=principal, task_id=task_id, data=body)
    return task_read((task, None))


# --- clients and appointments -------------------------------------------------------------------


def client_read(client: Any, names: dict[int, str]) -> ClientRead:
    out = ClientRead.model_validate(client)
    out.agent_name = names.get(client.agent_id, "")
    return out


@router.get("/clients/", response_model=DrfPage[ClientRead])
def list_clients(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    status: Annotated[list[ClientStatus] | None, Query()] = None,
    agent_id: AgentQ = None,
    search: Search = None,
    ordering: Ordering = "name",
    page: PageNo = 1,
    page_size: PageSize = 25,
) -> DrfPage[ClientRead]:
    rows, total = service.list_clients(
        db,
        principal=principal,
        status=[str(s) for s in status or []],
        agent_id=agent_id,
        q=search,
        sort=ordering,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    names = _names(db, {r.agent_id for r in rows})
    return drf_page(request, rows, total, page, page_size, lambda r: client_read(r, names))


@router.post("/clients/", status_code=201, response_model=ClientRead)
def create_client(db: DB, principal: CurrentPrincipal, body: ClientCreate) -> ClientRead:
    client = service.create_client(db, principal=principal, data=body)
    return client_read(client, _names(db, {client.agent_id}))


@router.get("/clients/{client_id:int}", response_model=ClientRead)
def get_client(db: DB, principal: CurrentPrincipal, client_id: int) -> ClientRead:
    client = service.get_client(db, principal=principal, client_id=client_id)
    return client_read(client, _names(db, {client.agent_id}))


@router.patch("/clients/{client_id:int}", response_model=ClientRead)
def update_client(
    db: DB, principal: CurrentPrincipal, client_id: int, body: ClientUpdate
) -> ClientRead:
    client = service.update_client(db, principal=principal, client_id=client_id, data=body)
    return client_read(client, _names(db, {client.agent_id}))


@router.get("/appointments/", response_model=DrfPage[AppointmentRead])
def list_appointments(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    start: datetime | None = None,
    end: datetime | None = None,
    status: Annotated[list[AppointmentStatus] | None, Query()] = None,
    page: PageNo = 1,
    page_size: PageSize = 50,
) -> DrfPage[AppointmentRead]:
    """The caller's calendar between `start` and `end`, in time order."""
    if start is not None and end is not None and end <= start:
        raise RuleViolation("end must be after start")
    rows, total = service.list_appointments(
        db,
        principal=principal,
        start=start,
        end=end,
        status=[str(s) for s in status or []],
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    return drf_page(request, rows, total, page, page_size, AppointmentRead.model_validate)


@router.post("/appointments/", status_code=201, response_model=AppointmentRead)
def create_appointment(db: DB, principal: CurrentPrincipal, body: AppointmentCreate) -> Any:
    return service.create_appointment(db, principal=principal, data=body)


@router.get("/appointments/{appointment_id:int}", response_model=AppointmentRead)
def get_appointment(db: DB, principal: CurrentPrincipal, appointment_id: int) -> Any:
    return service.get_appointment(db, principal=principal, appointment_id=appointment_id)


@router.patch("/appointments/{appointment_id:int}", response_model=AppointmentRead)
def update_appointment(
    db: DB, principal: CurrentPrincipal, appointment_id: int, body: AppointmentUpdate
) -> Any:
    """Reschedule, or record the outcome: completed, no_show or cancelled."""
    return service.update_appointment(
        db, principal=principal, appointment_id=appointment_id, data=body
    )


# --- agents and settings (admins) ---------------------------------------------------------------


@router.put("/agents/{agent_id:int}/pause")
def pause_agent(db: DB, principal: CurrentPrincipal, agent_id: int, body: AgentPause) -> Any:
    """Pause an agent (vacation): no new leads go to them until resumed."""
    profile = service.set_paused(
        db, principal=principal, agent_id=agent_id, paused=body.paused, reason=body.reason
    )
    return {"agent_id": profile.user_id, "paused": profile.paused, "reason": profile.paused_reason}


@router.get("/agents/performance")
def agent_performance(db: DB, principal: Admin) -> list[dict[str, Any]]:
    """Per agent: leads, conversion rate, median first-response time, workload score."""
    return [vars(p) for p in service.agent_performance(db, principal=principal)]


@router.get("/crm/settings/sales-process", response_model=rules.SalesProcessDefinition)
def get_sales_process(db: DB, principal: CurrentPrincipal) -> Any:
    return service.sales_rules(db, principal.tenant_id).definition


@router.put("/crm/settings/sales-process", response_model=rules.SalesProcessDefinition)
def put_sales_process(db: DB, principal: Admin, body: rules.SalesProcessDefinition) -> Any:
    """Replace the stage machine: stages, allowed moves, prerequisites and task templates."""
    return service.set_sales_process(db, principal=principal, definition=body).definition


@router.get("/crm/settings/assignment", response_model=rules.AssignmentConfig)
def get_assignment_settings(db: DB, principal: Admin) -> Any:
    return service.assignment_config(db, principal.tenant_id)[0]


@router.put("/crm/settings/assignment", response_model=rules.AssignmentConfig)
def put_assignment_settings(db: DB, principal: Admin, body: rules.AssignmentConfig) -> Any:
    """The strategy chain (workload, round_robin, rules) and the routing rules."""
    return service.set_assignment_config(db, principal=principal, config=body)


from doorstep.crm.gallery_api import router as gallery_router  # noqa: E402

router.include_router(gallery_router)
