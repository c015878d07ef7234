"""HTML routes of seed 000: the buyer's portal (live, installable, readable offline) and the
agents' transaction pages. They call the same service as the JSON API."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from doorstep.platform import accounts, events
from doorstep.platform.auth import Principal, Role, Tenant
from doorstep.platform.db import utcnow
from doorstep.platform.errors import Conflict, DoorstepError, NotFound, RuleViolation
from doorstep.platform.http import DB, DoorstepRoute, is_htmx, require_role
from doorstep.transactions import rules, service
from doorstep.transactions.models import (
    Celebration,
    EscrowStatus,
    LoanType,
    Milestone,
    Prediction,
    Transaction,
)
from doorstep.transactions.schemas import MilestoneUpdate
from doorstep.web.formatting import local_time, money
from doorstep.web.templating import WEB_DIR, flash, render

log = logging.getLogger(__name__)
router = APIRouter(route_class=DoorstepRoute, include_in_schema=False)

STAFF = (Role.admin, Role.broker, Role.agent)
StaffPage = Annotated[Principal, require_role(*STAFF)]
ClientPage = Annotated[Principal, require_role(Role.client)]
PortalVisitor = Annotated[Principal, require_role(Role.client, *STAFF)]
TxId = Annotated[int, Path(ge=1, le=2_147_483_647)]
PER_PAGE = 48
OPEN = (EscrowStatus.active, EscrowStatus.pending)
# A celebration the buyer missed (offline when it fired) is shown on their next visit, if recent.
MISSED_CELEBRATION_DAYS = 3
SERVICE_WORKER = WEB_DIR / "static" / "js" / "portal-sw.js"
# The htmx trigger transactions.js turns into one toast (doorstep.js's own "toast" listens on
# both <body> and document, so a bubbling trigger would show twice).
TOAST = "transactions:toast"

LOAN_LABELS = {"cash": "Cash", "conventional": "Conventional", "fha": "FHA", "va": "VA"}
STATUS_LABELS = {
    "pending": "Upcoming",
    "in_progress": "In progress",
    "completed": "Completed",
    "delayed": "Delayed",
    "skipped": "Skipped",
}
StatusFilter = Literal["open", "Active", "Pending", "Closed", "Cancelled", "all"]
SortKey = Literal["target_closing_date", "health_score", "-progress_percentage", "-updated_at"]
SORTS = {
    "target_closing_date": "Closing soonest",
    "health_score": "Lowest health first",
    "-progress_percentage": "Most progress first",
    "-updated_at": "Recently updated",
}


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


# --- helpers the templates use -------------------------------------------------------------------


def health_tone(score: int | float) -> str:
    """The gauge's colour: green from 80, amber from 60, red below."""
    return "green" if score >= 80 else ("amber" if score >= 60 else "red")


def _common(tenant: Tenant) -> dict[str, Any]:
    return {
        "health_tone": health_tone,
        "money": money,
        "local": local_time(tenant),
        "loan_labels": LOAN_LABELS,
        "status_labels": STATUS_LABELS,
        "today": service.today(),
    }


@dataclass(frozen=True)
class Stage:
    """Where a deal is: the milestone it is working on, or its end."""

    key: str
    label: str
    order: int
    status: str  # the milestone's status, or the escrow status when it has ended


def stage_of(tx: Transaction, milestones: Sequence[Milestone]) -> Stage:
    if tx.escrow_status in (EscrowStatus.closed, EscrowStatus.cancelled):
        return Stage(tx.escrow_status.lower(), tx.escrow_status, 100, tx.escrow_status.lower())
    for wanted in ("in_progress", "delayed", "pending"):
        current = next((m for m in milestones if m.status == wanted), None)
        if current is not None:
            return Stage(current.milestone_type, current.name, current.order_sequence, wanted)
    return Stage("closing", "Ready to close", 99, "completed")


def _days_to_closing(tx: Transaction) -> int:
    return (tx.target_closing_date - service.today()).days


