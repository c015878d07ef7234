"""JSON routes of seed 000 under /api/v1/transactions: parse, authorise, call the service."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket
from sqlalchemy.orm import Session

from doorstep.platform import realtime
from doorstep.platform.auth import Principal, Role, User
from doorstep.platform.http import DB, CurrentPrincipal, DoorstepRoute, require_role
from doorstep.platform.schemas import Page
from doorstep.transactions import rules, service, status
from doorstep.transactions.models import EscrowStatus, LoanType, Transaction
from doorstep.transactions.schemas import (
    CelebrateRequest,
    CelebrationRead,
    CelebrationTemplateIn,
    EngagementUpdate,
    EventRead,
    HealthRead,
    HealthWeights,
    MilestoneRead,
    MilestoneUpdate,
    PlanIn,
    PlanStepIn,
    PredictionRead,
    TransactionCreate,
    TransactionRead,
    TransactionSummary,
    TransactionUpdate,
)

router = APIRouter(prefix="/api/v1/transactions", route_class=DoorstepRoute, tags=["transactions"])
TxId = "/{transaction_id:int}"
Admin = Annotated[Principal, require_role(Role.admin)]
Ops = Annotated[Principal, require_role(Role.admin, Role.broker)]


def transaction_read(db: Session, tx: Transaction) -> TransactionRead:
    read = TransactionRead.model_validate(tx)
    agent = db.get(User, tx.agent_id)
    read.agent_name = agent.full_name if agent else ""
    read.buyer_ids = service.buyer_ids(db, tx)
    read.days_to_closing = (tx.target_closing_date - service.today()).days
    read.milestones = [MilestoneRead.model_validate(m) for m in service.milestones_of(db, tx)]
    return read


@router.post("/", status_code=201, response_model=TransactionRead)
def create_transaction(
    db: DB, principal: CurrentPrincipal, body: TransactionCreate
) -> TransactionRead:
    """Open a transaction: its milestones come from the brokerage's plan for the loan type."""
    tx = service.create_transaction(db, principal=principal, data=body)
    return transaction_read(db, tx)


