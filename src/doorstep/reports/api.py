"""JSON routes of seed 002 under /api/custom-reports: the templates, asking for a report (made
in the background), the history, the download, and schedules. Parse, call the service, shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from doorstep.platform.http import DB, CurrentPrincipal, DoorstepRoute
from doorstep.platform.schemas import StrictModel
from doorstep.reports import rules, service

router = APIRouter(prefix="/api/custom-reports", route_class=DoorstepRoute, tags=["reports"])
Id = Annotated[int, Field(ge=1, le=2_147_483_647)]
PathId = Annotated[int, Path(ge=1, le=2_147_483_647)]


class GenerateBody(StrictModel):
    """The seed's body. `template`, `format` and `sections` are checked against the template
    (a 422 lists the valid ones); `agent_id` is the subject of the agent performance report."""

    template: str = Field(max_length=48)
    company_id: Id | None = None
    agent_id: Id | None = None
    format: str = Field(default="pdf", max_length=8)
    sections: list[Annotated[str, Field(max_length=48)]] | None = Field(default=None, max_length=20)

    def request(self) -> service.Request:
        return service.Request(
            self.template, self.format, self.sections, self.company_id, self.agent_id
        )


class ScheduleBody(GenerateBody):
    cadence: str = Field(max_length=12, description="weekly, monthly or quarterly")
    recipients: list[Annotated[str, Field(max_length=254)]] = Field(min_length=1, max_length=50)


@router.get("/templates")
def templates() -> dict[str, Any]:
    """Every template with its subject, sections (all and default) and the formats."""
    return {
        "templates": [
            {
                "id": t.key,
                "name": t.name,
                "description": t.description,
                "subject": t.subject,
                "sections": [{"id": s, "title": rules.SECTION_TITLES[s]} for s in t.sections],
                "default_sections": list(t.default_sections),
            }
            for t in rules.TEMPLATES.values()
        ],
        "formats": list(rules.FORMATS),
    }


@router.post("/generate", status_code=202)
def generate(body: GenerateBody, db: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    """Queue a report; it is made in the background (poll `status_url`, or wait for the
    `report.done` event and notification), then downloaded from `download_url`."""
    report = service.request_report(db, principal, body.request())
    return {**service.summary(report), "status_url": f"/api/custom-reports/{report.id}"}


@router.get("/history")
def history(
    db: DB,
    principal: CurrentPrincipal,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    status: Annotated[str | None, Query(max_length=12)] = None,
) -> dict[str, Any]:
    """The reports the caller may read, newest first."""
    rows, total = service.history(db, principal, page=page, per_page=per_page, status=status)
    return {
        "items": [service.summary(r) for r in rows],
        "total": total,
        "page": page,
        "per_page": per_page,
    }


@router.get("/schedules")
def schedules(db: DB, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return [_schedule(s) for s in service.list_schedules(db, principal)]


@router.post("/schedules", status_code=201)
def create_schedule(body: ScheduleBody, db: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    """Make the report every week, month or quarter and e-mail it, attached, to recipients."""
    schedule = service.create_schedule(
        db, principal, body.request(), cadence=body.cadence, recipients=body.recipients
    )
    return _schedule(schedule)


@router.delete("/schedules/{schedule_id}", status_code=204)
def delete_schedule(schedule_id: PathId, db: DB, principal: CurrentPrincipal) -> Response:
    service.delete_schedule(db, principal, schedule_id)
    return Response(status_code=204)


@router.get("/download/{report_id}")
def download(report_id: PathId, db: DB, principal: CurrentPrincipal) -> Response:
    """The report's file, with its SHA-256 as the ETag."""
    report = service.download(db, principal, report_id)
    return Response(
        service.content_of(db, report),
        media_type=report.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{report.filename}"',
            "ETag": f'"{report.checksum}"',
            "X-Checksum-SHA256": report.checksum or "",
        },
    )


@router.get("/{report_id}")
def status(report_id: PathId, db: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    return service.summary(service.get_report(db, principal, report_id))


def _schedule(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "template": s.template,
        "format": s.format,
        "sections": s.sections,
        "company_id": s.company_id,
        "agent_id": s.agent_id,
        "cadence": s.cadence,
        "recipients": s.recipients,
        "next_run_at": s.next_run_at.isoformat(),
        "active": s.active,
        "last_report_id": s.last_report_id,
    }