def _prediction(
    db: Session, principal: Principal, transaction_id: int
) -> tuple[Prediction | None, str | None]:
    """The latest prediction, or why there is none: never a made-up figure."""
    try:
        # A failing predictor must not spoil the page's unit of work: its writes stay in here.
        with db.begin_nested():
            return (
                service.latest_prediction(db, principal=principal, transaction_id=transaction_id),
                None,
            )
    except NotFound as exc:
        return None, exc.detail
    except ImportError:
        return None, "The delay model is not installed yet, so there is no prediction to show."
    except Exception:  # the predictor is another module: report it, keep the page
        log.exception("prediction failed for transaction %s", transaction_id)
        return None, "The prediction could not be computed just now; it has been logged."


# --- the buyer's portal --------------------------------------------------------------------------


@router.get("/portal", response_class=HTMLResponse)
def portal_home(request: Request, db: DB, principal: PortalVisitor) -> Response:
    """A buyer lands on their open purchase; staff have the agent pages instead."""
    if principal.role != Role.client:
        return _redirect("/transactions")
    deals = service.buyer_transactions(db, principal=principal)
    current = next((t for t in deals if t.escrow_status in OPEN), None)
    if current is not None:
        return _redirect(f"/portal/{current.id}")
    tenant = accounts.get_tenant(db, principal=principal)
    return render(
        request,
        "transactions/portal_empty.html",
        {**_common(tenant), "deals": deals, "theme": "dark"},
        tenant=tenant,
    )


@router.get("/portal/sw.js")
def service_worker() -> Response:
    """The portal's service worker, served under /portal so that its scope covers the portal."""
    return Response(
        SERVICE_WORKER.read_bytes(),
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/portal", "Cache-Control": "no-cache"},
    )


def _portal_context(
    db: Session, principal: Principal, transaction_id: int, tenant: Tenant
) -> dict[str, Any]:
    tx = service.get_transaction(db, principal=principal, transaction_id=transaction_id)
    milestones = service.milestones_of(db, tx)
    feed, feed_total = service.activity(
        db, principal=principal, transaction_id=tx.id, page=1, per_page=20
    )
    since = utcnow() - timedelta(days=MISSED_CELEBRATION_DAYS)
    celebrations = service.celebrations(db, principal=principal, transaction_id=tx.id)
    missed = [c for c in celebrations if c.shown_at is None and c.created_at >= since][:3]
    agent = None
    with contextlib.suppress(NotFound):  # a buyer reads their own agent's card only
        agent = accounts.get_user(db, principal=principal, user_id=tx.agent_id)
    return {
        **_common(tenant),
        "tx": tx,
        "milestones": milestones,
        "stage": stage_of(tx, milestones),
        "progress": rules.shown_percent(tx.progress_percentage),
        "health": service.health(db, principal=principal, transaction_id=tx.id),
        "days_to_closing": _days_to_closing(tx),
        "feed": feed,
        "feed_total": feed_total,
        "missed": [service.celebration_json(c) for c in reversed(missed)],
        "agent": agent,
        "staff_view": False,
    }


@router.get("/portal/{transaction_id}", response_class=HTMLResponse)
def portal_page(
    request: Request, db: DB, principal: PortalVisitor, transaction_id: TxId
) -> Response:
    if principal.role != Role.client:
        # Staff may look only at deals they may read, and they look from the agent page.
        service.get_transaction(db, principal=principal, transaction_id=transaction_id)
        return _redirect(f"/transactions/{transaction_id}")
    tenant = accounts.get_tenant(db, principal=principal)
    context = _portal_context(db, principal, transaction_id, tenant)
    context.update(
        theme="dark",  # the portal is a dark, cinematic page whatever the account's theme
        live_channels=[f"user:{principal.user_id}", f"transaction:{transaction_id}"],
        live_since=events.latest_id(db, tenant_id=principal.tenant_id),
        rendered_at=utcnow(),
    )
    return render(request, "transactions/portal.html", context, tenant=tenant)


PortalPart = Literal["hero", "timeline", "health", "activity"]


