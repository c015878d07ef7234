"""The report builder (seed 002): templates, generation as a background job, history, download
with permissions per role, the 422s that list valid values, rate limit, schedules by e-mail."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.auth import Role
from doorstep.platform.db import utcnow
from doorstep.platform.jobs import Job, JobRunner
from doorstep.platform.notify import Delivery, Notification
from doorstep.reports import rules, service
from doorstep.reports.models import (
    Company,
    Report,
    ReportSchedule,
)
from tests.conftest import Brokerage, bearer, free_port, web_login
from tests.fakes.smtp import smtp_server
from tests.reports.samples import sample_company

GENERATE = "/api/custom-reports/generate"


def run_job(app: FastAPI, db: Session, report_id: int) -> None:
    job = db.scalar(select(Job).where(Job.key == f"report:{report_id}"))
    assert job is not None
    app.state.jobs.run(job.id)
    db.expire_all()


def generate(
    client: TestClient, headers: dict[str, str], **body: Any
) -> Any:  # the response, as a TestClient returns it
    return client.post(GENERATE, json=body, headers=headers)


@pytest.fixture
def company(db: Session, brokerage: Brokerage) -> Company:
    return sample_company(db, brokerage.tenant.id)


def test_templates_list_sections_and_formats(client: TestClient, brokerage: Brokerage) -> None:
    body = client.get("/api/custom-reports/templates", headers=bearer(client, brokerage.analyst))
    assert body.status_code == 200
    found = {t["id"]: t for t in body.json()["templates"]}
    assert set(found) == {
        "executive_summary",
        "investor_pitch",
        "quarterly_review",
        "due_diligence",
        "agent_performance",
        "broker_quarterly_review",
    }
    assert [s["id"] for s in found["due_diligence"]["sections"]] == list(rules.COMPANY_SECTIONS)
    assert body.json()["formats"] == ["pdf", "docx", "xlsx", "pptx", "json"]


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        ({"template": "annual_gala"}, "executive_summary, investor_pitch"),
        ({"format": "odt"}, "pdf, docx, xlsx, pptx, json"),
        ({"sections": ["summary", "horoscope"]}, "valid sections: summary, financials"),
    ],
)
def test_unknown_template_format_or_section_is_a_422_listing_valid_ones(
    client: TestClient,
    db: Session,
    brokerage: Brokerage,
    company: Company,
    change: dict[str, Any],
    listed: str,
) -> None:
    body = {"template": "executive_summary", "company_id": company.id, "format": "pdf", **change}
    response = generate(client, bearer(client, brokerage.analyst), **body)
    assert response.status_code == 422, response.text
    assert listed in response.json()["detail"]
    assert db.scalar(select(Report).where(Report.tenant_id == brokerage.tenant.id)) is None


def test_unknown_fields_and_bad_ids_are_refused(
    client: TestClient, brokerage: Brokerage, company: Company
) -> None:
    headers = bearer(client, brokerage.analyst)
    extra = generate(client, headers, template="executive_summary", company_id=company.id, x=1)
    assert extra.status_code == 422
    huge = generate(client, headers, template="executive_summary", company_id=2**40)
    assert huge.status_code == 422
    missing = generate(client, headers, template="executive_summary")
    assert missing.status_code == 422
    assert "company_id is required" in missing.json()["detail"]


def test_generate_then_download_a_pdf_read_back(
    app: FastAPI, client: TestClient, db: Session, brokerage: Brokerage, company: Company
) -> None:
    headers = bearer(client, brokerage.analyst)
    queued = generate(client, headers, template="executive_summary", company_id=company.id)
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    assert queued.json()["download_url"] is None
    report_id = queued.json()["id"]
    not_yet = client.get(f"/api/custom-reports/download/{report_id}", headers=headers)
    assert not_yet.status_code == 409
    run_job(app, db, report_id)
    state = client.get(f"/api/custom-reports/{report_id}", headers=headers).json()
    assert state["status"] == "done", state
    got = client.get(state["download_url"], headers=headers)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(got.content).hexdigest() == state["checksum"]
    assert len(got.content) == state["size"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(got.content)).pages)
    assert "Executive Summary" in text
    assert "Cedar Street Bakery" in text
    assert "Valuation comparison" in text
    assert "$1.1M" in text  # the DCF value, formatted
    assert "fell 20%" not in text  # risks are not among the default sections
    # The requester was told, in-app, and the history lists it.
    notice = db.scalar(select(Notification).where(Notification.user_id == brokerage.analyst.id))
    assert notice is not None
    assert "ready" in notice.title
    listed = client.get("/api/custom-reports/history", headers=headers).json()
    assert [r["id"] for r in listed["items"]] == [report_id]


@pytest.mark.parametrize("fmt", ["docx", "xlsx", "pptx", "json"])
def test_due_diligence_in_every_other_format(
    app: FastAPI, client: TestClient, db: Session, brokerage: Brokerage, company: Company, fmt: str
) -> None:
    headers = bearer(client, brokerage.admin)
    queued = generate(client, headers, template="due_diligence", company_id=company.id, format=fmt)
    run_job(app, db, queued.json()["id"])
    got = client.get(f"/api/custom-reports/download/{queued.json()['id']}", headers=headers)
    assert got.status_code == 200, got.text
    if fmt == "json":
        doc = json.loads(got.content)
        keys = [s["key"] for s in doc["sections"]]
        assert keys == list(rules.COMPANY_SECTIONS)
        risks = next(s for s in doc["sections"] if s["key"] == "risks")
        assert any("fell 20%" in b for b in risks["bullets"])
        assert any("Customer churn" in b for b in risks["bullets"])  # worse than p75
        return
    names = zipfile.ZipFile(io.BytesIO(got.content)).namelist()
    if fmt == "xlsx":
        assert sum(n.startswith("xl/charts/chart") for n in names) == 4  # native charts
    else:
        media = [n for n in names if "/media/" in n]
        assert len(media) >= 4, names  # the four charts as pictures


def test_permissions_per_role(
    app: FastAPI,
    client: TestClient,
    db: Session,
    brokerage: Brokerage,
    rival: Brokerage,
    company: Company,
) -> None:
    analyst = bearer(client, brokerage.analyst)
    made = generate(client, analyst, template="executive_summary", company_id=company.id)
    report_id = made.json()["id"]
    run_job(app, db, report_id)
    url = f"/api/custom-reports/download/{report_id}"
    outcomes = {}
    for role in Role:
        headers = bearer(client, brokerage.by_role(role))
        outcomes[role] = (
            generate(
                client, headers, template="quarterly_review", company_id=company.id
            ).status_code,
            client.get(url, headers=headers).status_code,
        )
    assert outcomes == {
        Role.admin: (202, 200),
        Role.broker: (202, 200),
        Role.analyst: (202, 200),
        Role.agent: (403, 404),
        Role.client: (403, 404),
    }
    stranger = bearer(client, rival.admin)
    assert client.get(url, headers=stranger).status_code == 404
    other = generate(client, stranger, template="executive_summary", company_id=company.id)
    assert other.status_code == 404
    assert client.get("/api/custom-reports/history", headers=stranger).json()["items"] == []


def test_agent_report_is_the_brokers_own_team_only(
    app: FastAPI, client: TestClient, db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    broker = bearer(client, brokerage.broker)
    mine = generate(
        client, broker, template="agent_performance", agent_id=brokerage.agent.id, format="json"
    )
    assert mine.status_code == 202, mine.text
    run_job(app, db, mine.json()["id"])
    doc = json.loads(
        client.get(
            mine.json()["download_url"] or f"/api/custom-reports/download/{mine.json()['id']}",
            headers=broker,
        ).content
    )
    assert doc["subject"] == brokerage.agent.full_name
    assert [s["key"] for s in doc["sections"]][:2] == ["summary", "pipeline"]
    theirs = generate(client, broker, template="agent_performance", agent_id=rival.agent.id)
    assert theirs.status_code == 404
    analyst = bearer(client, brokerage.analyst)
    refused = generate(client, analyst, template="agent_performance", agent_id=brokerage.agent.id)
    assert refused.status_code == 403
    # The analyst does not see the broker's agent report in the history either.
    assert client.get("/api/custom-reports/history", headers=analyst).json()["items"] == []
    review = generate(client, broker, template="broker_quarterly_review", format="xlsx")
    run_job(app, db, review.json()["id"])
    assert db.get(Report, review.json()["id"]).status == "done"  # type: ignore[union-attr]


def test_generation_is_rate_limited_per_user(
    client: TestClient, db: Session, brokerage: Brokerage, company: Company
) -> None:
    for _ in range(rules.GENERATIONS_PER_HOUR):
        db.add(
            Report(
                tenant_id=brokerage.tenant.id,
                requested_by=brokerage.analyst.id,
                template="executive_summary",
                format="pdf",
                sections=["summary"],
                company_id=company.id,
            )
        )
    db.commit()
    refused = generate(
        client,
        bearer(client, brokerage.analyst),
        template="executive_summary",
        company_id=company.id,
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    other = generate(
        client,
        bearer(client, brokerage.admin),
        template="executive_summary",
        company_id=company.id,
    )
    assert other.status_code == 202


def test_a_schedule_mails_the_report_attached(
    app: FastAPI, client: TestClient, db: Session, brokerage: Brokerage, company: Company
) -> None:
    admin = bearer(client, brokerage.admin)
    bad = client.post(
        "/api/custom-reports/schedules",
        json={
            "template": "executive_summary",
            "company_id": company.id,
            "cadence": "monthly",
            "recipients": ["someone@elsewhere.test"],
        },
        headers=admin,
    )
    assert bad.status_code == 422
    assert "someone@elsewhere.test" in bad.json()["detail"]
    made = client.post(
        "/api/custom-reports/schedules",
        json={
            "template": "executive_summary",
            "company_id": company.id,
            "cadence": "monthly",
            "recipients": [brokerage.analyst.email],
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    schedule = db.get(ReportSchedule, made.json()["id"])
    assert schedule is not None
    first_run = schedule.next_run_at
    service.run_schedules(db, now=(utcnow() + timedelta(seconds=1)).isoformat())
    db.commit()
    db.refresh(schedule)
    assert schedule.next_run_at > first_run
    report = db.get(Report, schedule.last_report_id)
    assert report is not None
    run_job(app, db, report.id)
    notice = db.scalar(
        select(Notification).where(
            Notification.user_id == brokerage.analyst.id, Notification.type == "report.scheduled"
        )
    )
    assert notice is not None
    delivery = db.scalar(select(Delivery).where(Delivery.notification_id == notice.id))
    assert delivery is not None
    assert delivery.channel == "email"
    # The e-mail goes through a real SMTP server and carries the report.
    with smtp_server(free_port()) as server:
        settings = app.state.settings.model_copy(
            update={"smtp_host": server.host, "smtp_port": server.port, "smtp_starttls": False}
        )
        job_id = db.scalar(select(Job.id).where(Job.key == f"deliver:{delivery.id}"))
        assert job_id is not None
        JobRunner(settings, app.state.sessionmaker).run(job_id)
        [message] = server.inbox.messages
    assert server.inbox.recipients == [[brokerage.analyst.email]]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == report.filename
    assert attachment.get_content_type() == "application/pdf"
    data = attachment.get_content()
    assert data[:4] == b"%PDF"
    assert hashlib.sha256(data).hexdigest() == report.checksum


def test_next_run_of_each_cadence() -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
    assert rules.next_run(start, "weekly") == datetime(2026, 2, 7, 8, 0, tzinfo=UTC)
    assert rules.next_run(start, "monthly") == datetime(2026, 2, 28, 8, 0, tzinfo=UTC)
    assert rules.next_run(start, "quarterly") == datetime(2026, 4, 30, 8, 0, tzinfo=UTC)


def test_builder_page_asks_for_a_report_and_lists_it(
    client: TestClient, db: Session, brokerage: Brokerage, company: Company
) -> None:
    csrf = web_login(client, brokerage.analyst)
    page = client.get("/reports")
    assert page.status_code == 200
    assert "Cedar Street Bakery" in page.text
    assert "No reports yet" in page.text
    assert "Agent Performance" not in page.text  # brokerage templates are the broker's
    form = {
        "csrf_token": csrf,
        "template": "investor_pitch",
        "format": "pptx",
        "subject": str(company.id),
        "sections": ["summary", "valuation"],
    }
    bad = client.post("/reports", data={**form, "sections": ["summary", "gossip"]})
    assert bad.status_code == 422
    assert "unknown section(s) gossip" in bad.text
    made = client.post("/reports", data=form, follow_redirects=False)
    assert made.status_code == 303
    report = db.scalar(select(Report).where(Report.requested_by == brokerage.analyst.id))
    assert report is not None
    assert (report.template, report.format, report.sections) == (
        "investor_pitch",
        "pptx",
        ["summary", "valuation"],
    )
    assert (report.company_id, report.agent_id) == (company.id, None)  # the template's subject
    listed = client.get("/reports")
    assert 'data-status="queued"' in listed.text
    assert 'hx-trigger="every 3s"' in listed.text  # refreshes itself while one is pending
    refreshed = client.get("/reports", headers={"HX-Request": "true"})
    assert 'data-status="queued"' in refreshed.text
    assert "Cedar Street Bakery" not in refreshed.text  # the history alone, not the builder


@pytest.mark.parametrize("role", [Role.agent, Role.client])
def test_builder_page_is_refused_to(client: TestClient, brokerage: Brokerage, role: Role) -> None:
    web_login(client, brokerage.by_role(role))
    assert client.get("/reports").status_code == 403


def test_the_team_review_is_the_brokers_and_the_page_offers_what_each_role_may_ask(
    client: TestClient, brokerage: Brokerage
) -> None:
    admin = bearer(client, brokerage.admin)
    refused = generate(client, admin, template="broker_quarterly_review", format="json")
    assert refused.status_code == 403  # not queued only to fail: it is the broker's own team
    agent_report = generate(
        client, admin, template="agent_performance", agent_id=brokerage.agent.id, format="json"
    )
    assert agent_report.status_code == 202
    web_login(client, brokerage.admin)
    page = client.get("/reports").text
    assert "Agent Performance" in page
    assert "Broker Quarterly Review" not in page
    assert brokerage.agent.full_name in page  # every agent of the tenant to pick from
