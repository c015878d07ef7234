"""The CRM pages (seed 003): who may open which page, empty states, the tables' filters, sorting
and pagination, the Kanban's columns, the lead page's stage buttons (every refusal reason
shown), the CSV import's preview and its block, the multi-step property form's round trip, the
property status buttons, the admin views and the agent's home widgets."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from doorstep.crm import service
from doorstep.crm.models import (
    Appointment,
    Lead,
    LeadAssignment,
    Property,
    PropertyStatus,
    Task,
    TaskStatus,
)
from doorstep.crm.schemas import AppointmentCreate, ClientCreate, LeadCreate, PropertyCreate
from doorstep.platform.auth import Role, User
from doorstep.platform.db import utcnow
from tests.conftest import Brokerage, principal_of, web_login

STAFF_PAGES = [
    "/crm/leads/board",
    "/crm/leads",
    "/crm/leads/import",
    "/crm/leads/new",
    "/crm/properties",
    "/crm/properties/new",
    "/crm/clients",
    "/crm/appointments",
    "/crm/tasks",
]
ROW = re.compile(r'data-testid="lead-row" data-lead="(\d+)"')


def sign_in(client: TestClient, user: User) -> str:
    """Sign in through the form, as a browser that asks for HTML (errors are pages then)."""
    client.cookies.clear()
    client.headers["Accept"] = "text/html"
    return web_login(client, user)


def add_lead(db: Session, owner: User, name: str, **fields: Any) -> Lead:
    lead = service.create_lead(
        db, principal=principal_of(owner), data=LeadCreate(name=name, **fields)
    )
    db.commit()
    return lead


def add_property(db: Session, agent: User, title: str, **fields: Any) -> Property:
    body: dict[str, Any] = {
        "property_type": "residential",
        "title": title,
        "address": "12 Oak Street",
        "city": "Austin",
        "state": "TX",
        "zip_code": "78701",
        "price": Decimal("450000"),
        "attributes": {"bedrooms": 3, "bathrooms": 2, "living_area_sqft": 1800},
    }
    body.update(fields)
    prop = service.create_property(
        db, principal=principal_of(agent), data=PropertyCreate.model_validate(body)
    )
    db.commit()
    return prop


def lead_ids(html: str) -> list[int]:
    return [int(i) for i in ROW.findall(html)]


# --- who may open which page ---------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.admin, Role.broker, Role.agent])
def test_staff_open_every_crm_page(client: TestClient, brokerage: Brokerage, role: Role) -> None:
    sign_in(client, brokerage.by_role(role))
    for path in STAFF_PAGES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert '<h2 class="page-title">' in response.text


@pytest.mark.parametrize("role", [Role.client, Role.analyst])
def test_clients_and_analysts_are_refused_every_crm_page(
    client: TestClient, brokerage: Brokerage, db: Session, role: Role
) -> None:
    lead = add_lead(db, brokerage.agent, "Pat Prospect")
    prop = add_property(db, brokerage.agent, "Oak Street home")
    sign_in(client, brokerage.by_role(role))
    paths = [
        *STAFF_PAGES,
        f"/crm/leads/{lead.id}",
        f"/crm/properties/{prop.id}",
        "/crm/admin/assignment",
    ]
    for path in paths:
        assert client.get(path).status_code == 403, path
    home = client.get("/")
    assert 'data-testid="crm-home"' not in home.text
    assert "/crm/leads/board" not in home.text  # no CRM navigation either


@pytest.mark.parametrize("role", [Role.broker, Role.agent])
def test_only_admins_open_the_assignment_view(
    client: TestClient, brokerage: Brokerage, role: Role
) -> None:
    sign_in(client, brokerage.by_role(role))
    assert client.get("/crm/admin/assignment").status_code == 403
    assert "/crm/admin/assignment" not in client.get("/crm/leads").text  # not in the nav
    sign_in(client, brokerage.admin)
    page = client.get("/crm/admin/assignment")
    assert page.status_code == 200
    assert 'data-testid="agent-performance"' in page.text
    assert 'href="/crm/admin/assignment"' in page.text


def test_signed_out_visitors_are_sent_to_the_login(client: TestClient) -> None:
    client.headers["Accept"] = "text/html"
    response = client.get("/crm/leads/board", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/crm/leads/board")


def test_an_agent_cannot_open_another_agents_lead(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    lead = add_lead(db, brokerage.other_agent, "Not Yours")
    sign_in(client, brokerage.agent)
    assert client.get(f"/crm/leads/{lead.id}").status_code == 404
    assert "Not Yours" not in client.get("/crm/leads/board").text
    assert "Not Yours" not in client.get("/crm/leads").text


# --- empty states --------------------------------------------------------------------------------


def test_empty_states(client: TestClient, brokerage: Brokerage) -> None:
    sign_in(client, brokerage.agent)
    for path in ("/crm/leads", "/crm/properties", "/crm/clients", "/crm/appointments"):
        assert 'data-testid="empty-state"' in client.get(path).text, path
    board = client.get("/crm/leads/board").text
    assert 'data-testid="empty-state"' in board
    assert board.count('data-testid="kanban-column"') == 7  # the columns are there, empty
    assert 'data-testid="empty-state"' in client.get("/crm/tasks").text


# --- the Kanban ----------------------------------------------------------------------------------


def test_the_board_shows_the_agents_own_leads_by_stage(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    lead = add_lead(db, brokerage.agent, "Casey Card", source="referral", budget=Decimal(525000))
    moved = add_lead(db, brokerage.agent, "Morgan Moved")
    service.transition_lead(
        db, principal=principal_of(brokerage.agent), lead_id=moved.id, to_stage="needs_analysis"
    )
    db.commit()
    add_lead(db, brokerage.other_agent, "Someone Else")
    sign_in(client, brokerage.agent)
    html = client.get("/crm/leads/board").text
    assert '<script src="/static/vendor/sortablejs/Sortable.min.js"' in html
    assert '<script src="/static/js/kanban.js"' in html
    columns = re.findall(
        r'data-testid="kanban-column" data-stage="(\w+)".*?data-testid="column-count">(\d+)<',
        html,
        re.S,
    )
    counts = dict(columns)
    assert list(counts)[:2] == ["lead", "needs_analysis"]
    assert counts["lead"] == "1"
    assert counts["needs_analysis"] == "1"
    card = html.split(f'data-lead="{lead.id}"', 1)[1].split("</article>", 1)[0]
    assert "Casey Card" in card
    assert "Referral" in card
    assert "$525,000" in card
    assert 'data-heat="' in card
    assert "0 d" in card
    assert "Someone Else" not in html


def test_admins_pick_an_agents_board(client: TestClient, brokerage: Brokerage, db: Session) -> None:
    add_lead(db, brokerage.agent, "Board Lead")
    sign_in(client, brokerage.admin)
    picker = client.get("/crm/leads/board").text
    assert 'data-testid="board-agent-picker"' in picker
    assert "Board Lead" not in picker
    board = client.get(f"/crm/leads/board?agent_id={brokerage.agent.id}").text
    assert "Board Lead" in board
    sign_in(client, brokerage.other_agent)
    # Agents see their own board whatever the query says.
    assert "Board Lead" not in client.get(f"/crm/leads/board?agent_id={brokerage.agent.id}").text


# --- the leads table -----------------------------------------------------------------------------


def test_leads_table_paginates_sorts_and_filters(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    for n in range(53):
        add_lead(
            db,
            brokerage.agent,
            f"Lead {n:02d}",
            source="referral" if n % 10 == 0 else "website",
            email=f"lead{n}@example.com",
        )
    sign_in(client, brokerage.agent)
    first = client.get("/crm/leads?sort=name").text
    assert len(lead_ids(first)) == 50
    assert "53 leads" in first
    assert 'data-testid="pagination"' in first
    assert first.index("Lead 00") < first.index("Lead 01")
    second = client.get("/crm/leads?sort=name&page=2").text
    assert len(lead_ids(second)) == 3
    assert not set(lead_ids(first)) & set(lead_ids(second))
    backwards = client.get("/crm/leads?sort=-name").text
    assert backwards.index("Lead 52") < backwards.index("Lead 51")
    # The header links toggle the direction and keep the filters.
    assert 'href="?sort=-name"' in first
    filtered = client.get("/crm/leads?source=referral&sort=name")
    assert len(lead_ids(filtered.text)) == 6
    assert "export?source=referral&amp;ordering=name" in filtered.text
    found = client.get("/crm/leads?q=lead42%40").text
    assert len(lead_ids(found)) == 1
    assert "Lead 42" in found
    assert len(lead_ids(client.get("/crm/leads?heat=hot").text)) == 0
    assert len(lead_ids(client.get("/crm/leads?stage=needs_analysis").text)) == 0
    assert client.get("/crm/leads?sort=password").status_code == 422


def test_the_csv_export_link_honours_the_filters(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    add_lead(db, brokerage.agent, "Referral Rita", source="referral")
    add_lead(db, brokerage.agent, "Web Walter", source="website")
    sign_in(client, brokerage.agent)
    page = client.get("/crm/leads?source=referral").text
    link = re.search(r'href="(/api/leads/export\?[^"]+)"', page)
    assert link
    csv = client.get(link.group(1).replace("&amp;", "&")).text
    assert "Referral Rita" in csv
    assert "Web Walter" not in csv


def test_admins_see_every_lead_filter_by_agent_and_reassign(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    mine = add_lead(db, brokerage.agent, "Agent One Lead")
    theirs = add_lead(db, brokerage.other_agent, "Agent Two Lead")
    csrf = sign_in(client, brokerage.admin)
    page = client.get("/crm/leads").text
    assert {mine.id, theirs.id} <= set(lead_ids(page))
    assert 'data-testid="reassign-form"' in page
    only = client.get(f"/crm/leads?agent_id={brokerage.other_agent.id}").text
    assert lead_ids(only) == [theirs.id]
    response = client.post(
        "/crm/leads/reassign",
        data={
            "csrf_token": csrf,
            "lead_ids": [str(mine.id)],
            "agent_id": str(brokerage.other_agent.id),
            "next": "/crm/leads",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    db.expire_all()
    assert db.get(Lead, mine.id).agent_id == brokerage.other_agent.id  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).where(LeadAssignment.lead_id == mine.id)) == 1
    sign_in(client, brokerage.agent)
    assert 'data-testid="reassign-form"' not in client.get("/crm/leads").text
    refused = client.post(
        "/crm/leads/reassign",
        data={"csrf_token": web_login(client, brokerage.agent), "lead_ids": [str(theirs.id)]},
    )
    assert refused.status_code == 403


# --- CSV import ----------------------------------------------------------------------------------

BAD_CSV = (
    "name,email,phone,source,budget\n"
    "Ada Valid,ada@example.com,+1 512 555 0100,referral,450000\n"
    "X,not-an-email,,website,lots\n"
    "Bea Valid,,,zillow paid,\n"
)


def lead_count(db: Session, owner: User) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).where(Lead.agent_id == owner.id)) or 0)


def test_the_import_preview_shows_every_rows_errors_and_blocks_the_import(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    csrf = sign_in(client, brokerage.agent)
    preview = client.post(
        "/crm/leads/import",
        data={"csrf_token": csrf},
        files={"file": ("leads.csv", BAD_CSV.encode(), "text/csv")},
    )
    assert preview.status_code == 200, preview.text
    html = preview.text
    assert html.count('data-testid="import-row"') == 3
    bad = html.split('data-line="3"', 1)[1].split("</tr>", 1)[0]
    assert bad.startswith(' class="table-danger"')
    assert "budget: &#39;lots&#39; is not a number" in bad
    assert "name:" in bad
    assert "email:" in bad
    assert re.search(r'<button[^>]*disabled data-testid="import-all"', html)
    assert 'data-testid="import-valid"' in html
    assert "2 valid" in html
    assert lead_count(db, brokerage.agent) == 0

    text = re.search(r'<textarea name="csv_text" hidden>(.*?)</textarea>', html, re.S)
    assert text
    csv_text = text.group(1).replace("&#39;", "'")
    blocked = client.post(
        "/crm/leads/import/confirm", data={"csrf_token": csrf, "csv_text": csv_text}
    )
    assert blocked.status_code == 422
    assert "1 row(s) have errors" in blocked.text
    assert lead_count(db, brokerage.agent) == 0

    done = client.post(
        "/crm/leads/import/confirm",
        data={"csrf_token": csrf, "csv_text": csv_text, "only_valid": "true"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert lead_count(db, brokerage.agent) == 2


def test_a_clean_import_goes_through_and_a_bad_header_is_explained(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    csrf = sign_in(client, brokerage.agent)
    good = "name,email\nCleo Clean,cleo@example.com\n"
    preview = client.post(
        "/crm/leads/import",
        data={"csrf_token": csrf},
        files={"file": ("leads.csv", good.encode(), "text/csv")},
    ).text
    assert not re.search(r'disabled data-testid="import-all"', preview)
    assert 'data-testid="import-valid"' not in preview
    done = client.post(
        "/crm/leads/import/confirm",
        data={"csrf_token": csrf, "csv_text": good},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert lead_count(db, brokerage.agent) == 1
    header = client.post(
        "/crm/leads/import",
        data={"csrf_token": csrf},
        files={"file": ("leads.csv", b"who,what\nA,B\n", "text/csv")},
    )
    assert header.status_code == 422
    assert 'data-testid="import-problems"' in header.text
    assert "`name` column" in header.text


# --- one lead ------------------------------------------------------------------------------------


def test_a_refused_stage_move_shows_every_reason_and_changes_nothing(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    lead = add_lead(db, brokerage.agent, "Rhea Refused", phone="+1 512 555 0199")
    csrf = sign_in(client, brokerage.agent)
    page = client.get(f"/crm/leads/{lead.id}").text
    assert 'data-testid="stage-needs_analysis"' in page
    assert 'data-testid="stage-closed_lost"' in page
    assert 'data-testid="stage-offer_sent"' not in page  # not allowed from Lead
    refused = client.post(
        f"/crm/leads/{lead.id}/stage", data={"csrf_token": csrf, "to_stage": "offer_sent"}
    )
    assert refused.status_code == 409
    errors = refused.text.split('data-testid="stage-errors"', 1)[1].split("</ul>", 1)[0]
    assert "Invalid transition from Lead to Offer Sent" in errors
    assert "Offer must be sent via WhatsApp before moving to this stage." in errors
    db.expire_all()
    assert db.get(Lead, lead.id).stage == "lead"  # type: ignore[union-attr]


def test_an_allowed_stage_move_persists_and_creates_its_tasks(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    lead = add_lead(db, brokerage.agent, "Nina Next")
    csrf = sign_in(client, brokerage.agent)
    moved = client.post(
        f"/crm/leads/{lead.id}/stage",
        data={"csrf_token": csrf, "to_stage": "needs_analysis"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    page = client.get(f"/crm/leads/{lead.id}").text
    assert 'data-testid="lead-stage">Needs Analysis<' in page
    assert 'data-stage="needs_analysis"' in page  # its tasks, listed on the lead
    db.expire_all()
    stages = db.scalars(select(Task.created_for_stage).where(Task.lead_id == lead.id)).all()
    assert "needs_analysis" in stages


def test_interactions_and_messages_are_logged_from_the_lead_page(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    lead = add_lead(db, brokerage.agent, "Mia Message", phone="+1 512 555 0142")
    no_phone = add_lead(db, brokerage.agent, "No Phone")
    csrf = sign_in(client, brokerage.agent)
    logged = client.post(
        f"/crm/leads/{lead.id}/interactions",
        data={"csrf_token": csrf, "kind": "call", "summary": "Talked about 3-bed homes"},
        follow_redirects=False,
    )
    assert logged.status_code == 303
    sent = client.post(
        f"/crm/leads/{lead.id}/messages",
        data={
            "csrf_token": csrf,
            "channel": "whatsapp",
            "message_type": "offer_sent",
            "body": "Our offer: $450,000",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    page = client.get(f"/crm/leads/{lead.id}").text
    assert "Talked about 3-bed homes" in page
    assert 'data-testid="lead-message" data-status="queued" data-type="offer_sent"' in page
    refused = client.post(
        f"/crm/leads/{no_phone.id}/messages",
        data={"csrf_token": csrf, "channel": "sms", "body": "Hello"},
    )
    assert refused.status_code == 422
    assert 'data-testid="message-errors"' in refused.text
    assert "phone" in refused.text
    bad_kind = client.post(
        f"/crm/leads/{lead.id}/interactions",
        data={"csrf_token": csrf, "kind": "stage_change"},
    )
    assert bad_kind.status_code == 422
    assert 'data-testid="interaction-errors"' in bad_kind.text


def test_the_new_lead_form_keeps_values_and_shows_field_errors(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    csrf = sign_in(client, brokerage.agent)
    refused = client.post(
        "/crm/leads/new",
        data={"csrf_token": csrf, "name": "Z", "email": "nope", "zip_code": "7870"},
    )
    assert refused.status_code == 422
    for field in ("name", "email", "zip_code"):
        assert f'data-testid="error-{field}"' in refused.text, field
    assert 'value="nope"' in refused.text
    created = client.post(
        "/crm/leads/new",
        data={"csrf_token": csrf, "name": "Zed Zimmer", "budget": "$300,000"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert lead_count(db, brokerage.agent) == 1


# --- properties ----------------------------------------------------------------------------------


def test_properties_table_filters_sorts_and_paginates(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    for n in range(27):
        add_property(
            db,
            brokerage.agent,
            f"Home {n:02d}",
            price=Decimal(300_000 + n * 10_000),
            attributes={"bedrooms": 2 + n % 3, "bathrooms": 2, "living_area_sqft": 1500},
            features=["pool"] if n % 9 == 0 else [],
            zip_code="78704" if n < 5 else "78701",
        )
    sign_in(client, brokerage.broker)  # every staff member reads the inventory
    rows = re.compile(r'data-testid="property-row"')
    first = client.get("/crm/properties?sort=price").text
    assert len(rows.findall(first)) == 25
    assert "27 properties" in first
    assert len(rows.findall(client.get("/crm/properties?sort=price&page=2").text)) == 2
    assert first.index("Home 00") < first.index("Home 01")
    cheap = client.get("/crm/properties?max_price=340000").text
    assert len(rows.findall(cheap)) == 5
    ranged = client.get("/crm/properties?min_price=400000&max_price=450000").text
    assert len(rows.findall(ranged)) == 6
    assert len(rows.findall(client.get("/crm/properties?min_bedrooms=4").text)) == 9
    assert len(rows.findall(client.get("/crm/properties?features=pool").text)) == 3
    assert len(rows.findall(client.get("/crm/properties?zip_code=78704").text)) == 5
    assert len(rows.findall(client.get("/crm/properties?city=austin").text)) == 25
    assert len(rows.findall(client.get("/crm/properties?property_type=land").text)) == 0
    assert len(rows.findall(client.get("/crm/properties?status=sold").text)) == 0
    wrong = client.get("/crm/properties?min_price=500000&max_price=1").text
    assert 'data-testid="filter-problems"' in wrong


def test_the_property_form_rerenders_every_error_and_keeps_the_values(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    csrf = sign_in(client, brokerage.agent)
    form = client.get("/crm/properties/new").text
    for step in (1, 2, 3):
        assert f'data-testid="step-{step}"' in form
    body = {
        "csrf_token": csrf,
        "property_type": "residential",
        "title": "Sunny bungalow",
        "address": "5 Elm Road",
        "city": "Austin",
        "state": "TX",
        "zip_code": "7870",
        "residential.bathrooms": "2.25",
        "residential.living_area_sqft": "1400",
        "price": "389000",
        "features": "porch, big yard",
    }
    refused = client.post("/crm/properties/new", data=body)
    assert refused.status_code == 422
    html = refused.text
    assert 'data-testid="error-zip_code"' in html
    assert 'value="Sunny bungalow"' in html
    assert 'value="porch, big yard"' in html
    assert 'data-start-step="1"' in html  # opens on the first step with an error
    # The address is fixed; now the type's own attributes are checked by the rules.
    body["zip_code"] = "78702"
    refused = client.post("/crm/properties/new", data=body)
    assert refused.status_code == 422
    html = refused.text
    assert 'data-testid="error-residential.bedrooms"' in html
    assert 'data-testid="error-residential.bathrooms"' in html  # every error at once
    assert 'data-start-step="2"' in html
    assert 'value="1400"' in html
    assert db.scalar(select(func.count()).select_from(Property)) == 0
    body.update({"residential.bedrooms": "3", "residential.bathrooms": "2.5"})
    saved = client.post("/crm/properties/new", data=body, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    prop = db.scalar(select(Property).where(Property.title == "Sunny bungalow"))
    assert prop is not None
    assert prop.bedrooms == 3
    assert prop.features == ["porch", "big yard"]


def test_land_and_commercial_listings_take_their_own_attributes(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    csrf = sign_in(client, brokerage.agent)
    common = {
        "csrf_token": csrf,
        "address": "Ranch Road 12",
        "city": "Dripping Springs",
        "state": "tx",
        "zip_code": "78620",
        "price": "$1,250,000",
    }
    land = client.post(
        "/crm/properties/new",
        data={
            **common,
            "property_type": "land",
            "title": "Hill Country acreage",
            "land.acreage": "12.5",
            "utilities": ["water", "electric"],
            "residential.bedrooms": "ignored",
        },
        follow_redirects=False,
    )
    assert land.status_code == 303, land.text
    prop = db.scalar(select(Property).where(Property.title == "Hill Country acreage"))
    assert prop is not None
    assert prop.attributes["utilities"] == ["water", "electric"]
    assert prop.attributes["road_access"] is False
    shop = client.post(
        "/crm/properties/new",
        data={**common, "property_type": "commercial", "title": "Main St retail"},
    )
    assert shop.status_code == 422
    for name in ("zoning", "units", "building_area_sqft"):
        assert f'data-testid="error-commercial.{name}"' in shop.text, name


def test_property_status_buttons_follow_the_workflow(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    prop = add_property(db, brokerage.agent, "Status home")
    csrf = sign_in(client, brokerage.agent)
    page = client.get(f"/crm/properties/{prop.id}").text
    assert 'data-testid="status-deposit_taken"' in page
    assert 'data-testid="status-withdrawn"' in page
    assert 'data-testid="status-reason-withdrawn"' in page
    assert 'data-testid="status-sold"' not in page
    refused = client.post(
        f"/crm/properties/{prop.id}/status", data={"csrf_token": csrf, "status": "withdrawn"}
    )
    assert refused.status_code == 409
    assert 'data-testid="status-errors"' in refused.text
    assert "reason is required" in refused.text
    skipped = client.post(
        f"/crm/properties/{prop.id}/status", data={"csrf_token": csrf, "status": "sold"}
    )
    assert skipped.status_code == 409
    assert "cannot go from Active to Sold" in skipped.text
    done = client.post(
        f"/crm/properties/{prop.id}/status",
        data={"csrf_token": csrf, "status": "deposit_taken"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    db.expire_all()
    assert db.get(Property, prop.id).status == PropertyStatus.deposit_taken  # type: ignore[union-attr]
    # Another agent reads the listing but has no buttons, and the server refuses them too.
    other = sign_in(client, brokerage.other_agent)
    page = client.get(f"/crm/properties/{prop.id}").text
    assert 'data-testid="status-sold"' not in page
    forbidden = client.post(
        f"/crm/properties/{prop.id}/status", data={"csrf_token": other, "status": "sold"}
    )
    assert forbidden.status_code == 403


# --- tasks, clients, appointments ----------------------------------------------------------------


def test_tasks_are_grouped_and_marked_done(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    lead = add_lead(db, brokerage.agent, "Tess Task")  # Lead stage: a call in 1 h, e-mail in 24 h
    late = Task(
        tenant_id=lead.tenant_id,
        assignee_id=brokerage.agent.id,
        lead_id=lead.id,
        kind="call",
        title="Late call",
        due_at=utcnow() - timedelta(days=2),
        status=TaskStatus.overdue,
    )
    db.add(late)
    db.commit()
    csrf = sign_in(client, brokerage.agent)
    page = client.get("/crm/tasks").text
    overdue = page.split('data-testid="tasks-overdue"', 1)[1].split('data-testid="tasks-today"')[0]
    assert "Late call" in overdue
    assert "First call to Tess Task" in page
    assert "Tess Task" in page
    done = client.post(
        f"/crm/tasks/{late.id}/done", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert done.status_code == 303
    db.expire_all()
    assert db.get(Task, late.id).status == TaskStatus.done  # type: ignore[union-attr]
    assert f'data-task="{late.id}"' not in client.get("/crm/tasks").text
    sign_in(client, brokerage.other_agent)
    assert "Tess Task" not in client.get("/crm/tasks").text


def test_clients_table_filters_and_sorts(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    agent = principal_of(brokerage.agent)
    for name, status in (("Ann Active", "active"), ("Ian Inactive", "inactive")):
        service.create_client(db, principal=agent, data=ClientCreate(name=name, status=status))
    db.commit()
    sign_in(client, brokerage.agent)
    everyone = client.get("/crm/clients").text
    assert everyone.index("Ann Active") < everyone.index("Ian Inactive")
    backwards = client.get("/crm/clients?sort=-name").text
    assert backwards.index("Ian Inactive") < backwards.index("Ann Active")
    active = client.get("/crm/clients?status=active").text
    assert "Ann Active" in active
    assert "Ian Inactive" not in active
    assert "Ann Active" not in client.get("/crm/clients?q=ian").text
    sign_in(client, brokerage.broker)  # a broker reads their agents' clients (level 1)
    assert "Ann Active" in client.get("/crm/clients").text


def test_appointments_are_listed_by_day_with_outcome_buttons_for_past_ones(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    agent = principal_of(brokerage.agent)
    now = utcnow()
    past = service.create_appointment(
        db,
        principal=agent,
        data=AppointmentCreate(
            title="Viewing yesterday",
            start_time=now - timedelta(days=1),
            end_time=now - timedelta(days=1) + timedelta(hours=1),
        ),
    )
    service.create_appointment(
        db,
        principal=agent,
        data=AppointmentCreate(
            title="Viewing next week",
            start_time=now + timedelta(days=6),
            end_time=now + timedelta(days=6, hours=1),
        ),
    )
    service.create_appointment(
        db,
        principal=agent,
        data=AppointmentCreate(
            title="Viewing in two months",
            start_time=now + timedelta(days=60),
            end_time=now + timedelta(days=60, hours=1),
        ),
    )
    db.commit()
    csrf = sign_in(client, brokerage.agent)
    page = client.get("/crm/appointments").text
    assert page.count('data-testid="calendar-day"') == 2
    assert "Viewing next week" in page
    assert "Viewing in two months" not in page
    yesterday = page.split("Viewing yesterday", 1)[1].split('data-testid="appointment"')[0]
    assert 'data-testid="outcome-no_show"' in yesterday
    upcoming = page.split("Viewing next week", 1)[1]
    assert 'data-testid="outcome-no_show"' not in upcoming  # no outcome before it happens
    recorded = client.post(
        f"/crm/appointments/{past.id}/outcome",
        data={"csrf_token": csrf, "status": "no_show"},
        follow_redirects=False,
    )
    assert recorded.status_code == 303
    db.expire_all()
    assert db.get(Appointment, past.id).status == "no_show"  # type: ignore[union-attr]
    assert "Viewing next week" in client.get("/crm/appointments?days=60").text.split("months")[0]


# --- the agent's home and the admin views --------------------------------------------------------


@pytest.mark.parametrize("role", [Role.agent, Role.broker])
def test_the_home_of_agents_and_brokers_shows_the_crm_widgets(
    client: TestClient, brokerage: Brokerage, db: Session, role: Role
) -> None:
    owner = brokerage.by_role(role)
    lead = add_lead(db, owner, "Hank Home")
    # The first call is due within the hour, which is tomorrow on the brokerage's calendar in
    # its last hour of the day: pin it to now, which is always today there.
    db.execute(update(Task).where(Task.lead_id == lead.id).values(due_at=utcnow()))
    db.commit()
    sign_in(client, owner)
    home = client.get("/").text
    for testid in ("crm-home", "crm-tasks-today", "crm-next-appointments", "crm-hot-leads"):
        assert f'data-testid="{testid}"' in home, testid
    assert 'data-testid="stage-count-lead">1<' in home
    assert "First call to Hank Home" in home
    assert "Hank Home" in home.split('data-testid="crm-hot-leads"', 1)[1]


def test_admin_assignment_view_shows_the_log_performance_and_settings(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    admin = principal_of(brokerage.admin)
    lead = service.create_lead(db, principal=admin, data=LeadCreate(name="Routed Rosa"))
    db.commit()
    csrf = sign_in(client, brokerage.admin)
    page = client.get("/crm/admin/assignment").text
    row = page.split('data-testid="assignment-row"', 1)[1].split("</tr>", 1)[0]
    assert "Routed Rosa" in row
    assert "lowest workload score" in row
    assert brokerage.agent.full_name in row
    assert brokerage.other_agent.full_name in row
    assert page.count('data-testid="performance-row"') >= 2
    assert 'data-testid="assignment-chain"' in page
    assert "Workload" in page
    assert lead.agent_id is not None

    paused = client.post(
        f"/crm/admin/agents/{brokerage.agent.id}/pause",
        data={"csrf_token": csrf, "paused": "true"},
        follow_redirects=False,
    )
    assert paused.status_code == 303
    page = client.get("/crm/admin/assignment").text
    agent_row = page.split(f'data-agent="{brokerage.agent.id}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-testid="paused"' in agent_row
    assert 'data-testid="resume"' in agent_row

    bad = client.post(
        "/crm/admin/assignment/settings",
        data={"csrf_token": csrf, "config": '{"chain": ["workload", "workload"]}'},
    )
    assert bad.status_code == 422
    assert 'data-testid="settings-errors"' in bad.text
    assert "each strategy may appear once" in bad.text
    good = client.post(
        "/crm/admin/assignment/settings",
        data={"csrf_token": csrf, "config": '{"chain": ["round_robin", "workload"]}'},
        follow_redirects=False,
    )
    assert good.status_code == 303
    config, _ = service.assignment_config(db, brokerage.tenant.id)
    assert [str(s) for s in config.chain] == ["round_robin", "workload"]


def test_forms_without_the_csrf_token_are_refused(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    lead = add_lead(db, brokerage.agent, "Csrf Carl")
    sign_in(client, brokerage.agent)
    response = client.post(f"/crm/leads/{lead.id}/stage", data={"to_stage": "needs_analysis"})
    assert response.status_code == 403
    db.expire_all()
    assert db.get(Lead, lead.id).stage == "lead"  # type: ignore[union-attr]