@router.get("/portal/{transaction_id}/panels", response_class=HTMLResponse)
def portal_panels(
    request: Request,
    db: DB,
    principal: ClientPage,
    transaction_id: TxId,
    parts: Annotated[list[PortalPart] | None, Query(max_length=4)] = None,
) -> Response:
    """Parts of the portal, swapped out of band when a live event says they changed."""
    tenant = accounts.get_tenant(db, principal=principal)
    context = _portal_context(db, principal, transaction_id, tenant)
    context["parts"] = set(parts or ["hero", "timeline", "health", "activity"])
    return render(request, "transactions/_portal_panels.html", context, tenant=tenant)


# --- the agents' pages ---------------------------------------------------------------------------


@router.get("/transactions", response_class=HTMLResponse)
def transactions_page(
    request: Request,
    db: DB,
    principal: StaffPage,
    status: StatusFilter = "open",
    loan_type: Annotated[LoanType | Literal[""] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    sort: SortKey = "target_closing_date",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    statuses = {"open": [*OPEN], "all": []}.get(status, [status])
    filters = service.TransactionFilter(
        escrow_status=[str(s) for s in statuses],
        loan_type=[str(loan_type)] if loan_type else [],
        q=(q or "").strip() or None,
    )
    rows, total = service.list_transactions(
        db, principal=principal, filters=filters, sort=sort, page=page, per_page=PER_PAGE
    )
    groups: dict[str, tuple[Stage, list[dict[str, Any]]]] = {}
    for tx in rows:
        stage = stage_of(tx, service.milestones_of(db, tx))
        card = {
            "tx": tx,
            "stage": stage,
            "progress": rules.shown_percent(tx.progress_percentage),
            "days": _days_to_closing(tx),
        }
        groups.setdefault(stage.key, (stage, []))[1].append(card)
    params = {"status": status, "loan_type": loan_type or "", "q": q or "", "sort": sort}
    tenant = accounts.get_tenant(db, principal=principal)
    return render(
        request,
        "transactions/list.html",
        {
            **_common(tenant),
            "rows": sorted(groups.values(), key=lambda g: g[0].order),
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PER_PAGE)),
            "filters": params,
            "loan_types": list(LoanType),
            "sorts": SORTS,
            "query_for": lambda p: urlencode({**{k: v for k, v in params.items() if v}, "page": p}),
        },
        tenant=tenant,
    )


def _detail_context(
    db: Session, principal: Principal, transaction_id: int, tenant: Tenant
) -> dict[str, Any]:
    tx = service.get_transaction(db, principal=principal, transaction_id=transaction_id)
    milestones = service.milestones_of(db, tx)
    feed, feed_total = service.activity(
        db, principal=principal, transaction_id=tx.id, page=1, per_page=30
    )
    prediction, prediction_missing = _prediction(db, principal, tx.id)
    celebrations: list[Celebration] = service.celebrations(
        db, principal=principal, transaction_id=tx.id
    )
    return {
        **_common(tenant),
        "tx": tx,
        "milestones": milestones,
        "transitions": {m.milestone_type: sorted(rules.TRANSITIONS[m.status]) for m in milestones},
        "stage": stage_of(tx, milestones),
        "progress": rules.shown_percent(tx.progress_percentage),
        "health": service.health(db, principal=principal, transaction_id=tx.id),
        "days_to_closing": _days_to_closing(tx),
        "feed": feed,
        "feed_total": feed_total,
        "prediction": prediction,
        "prediction_missing": prediction_missing,
        "risk_level": service.risk_level(prediction.delay_probability) if prediction else None,
        "celebrations": celebrations,
        "staff_view": True,
        "editable": tx.escrow_status in OPEN,
        "live_channels": [f"user:{principal.user_id}", f"transaction:{tx.id}"],
    }


@router.get("/transactions/{transaction_id}", response_class=HTMLResponse)
def transaction_page(
    request: Request, db: DB, principal: StaffPage, transaction_id: TxId
) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    context = _detail_context(db, principal, transaction_id, tenant)
    return render(request, "transactions/detail.html", context, tenant=tenant)


DetailPart = Literal["summary", "milestones", "prediction", "health", "celebrations", "activity"]


