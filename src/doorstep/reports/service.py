"""Use cases of the report builder (seed 002): ask for a report, generate it in the background,
list the history, download; schedules that mail a report every week, month or quarter.

A report is built in two steps: `builder.build_document` gathers the data a template's sections need
(company metrics, valuations, benchmarks; or the broker KPIs of seed 004) into a
`ReportDocument`, then `render` writes it in the asked format. Who may see the subject may
generate and download its reports; nobody else learns it exists (404).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.platform import events, jobs, notify
from doorstep.platform.access import get_readable, readable
from doorstep.platform.auth import Principal, Role, User
from doorstep.platform.channels import Attachment
from doorstep.platform.db import utcnow
from doorstep.platform.errors import Conflict, Forbidden, NotFound, RuleViolation, TooManyRequests
from doorstep.reports import builder, data, rules
from doorstep.reports.models import (
    Company,
    Report,
    ReportSchedule,
)

log = logging.getLogger("doorstep.reports")
REPORT_READY = notify.register_type(
    "report.ready",
    label="A report I asked for is ready",
    roles=(Role.admin, Role.broker, Role.analyst),
    defaults=(notify.Channel.in_app,),
)
REPORT_SCHEDULED = notify.register_type(
    "report.scheduled",
    label="A scheduled report (e-mailed with the report attached)",
    roles=(Role.admin, Role.broker, Role.analyst),
    defaults=(notify.Channel.in_app, notify.Channel.email),
)


# --- asking for a report ------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    template: str
    format: str
    sections: Sequence[str] | None = None
    company_id: int | None = None
    agent_id: int | None = None


def _require_generator(principal: Principal, tpl: rules.Template) -> None:
    if not rules.may_generate(principal.role, tpl):
        allowed = ", ".join(sorted(rules.generator_roles(tpl)))
        raise Forbidden(f"{tpl.name} reports are for: {allowed}")


def _check_subject(db: Session, principal: Principal, tpl: rules.Template, req: Request) -> None:
    """The subject exists and the principal may see it (404 otherwise, never 403)."""
    if tpl.subject == "company":
        if req.company_id is None:
            raise RuleViolation(f"company_id is required for {tpl.key}")
        get_readable(db, Company, req.company_id, principal)
    elif tpl.subject == "agent":
        if req.agent_id is None:
            raise RuleViolation(f"agent_id is required for {tpl.key}")
        builder.team_agent(db, principal, req.agent_id)


def _throttle(db: Session, principal: Principal) -> None:
    """At most `GENERATIONS_PER_HOUR` reports per user per hour (counted in the database, so
    every server process and worker agrees)."""
    since = utcnow() - timedelta(hours=1)
    asked = db.scalars(
        select(Report.created_at)
        .where(Report.requested_by == principal.user_id, Report.created_at >= since)
        .order_by(Report.created_at)
    ).all()
    if len(asked) >= rules.GENERATIONS_PER_HOUR:
        wait = int((asked[0] + timedelta(hours=1) - utcnow()).total_seconds()) + 1
        raise TooManyRequests(
            f"At most {rules.GENERATIONS_PER_HOUR} reports an hour; try again in {wait} s",
            retry_after=max(1, wait),
        )


def request_report(
    db: Session, principal: Principal, req: Request, *, schedule_id: int | None = None
) -> Report:
    """Check the request, store it as queued and enqueue its generation (after commit)."""
    tpl = rules.template(req.template)
    rules.check_format(req.format)
    sections = rules.choose_sections(tpl, list(req.sections or []))
    _require_generator(principal, tpl)
    _check_subject(db, principal, tpl, req)
    if schedule_id is None:
        _throttle(db, principal)
    report = Report(
        tenant_id=principal.tenant_id,
        requested_by=principal.user_id,
        schedule_id=schedule_id,
        template=tpl.key,
        format=req.format,
        sections=list(sections),
        company_id=req.company_id if tpl.subject == "company" else None,
        agent_id=req.agent_id if tpl.subject == "agent" else None,
        title=tpl.name,
    )
    db.add(report)
    db.flush()
    jobs.enqueue(
        db,
        "reports.generate",
        args={"report_id": report.id},
        key=f"report:{report.id}",
        tenant_id=principal.tenant_id,
    )
    data.record_activity(db, principal, "report.requested", f"{tpl.name} ({req.format.upper()})")
    return report


# --- generating ---------------------------------------------------------------------------------


def _principal_of(db: Session, report: Report) -> Principal:
    """The report is made with the eyes of whoever asked for it (or owns its schedule)."""
    user = db.get(User, report.requested_by) if report.requested_by else None
    if user is None or not user.is_active:
        raise Forbidden("The person who asked for this report can no longer make it")
    return Principal.of(user)


@jobs.job("reports.generate", max_attempts=3, backoff_seconds=5)
def generate(db: Session, *, report_id: int) -> None:
    """Build and render one report; idempotent (a finished report is left alone)."""
    from doorstep.reports import render

    report = db.get(Report, report_id)
    if report is None or report.status == "done":
        return
    report.status = "running"
    try:
        principal = _principal_of(db, report)
        _require_generator(principal, rules.template(report.template))  # still allowed?
        doc = builder.build_document(db, principal, report)
    except (Forbidden, NotFound, RuleViolation) as exc:
        report.status, report.error = "failed", exc.detail
        report.finished_at = utcnow()
        _announce(db, report)
        return
    # Rendering takes a second or more: hold no transaction meanwhile (on SQLite every
    # transaction holds the write lock, and other requests would queue behind it).
    db.commit()
    try:
        content = render.render(doc, report.format)  # type: ignore[arg-type]
    except Exception as exc:  # deterministic: the same document would fail again
        log.exception("report %s could not be rendered", report_id)
        report.status, report.error = "failed", f"Rendering failed: {exc}"[:1000]
        report.finished_at = utcnow()
        _announce(db, report)
        return
    report.content = content
    report.size = len(content)
    report.checksum = hashlib.sha256(content).hexdigest()
    report.filename = render.filename(doc, report.format)  # type: ignore[arg-type]
    report.media_type = render.FORMATS[report.format].media_type  # type: ignore[index]
    report.title = f"{doc.title}: {doc.subject}"[:200]
    report.status, report.error, report.finished_at = "done", None, utcnow()
    _announce(db, report)
    if report.schedule_id is not None:
        send_scheduled(db, report)
    elif report.requested_by is not None:
        notify.notify(
            db,
            user_id=report.requested_by,
            type=REPORT_READY.key,
            title=f"Your report is ready: {report.title}",
            body=f"{report.format.upper()}, {report.size:,} bytes.",
            link=f"/reports?highlight={report.id}",
        )


def _announce(db: Session, report: Report) -> None:
    if report.requested_by is None:
        return
    events.record(
        db,
        tenant_id=report.tenant_id,
        channels=[f"user:{report.requested_by}"],
        type=f"report.{report.status}",
        data=summary(report),
        audience=events.Audience.user(report.requested_by),
    )


def summary(report: Report) -> dict[str, Any]:
    return {
        "id": report.id,
        "template": report.template,
        "format": report.format,
        "sections": report.sections,
        "company_id": report.company_id,
        "agent_id": report.agent_id,
        "title": report.title,
        "status": report.status,
        "error": report.error,
        "filename": report.filename,
        "size": report.size,
        "checksum": report.checksum,
        "created_at": report.created_at.isoformat(),
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
        "download_url": f"/api/custom-reports/download/{report.id}"
        if report.status == "done"
        else None,
    }


# --- history and download -----------------------------------------------------------------------


def history(
    db: Session, principal: Principal, *, page: int, per_page: int, status: str | None = None
) -> tuple[list[Report], int]:
    if status is not None and status not in rules.STATUSES:
        raise RuleViolation(f"status must be one of: {', '.join(rules.STATUSES)}")
    stmt = readable(select(Report), principal)
    if status is not None:
        stmt = stmt.where(Report.status == status)
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.scalars(
        stmt.order_by(Report.created_at.desc(), Report.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return list(rows), total


def get_report(db: Session, principal: Principal, report_id: int) -> Report:
    return get_readable(db, Report, report_id, principal)


def download(db: Session, principal: Principal, report_id: int) -> Report:
    """A finished report, for someone who may read it."""
    report = get_readable(db, Report, report_id, principal)  # the policy covers its subject
    if report.status != "done":
        raise Conflict(f"Report {report_id} is {report.status}; download it when it is done")
    data.record_activity(db, principal, "report.downloaded", report.filename or str(report.id))
    return report


def content_of(db: Session, report: Report) -> bytes:
    content = db.scalar(select(Report.content).where(Report.id == report.id))
    if content is None:
        raise NotFound(f"Report {report.id} has no content")
    return content


# --- schedules ----------------------------------------------------------------------------------


def create_schedule(
    db: Session,
    principal: Principal,
    req: Request,
    *,
    cadence: str,
    recipients: list[str],
    first_run: datetime | None = None,
) -> ReportSchedule:
    """A report made every week, month or quarter and e-mailed (attached) to recipients, who
    must be people of the tenant allowed to read it."""
    rules.check_cadence(cadence)
    tpl = rules.template(req.template)
    rules.check_format(req.format)
    sections = rules.choose_sections(tpl, list(req.sections or []))
    _require_generator(principal, tpl)
    _check_subject(db, principal, tpl, req)
    if not recipients:
        raise RuleViolation("recipients: name at least one person to send the report to")
    wanted = sorted({r.strip().lower() for r in recipients})
    found = {
        u.email: u
        for u in db.scalars(
            select(User).where(User.tenant_id == principal.tenant_id, User.email.in_(wanted))
        )
    }
    refused = [e for e in wanted if e not in found or found[e].role not in rules.VIEWER_ROLES]
    if refused:
        raise RuleViolation(
            "recipients must be active admins, brokers or analysts of your organisation: "
            + ", ".join(refused)
        )
    schedule = ReportSchedule(
        tenant_id=principal.tenant_id,
        owner_id=principal.user_id,
        template=tpl.key,
        format=req.format,
        sections=list(sections),
        company_id=req.company_id if tpl.subject == "company" else None,
        agent_id=req.agent_id if tpl.subject == "agent" else None,
        cadence=cadence,
        recipients=wanted,
        next_run_at=first_run or utcnow(),
    )
    db.add(schedule)
    db.flush()
    return schedule


def list_schedules(db: Session, principal: Principal) -> list[ReportSchedule]:
    return list(db.scalars(readable(select(ReportSchedule), principal).order_by(ReportSchedule.id)))


def delete_schedule(db: Session, principal: Principal, schedule_id: int) -> None:
    db.delete(get_readable(db, ReportSchedule, schedule_id, principal))


@jobs.job("reports.run_schedules", max_attempts=3)
def run_schedules(db: Session, *, now: str | None = None) -> None:
    """Ask for the report of every due schedule (as its owner) and move it to its next run."""
    moment = datetime.fromisoformat(now) if now else utcnow()
    due = db.scalars(
        select(ReportSchedule)
        .where(ReportSchedule.active.is_(True), ReportSchedule.next_run_at <= moment)
        .order_by(ReportSchedule.id)
    ).all()
    for schedule in due:
        owner = db.get(User, schedule.owner_id)
        if owner is None or not owner.is_active:
            schedule.active = False
            continue
        req = Request(
            schedule.template,
            schedule.format,
            schedule.sections,
            schedule.company_id,
            schedule.agent_id,
        )
        try:
            report = request_report(db, Principal.of(owner), req, schedule_id=schedule.id)
        except (NotFound, Forbidden, RuleViolation) as exc:
            log.warning("schedule %s paused: %s", schedule.id, exc)
            schedule.active = False
            continue
        schedule.last_report_id = report.id
        while schedule.next_run_at <= moment:
            schedule.next_run_at = rules.next_run(schedule.next_run_at, schedule.cadence)


def send_scheduled(db: Session, report: Report) -> None:
    """E-mail a finished scheduled report to its schedule's recipients (attached), through the
    notification layer: each gets an in-app notice and an e-mail delivery."""
    schedule = db.get(ReportSchedule, report.schedule_id) if report.schedule_id else None
    if schedule is None:
        return
    for user in db.scalars(
        select(User).where(User.tenant_id == report.tenant_id, User.email.in_(schedule.recipients))
    ):
        notify.notify(
            db,
            user_id=user.id,
            type=REPORT_SCHEDULED.key,
            title=f"{report.title} ({schedule.cadence})",
            body=f"Your {schedule.cadence} report is attached ({report.format.upper()}).",
            link=f"/api/custom-reports/download/{report.id}",
            channels={notify.Channel.in_app, notify.Channel.email},
        )


def _attachments(db: Session, notification: notify.Notification) -> list[Attachment]:
    """The report a scheduled-report e-mail carries (named by the notice's download link)."""
    report_id = (notification.link or "").rsplit("/", 1)[-1]
    report = db.get(Report, int(report_id)) if report_id.isdigit() else None
    if report is None or report.status != "done" or report.tenant_id != notification.tenant_id:
        return []
    return [
        Attachment(
            report.filename or f"report-{report.id}.{report.format}",
            report.media_type or "application/octet-stream",
            content_of(db, report),
        )
    ]


notify.register_attachments(REPORT_SCHEDULED.key, _attachments)