@router.get("/", response_model=Page[TransactionSummary])
def list_transactions(
    db: DB,
    principal: CurrentPrincipal,
    escrow_status: Annotated[list[EscrowStatus] | None, Query()] = None,
    loan_type: Annotated[list[LoanType] | None, Query()] = None,
    agent_id: Annotated[int | None, Query(ge=1)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    closing_from: date | None = None,
    closing_to: date | None = None,
    max_health: Annotated[int | None, Query(ge=0, le=100)] = None,
    sort: Annotated[str, Query(pattern=r"^-?[a-z_]+$", max_length=40)] = "target_closing_date",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 25,
) -> Page[TransactionSummary]:
    """The transactions the caller may see, filtered, sorted (`-` for descending), paginated."""
    filters = service.TransactionFilter(
        escrow_status=[str(s) for s in escrow_status or []],
        loan_type=[str(t) for t in loan_type or []],
        agent_id=agent_id,
        q=q,
        closing_from=closing_from,
        closing_to=closing_to,
        max_health=max_health,
    )
    rows, total = service.list_transactions(
        db, principal=principal, filters=filters, sort=sort, page=page, per_page=per_page
    )
    return Page(
        items=[TransactionSummary.model_validate(r) for r in rows],
        total=total,
        page=page,
        per_page=per_page,
    )


@router.get("/system/status")
def system_status(request: Request, db: DB, principal: Ops) -> dict[str, Any]:
    """Real figures: database, bus, jobs, connected clients, live latency, model accuracy."""
    return status.system_status(db, app=request.app, tenant_id=principal.tenant_id)


@router.get("/settings/health-weights", response_model=HealthWeights)
def get_health_weights(db: DB, principal: CurrentPrincipal) -> dict[str, float]:
    return service.health_weights(db, tenant_id=principal.tenant_id)


@router.put("/settings/health-weights", response_model=HealthWeights)
def put_health_weights(db: DB, principal: Admin, body: HealthWeights) -> dict[str, float]:
    """Weights of the five health components: non-negative, summing to 1."""
    return service.set_health_weights(db, principal=principal, weights=body.model_dump())


@router.get("/settings/plans/{loan_type}", response_model=list[PlanStepIn])
def get_plan(db: DB, principal: CurrentPrincipal, loan_type: LoanType) -> list[dict[str, Any]]:
    steps = service.plan_for(db, tenant_id=principal.tenant_id, loan_type=str(loan_type))
    return [_step_json(s) for s in steps]


@router.put("/settings/plans/{loan_type}", response_model=list[PlanStepIn])
def put_plan(db: DB, principal: Admin, loan_type: LoanType, body: PlanIn) -> list[dict[str, Any]]:
    """The milestone plan new transactions of this loan type get."""
    steps = service.set_plan(db, principal=principal, loan_type=str(loan_type), plan=body)
    return [_step_json(s) for s in steps]


def _step_json(s: rules.PlanStep) -> dict[str, Any]:
    return {
        "milestone_type": s.milestone_type,
        "name": s.name,
        "progress_weight": s.weight,
        "offset_days": s.offset_days,
        "requires": list(s.requires),
        "optional": s.optional,
        "celebration_message": s.celebration_message,
    }


@router.put("/settings/celebrations/{trigger}/{variant}", response_model=CelebrationTemplateIn)
def put_celebration_template(
    db: DB, principal: Admin, trigger: str, variant: str, body: CelebrationTemplateIn
) -> CelebrationTemplateIn:
    """The brokerage's own wording for a celebration (placeholders: {property}, {buyer},
    {percent}, {days}, {milestone}, {score})."""
    text = rules.CelebrationText(
        body.title, body.message, body.animation, body.duration, body.share_message
    )
    service.set_celebration_template(
        db, principal=principal, trigger=trigger, variant=variant, text=text
    )
    return body


@router.get(TxId, response_model=TransactionRead)
def get_transaction(db: DB, principal: CurrentPrincipal, transaction_id: int) -> TransactionRead:
    tx = service.get_transaction(db, principal=principal, transaction_id=transaction_id)
    return transaction_read(db, tx)


@router.patch(TxId, response_model=TransactionRead)
def update_transaction(
    db: DB, principal: CurrentPrincipal, transaction_id: int, body: TransactionUpdate
) -> TransactionRead:
    tx = service.update_transaction(
        db, principal=principal, transaction_id=transaction_id, data=body
    )
    return transaction_read(db, tx)


@router.put(TxId + "/milestones", response_model=TransactionRead)
def update_milestone(
    db: DB, principal: CurrentPrincipal, transaction_id: int, body: MilestoneUpdate
) -> TransactionRead:
    """Move one milestone. A transition the plan does not allow is a 409 with the reason."""
    tx = service.update_milestone(
        db,
        principal=principal,
        transaction_id=transaction_id,
        milestone_type=str(body.milestone_type),
        status=str(body.status),
        actual_date=body.actual_date,
        notes=body.notes,
    )
    return transaction_read(db, tx)


@router.get(TxId + "/events", response_model=Page[EventRead])
def list_events(
    db: DB,
    principal: CurrentPrincipal,
    transaction_id: int,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[EventRead]:
    """The activity feed, newest first; buyers see only client-visible entries."""
    rows, total = service.activity(
        db, principal=principal, transaction_id=transaction_id, page=page, per_page=per_page
    )
    return Page(
        items=[EventRead.model_validate(r) for r in rows], total=total, page=page, per_page=per_page
    )


@router.post(TxId + "/events/{event_id:int}/acknowledge", response_model=EventRead)
def acknowledge_event(
    db: DB, principal: CurrentPrincipal, transaction_id: int, event_id: int
) -> EventRead:
    row = service.acknowledge(
        db, principal=principal, transaction_id=transaction_id, event_id=event_id
    )
    return EventRead.model_validate(row)


@router.get(TxId + "/predictions", response_model=PredictionRead)
def predictions(db: DB, principal: CurrentPrincipal, transaction_id: int) -> PredictionRead:
    """Delay probability, predicted closing date with its interval, risks and next steps."""
    row = service.latest_prediction(db, principal=principal, transaction_id=transaction_id)
    read = PredictionRead.model_validate(row)
    read.risk_level = service.risk_level(row.delay_probability)
    return read


@router.get(TxId + "/health", response_model=HealthRead)
def health(db: DB, principal: CurrentPrincipal, transaction_id: int) -> dict[str, Any]:
    return service.health(db, principal=principal, transaction_id=transaction_id)


@router.get(TxId + "/analytics")
def analytics(db: DB, principal: CurrentPrincipal, transaction_id: int) -> dict[str, Any]:
    return service.analytics(db, principal=principal, transaction_id=transaction_id)


@router.post(TxId + "/celebrate", status_code=201, response_model=CelebrationRead)
def celebrate(
    db: DB, principal: CurrentPrincipal, transaction_id: int, body: CelebrateRequest
) -> CelebrationRead:
    row = service.celebrate(db, principal=principal, transaction_id=transaction_id, body=body)
    return CelebrationRead.model_validate(row)


@router.get(TxId + "/celebrations", response_model=list[CelebrationRead])
def celebrations(db: DB, principal: CurrentPrincipal, transaction_id: int) -> list[CelebrationRead]:
    rows = service.celebrations(db, principal=principal, transaction_id=transaction_id)
    return [CelebrationRead.model_validate(r) for r in rows]


@router.post(TxId + "/celebrations/{celebration_id:int}/engagement", response_model=CelebrationRead)
def engagement(
    db: DB,
    principal: CurrentPrincipal,
    transaction_id: int,
    celebration_id: int,
    body: EngagementUpdate,
) -> CelebrationRead:
    """The buyer's portal reports that a celebration was shown, for how long, and shared."""
    row = service.record_engagement(
        db,
        principal=principal,
        transaction_id=transaction_id,
        celebration_id=celebration_id,
        body=body,
    )
    return CelebrationRead.model_validate(row)


@router.websocket(TxId + "/live")
async def live(
    websocket: WebSocket,
    transaction_id: int,
    token: str | None = None,
    last_event_id: str | None = None,
) -> None:
    """This transaction's events as they happen, for its buyers, agent, broker and admins;
    reconnect with `last_event_id` to receive what was missed."""
    await realtime.stream(
        websocket,
        token=token,
        channels=[f"transaction:{transaction_id}"],
        last_event_id=last_event_id,
    )