@router.get("/transactions/{transaction_id}/panels", response_class=HTMLResponse)
def transaction_panels(
    request: Request,
    db: DB,
    principal: StaffPage,
    transaction_id: TxId,
    parts: Annotated[list[DetailPart] | None, Query(max_length=6)] = None,
) -> Response:
    """Parts of the agent page, swapped out of band after a live event."""
    tenant = accounts.get_tenant(db, principal=principal)
    context = _detail_context(db, principal, transaction_id, tenant)
    context["parts"] = set(parts or ["summary", "prediction", "health", "celebrations", "activity"])
    return render(request, "transactions/_detail_panels.html", context, tenant=tenant)


def _form_problem(exc: ValidationError) -> str:
    names = {"status": "Status", "actual_date": "Completion date", "notes": "Notes"}
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        if field == "milestone_type":
            problems.append("That milestone does not exist")
        elif field == "actual_date":
            problems.append("Completion date must be a date (YYYY-MM-DD)")
        else:
            problems.append(f"{names.get(field, field)}: {error['msg']}")
    return "; ".join(problems)


@router.post("/transactions/{transaction_id}/milestones/{milestone_type}")
def update_milestone(
    request: Request,
    db: DB,
    principal: StaffPage,
    transaction_id: TxId,
    milestone_type: Annotated[str, Path(max_length=40)],
    status: Annotated[str, Form(max_length=40)] = "",
    actual_date: Annotated[str, Form(max_length=40)] = "",
    notes: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """One milestone's form: the rules' refusal comes back with its reason, and nothing changes."""
    tx = service.get_transaction(db, principal=principal, transaction_id=transaction_id)
    current = next(
        (m for m in service.milestones_of(db, tx) if m.milestone_type == milestone_type), None
    )
    if current is None:
        raise NotFound(f"Milestone '{milestone_type}' is not part of this transaction")
    typed = {"status": status, "actual_date": actual_date, "notes": notes}
    try:
        body = MilestoneUpdate(
            milestone_type=milestone_type,
            status=status,
            actual_date=actual_date.strip() or None,
            notes=notes.strip(),
        )
        name = current.name
        # The form shows the saved note; sending it back unchanged is not a new note.
        changed_notes = body.notes if body.notes != (current.notes or "").strip() else None
        service.update_milestone(
            db,
            principal=principal,
            transaction_id=tx.id,
            milestone_type=str(body.milestone_type),
            status=str(body.status),
            actual_date=body.actual_date,
            notes=changed_notes,
        )
    except ValidationError as exc:
        return _milestone_refused(request, db, principal, tx.id, milestone_type, typed, 422, exc)
    except (Conflict, RuleViolation) as exc:
        return _milestone_refused(
            request, db, principal, tx.id, milestone_type, typed, exc.status_code, exc
        )
    message = f"{name}: {STATUS_LABELS[str(body.status)].lower()}."
    if not is_htmx(request):
        response = _redirect(f"/transactions/{tx.id}")
        flash(response, message)
        return response
    tenant = accounts.get_tenant(db, principal=principal)
    context = _detail_context(db, principal, tx.id, tenant)
    context["parts"] = {"summary", "prediction", "health", "celebrations", "activity"}
    response = render(request, "transactions/_milestone_saved.html", context, tenant=tenant)
    response.headers["HX-Trigger"] = json.dumps({TOAST: {"message": message}})
    return response


def _milestone_refused(
    request: Request,
    db: Session,
    principal: Principal,
    transaction_id: int,
    milestone_type: str,
    typed: dict[str, str],
    status_code: int,
    exc: Exception,
) -> Response:
    db.rollback()  # nothing of a refused change may remain
    reason = _form_problem(exc) if isinstance(exc, ValidationError) else str(exc)
    if isinstance(exc, DoorstepError):
        reason = exc.detail
    tenant = accounts.get_tenant(db, principal=principal)
    context = _detail_context(db, principal, transaction_id, tenant)
    context.update(error_for=milestone_type, error=reason, typed=typed)
    template = "transactions/_milestones.html" if is_htmx(request) else "transactions/detail.html"
    response = render(request, template, context, status_code=status_code, tenant=tenant)
    if is_htmx(request):
        response.headers["HX-Trigger"] = json.dumps(
            {TOAST: {"message": f"Not saved: {reason}", "level": "danger"}}
        )
    return response
