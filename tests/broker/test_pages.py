"""The broker dashboard pages (seed 004): who may open them, what they show (cards, feed, My
Pipeline, leaderboard, report, settings), refused periods shown on the page, and that no lead's
or agent appointment's detail ever reaches the broker's HTML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from doorstep.broker import service
from doorstep.broker.models import AgentKpi
from doorstep.crm.models import Appointment, Client, Lead, Property
from doorstep.platform.auth import Role, User
from doorstep.platform.db import utcnow
from doorstep.transactions.models import Transaction
from tests.conftest import Brokerage, Factory, csrf_from, web_login

DASHBOARD = "/broker-dashboard"
CARD = re.compile(r'data-testid="agent-card" data-agent="(\d+)"')


def sign_in(client: TestClient, user: User) -> str:
    client.cookies.clear()
    client.headers["Accept"] = "text/html"
    return web_login(client, user)


@dataclass
class Secrets:
    """What must never reach a broker's page: agents' leads and appointments, and the broker's
    own leads beyond their counts."""

    agent_leads: list[Lead]
    broker_leads: list[Lead]
    agent_appointment: Appointment
    broker_appointment: Appointment
    escrow: Transaction
    client: Client
    listing: Property

    def forbidden(self) -> list[str]:
        words: list[str] = []
        for lead in [*self.agent_leads, *self.broker_leads]:
            words += [lead.name, lead.email or "", lead.phone or ""]
        words += [self.agent_appointment.title, self.agent_appointment.location]
        return [w for w in words if w]


def _lead(db: Session, owner: User, name: str, n: int, **fields: object) -> Lead:
    lead = Lead(
        tenant_id=owner.tenant_id,
        agent_id=owner.id,
        name=name,
        email=f"{name.split(maxsplit=1)[0].lower()}.{n}@private-lead.test",
        phone=f"+1661555{n:04d}",
        **fields,
    )
    db.add(lead)
    return lead


@pytest.fixture
def secrets(db: Session, brokerage: Brokerage) -> Secrets:
    now = utcnow()
    today = now.astimezone(brokerage.tenant.zone).date()  # the brokerage's calendar, not UTC's
    agent, broker = brokerage.agent, brokerage.broker
    tenant_id = brokerage.tenant.id
    agent_leads = [
        _lead(db, agent, "Zebulon Quartermaine", 1, stage="closed_won"),
        _lead(db, agent, "Ottoline Featherstonehaugh", 2, is_private=True),
        _lead(db, brokerage.other_agent, "Peregrine Applethwaite", 3),
    ]
    broker_leads = [
        _lead(db, broker, "Cordelia Vantablack", 4, is_private=True, source="zillow_paid"),
        _lead(db, broker, "Bartholomew Inkwhistle", 5, is_private=True, source="zillow_paid"),
        _lead(db, broker, "Millicent Oakenshield", 6, is_private=True, source="referral"),
    ]
    agent_visit = Appointment(
        tenant_id=tenant_id,
        agent_id=agent.id,
        title="Viewing with Zebulon at the hidden cottage",
        location="77 Concealed Lane",
        start_time=now - timedelta(days=2),
        end_time=now - timedelta(days=2) + timedelta(hours=1),
        status="completed",
    )
    broker_visit = Appointment(
        tenant_id=tenant_id,
        agent_id=broker.id,
        title="Buyer consultation (broker's own)",
        location="Office",
        start_time=now,
        end_time=now + timedelta(hours=1),
    )
    escrow = Transaction(
        tenant_id=tenant_id,
        transaction_id="T-PAGES-1",
        agent_id=agent.id,
        property_address="123 Main St",
        property_city="Bakersfield",
        buyer_name="Buyer Person",
        purchase_price=Decimal("450000"),
        my_commission=Decimal("13500"),
        loan_type="conventional",
        contract_date=today,
        target_closing_date=today + timedelta(days=40),
    )
    client = Client(tenant_id=tenant_id, agent_id=brokerage.other_agent.id, name="Sarah Johnson")
    listing = Property(
        tenant_id=tenant_id,
        listing_agent_id=agent.id,
        property_type="residential",
        title="Sunny ranch",
        address="456 Oak Ave",
        city="Tehachapi",
        state="CA",
        zip_code="93561",
        price=Decimal("575000"),
    )
    db.add_all([agent_visit, broker_visit, escrow, client, listing])
    db.commit()
    return Secrets(agent_leads, broker_leads, agent_visit, broker_visit, escrow, client, listing)


# --- who may open what ---------------------------------------------------------------------------


def _pages(brokerage: Brokerage) -> list[str]:
    return [
        DASHBOARD,
        f"{DASHBOARD}/activity",
        f"{DASHBOARD}/agents/{brokerage.agent.id}",
        f"{DASHBOARD}/settings",
    ]


@pytest.mark.parametrize("role", [Role.agent, Role.client, Role.analyst])
def test_other_roles_are_refused(client: TestClient, brokerage: Brokerage, role: Role) -> None:
    sign_in(client, brokerage.by_role(role))
    for url in _pages(brokerage):
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)


def test_signed_out_visitors_go_to_the_login(client: TestClient, brokerage: Brokerage) -> None:
    client.headers["Accept"] = "text/html"
    response = client.get(DASHBOARD, follow_redirects=False)
    assert response.status_code in (302, 303, 401)


def test_the_nav_has_the_dashboard_for_brokers_and_admins(
    client: TestClient, brokerage: Brokerage
) -> None:
    for role, shown in ((Role.broker, True), (Role.admin, True), (Role.agent, False)):
        sign_in(client, brokerage.by_role(role))
        assert ('href="/broker-dashboard"' in client.get("/").text) is shown, role


def test_the_broker_sees_the_dashboard(
    client: TestClient, brokerage: Brokerage, secrets: Secrets
) -> None:
    sign_in(client, brokerage.broker)
    response = client.get(DASHBOARD)
    assert response.status_code == 200, response.text
    html = response.text
    cards = [int(i) for i in CARD.findall(html)]
    assert sorted(cards) == sorted([brokerage.agent.id, brokerage.other_agent.id])
    # The seed's card: leads pipeline, appointment activity, production YTD, last activity.
    assert "Leads Pipeline" in html
    assert "Appointment Activity" in html
    assert "Production (YTD)" in html
    assert "Last Activity:" in html
    assert "100.0% (1/1)" in html  # conversion "x% (converted/total)" of the agent
    assert "1 ($450K volume)" in html  # the agent's YTD escrows with volume
    assert f'href="/broker-dashboard/agents/{brokerage.agent.id}"' in html
    assert f"mailto:{brokerage.agent.email}" in html
    # Overview, leaderboard and the team's feed (level 1: full details).
    assert html.count('data-testid="overview-tile"') == 4
    assert "$450,000" in html
    leaderboard = html.split('data-testid="leaderboard"')[1].split("</div>\n  </div>")[0]
    assert brokerage.agent.full_name in leaderboard
    assert "123 Main St, Bakersfield" in html
    assert "($450K)" in html
    assert "Sarah Johnson" in html
    assert "456 Oak Ave" in html
    assert 'data-live-refresh="notification.created"' in html
    assert f'data-live-channels="user:{brokerage.broker.id}"' in html
    # My Pipeline: the broker's own leads as counts by source, his own appointment in full.
    assert re.search(r'data-source="zillow_paid"><strong>2</strong>', html)
    assert re.search(r'data-source="referral"><strong>1</strong>', html)
    assert 'data-testid="my-leads-total">3<' in html
    assert "Buyer consultation (broker&#39;s own)" in html


def test_no_lead_or_agent_appointment_detail_reaches_the_broker(
    client: TestClient, brokerage: Brokerage, secrets: Secrets
) -> None:
    sign_in(client, brokerage.broker)
    urls = [
        *(f"{DASHBOARD}?period={p}&sort={s}" for p in ("7d", "ytd") for s in service.SORTS),
        f"{DASHBOARD}?q=a",
        f"{DASHBOARD}/activity",
        f"{DASHBOARD}/agents/{brokerage.agent.id}",
        f"{DASHBOARD}/agents/{brokerage.other_agent.id}?period=90d",
    ]
    for url in urls:
        html = client.get(url).text
        for word in secrets.forbidden():
            assert word not in html, (url, word)


def test_an_admin_picks_a_broker_and_sees_no_private_detail(
    client: TestClient, brokerage: Brokerage, secrets: Secrets
) -> None:
    sign_in(client, brokerage.admin)
    picker = client.get(DASHBOARD)
    assert picker.status_code == 200
    assert f'href="/broker-dashboard?brokerId={brokerage.broker.id}"' in picker.text
    page = client.get(f"{DASHBOARD}?brokerId={brokerage.broker.id}")
    assert page.status_code == 200, page.text
    assert len(CARD.findall(page.text)) == 2
    assert "Private to the broker" in page.text  # My Pipeline stays the broker's
    for word in secrets.forbidden():
        assert word not in page.text, word
    report = client.get(f"{DASHBOARD}/agents/{brokerage.agent.id}")
    assert report.status_code == 200
    assert f'href="/broker-dashboard?brokerId={brokerage.broker.id}"' in report.text
    feed = client.get(f"{DASHBOARD}/activity?brokerId={brokerage.broker.id}")
    assert feed.status_code == 200
    assert "123 Main St" in feed.text


def test_another_tenants_agent_or_broker_is_not_found(
    client: TestClient, brokerage: Brokerage, rival: Brokerage
) -> None:
    sign_in(client, brokerage.broker)
    assert client.get(f"{DASHBOARD}/agents/{rival.agent.id}").status_code == 404
    assert client.get(f"{DASHBOARD}/agents/{brokerage.client.id}").status_code == 404
    assert client.get(f"{DASHBOARD}?brokerId={rival.broker.id}").status_code == 404
    sign_in(client, brokerage.admin)
    assert client.get(f"{DASHBOARD}?brokerId={rival.broker.id}").status_code == 404
    assert client.get(f"{DASHBOARD}?brokerId={brokerage.agent.id}").status_code == 404
    assert client.get(f"{DASHBOARD}/agents/{rival.agent.id}").status_code == 404


def test_an_agent_of_another_broker_is_not_found(
    client: TestClient, brokerage: Brokerage, factory: Factory, db: Session
) -> None:
    other_broker = factory.user(brokerage.tenant, Role.broker)
    theirs = factory.user(brokerage.tenant, Role.agent, broker=other_broker)
    db.commit()
    sign_in(client, brokerage.broker)
    assert client.get(f"{DASHBOARD}/agents/{theirs.id}").status_code == 404
    assert str(theirs.id) not in CARD.findall(client.get(DASHBOARD).text)


# --- periods, sorting, search ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("period=12d", "period must be one of 7d, 30d, 90d, ytd"),
        ("period=custom&startDate=2025-05-10&endDate=2025-05-01", "is before startDate"),
        ("startDate=2025-13-01&endDate=2025-12-31", "Start date must be a date"),
        ("period=custom&startDate=2025-01-01", "needs both a start and an end date"),
        ("startDate=2019-01-01&endDate=2025-01-01", "at most three years"),
        ("startDate=2999-01-01&endDate=2999-01-02", "is in the future"),
    ],
)
def test_a_refused_period_is_shown_on_the_page(
    client: TestClient, brokerage: Brokerage, query: str, reason: str
) -> None:
    sign_in(client, brokerage.broker)
    for url in (f"{DASHBOARD}?{query}", f"{DASHBOARD}/agents/{brokerage.agent.id}?{query}"):
        response = client.get(url)
        assert response.status_code == 422, url
        assert 'data-testid="period-error"' in response.text
        assert reason in response.text.replace("&#39;", "'"), (url, reason)
        assert 'data-testid="period-form"' in response.text  # the page is still there


def test_custom_dates_and_periods(client: TestClient, brokerage: Brokerage) -> None:
    sign_in(client, brokerage.broker)
    today = utcnow().astimezone(brokerage.tenant.zone).date()
    start = today - timedelta(days=9)
    page = client.get(f"{DASHBOARD}?startDate={start}&endDate={today}")
    assert page.status_code == 200
    assert f"{start} to {today}" in page.text
    for period, label in (("7d", "Last 7 days"), ("ytd", "Year to date")):
        assert label in client.get(f"{DASHBOARD}?period={period}").text


def test_search_and_sort_the_agents(
    client: TestClient, brokerage: Brokerage, secrets: Secrets, db: Session
) -> None:
    brokerage.agent.full_name = "Aaron Alpha"
    brokerage.other_agent.full_name = "Zoe Zulu"
    db.commit()
    sign_in(client, brokerage.broker)
    by_name = CARD.findall(client.get(f"{DASHBOARD}?sort=name").text)
    assert by_name == [str(brokerage.agent.id), str(brokerage.other_agent.id)]
    by_volume = CARD.findall(client.get(f"{DASHBOARD}?sort=volume").text)
    assert by_volume[0] == str(brokerage.agent.id)  # the one with the escrow
    found = client.get(f"{DASHBOARD}?q=zulu")
    assert CARD.findall(found.text) == [str(brokerage.other_agent.id)]
    assert "1 of 2 agents" in found.text
    none = client.get(f"{DASHBOARD}?q=nobody-like-this")
    assert CARD.findall(none.text) == []
    assert 'data-testid="empty-state"' in none.text
    bad = client.get(f"{DASHBOARD}?sort=height")
    assert bad.status_code == 422
    assert "Sort must be one of" in bad.text


def test_an_empty_team_shows_empty_states(
    client: TestClient, factory: Factory, db: Session
) -> None:
    tenant = factory.tenant()
    broker = factory.user(tenant, Role.broker)
    db.commit()
    sign_in(client, broker)
    html = client.get(DASHBOARD).text
    assert "No agents on this team yet" in html
    assert "No team activity yet" in html
    assert "No production in this period" in html


# --- the agent report ------------------------------------------------------------------------


def test_the_agent_report(client: TestClient, brokerage: Brokerage, secrets: Secrets) -> None:
    sign_in(client, brokerage.broker)
    agent = brokerage.agent
    response = client.get(f"{DASHBOARD}/agents/{agent.id}")
    assert response.status_code == 200, response.text
    html = response.text
    today = utcnow().astimezone(brokerage.tenant.zone).date()
    assert "Year to date" in html
    assert html.count('data-testid="month-row"') == today.month
    for chart in ("chart-volume", "chart-escrows", "chart-leads", "chart-appointments"):
        assert f'data-testid="{chart}"' in html
    start = today.replace(month=1, day=1)
    csv_url = (
        f"/api/broker/agents/{agent.id}/report?format=csv&amp;startDate={start}&amp;endDate={today}"
    )
    assert csv_url in html
    exported = client.get(csv_url.replace("&amp;", "&"))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    custom = client.get(f"{DASHBOARD}/agents/{agent.id}?period=30d")
    assert custom.status_code == 200
    assert "Last 30 days" in custom.text


# --- notification settings -------------------------------------------------------------------


def test_the_broker_changes_notification_settings(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    sign_in(client, brokerage.broker)
    form = client.get(f"{DASHBOARD}/settings")
    assert form.status_code == 200
    assert 'data-testid="setting-notify_escrow_created" checked' in form.text
    saved = client.post(
        f"{DASHBOARD}/settings",
        data={
            "csrf_token": csrf_from(form.text),
            "notify_escrow_created": "true",
            "in_app_notifications": "true",
            "min_escrow_value": "$250,000",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    db.expire_all()
    row = service.settings_of(db, broker=brokerage.broker)
    assert row.notify_escrow_created
    assert row.in_app_notifications
    assert not row.notify_client_created
    assert not row.email_notifications
    assert row.min_escrow_value == Decimal("250000")
    again = client.get(f"{DASHBOARD}/settings").text
    assert 'value="250000"' in again
    assert 'data-testid="setting-notify_client_created" checked' not in again


@pytest.mark.parametrize("value", ["lots", "-5", "1e99", "NaN"])
def test_a_refused_threshold_is_shown_and_nothing_changes(
    client: TestClient, brokerage: Brokerage, db: Session, value: str
) -> None:
    sign_in(client, brokerage.broker)
    form = client.get(f"{DASHBOARD}/settings")
    refused = client.post(
        f"{DASHBOARD}/settings",
        data={"csrf_token": csrf_from(form.text), "min_escrow_value": value},
    )
    assert refused.status_code == 422
    assert 'data-testid="settings-error"' in refused.text
    assert "Minimum escrow value" in refused.text
    db.expire_all()
    row = service.settings_of(db, broker=brokerage.broker)
    assert row.min_escrow_value is None
    assert row.notify_client_created


def test_settings_need_the_csrf_token(client: TestClient, brokerage: Brokerage) -> None:
    sign_in(client, brokerage.broker)
    refused = client.post(f"{DASHBOARD}/settings", data={"min_escrow_value": "1"})
    assert refused.status_code == 403


def test_an_admin_has_no_broker_settings(client: TestClient, brokerage: Brokerage) -> None:
    sign_in(client, brokerage.admin)
    assert client.get(f"{DASHBOARD}/settings").status_code == 403


def test_the_report_uses_a_stored_snapshot_when_there_is_one(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    today = utcnow().astimezone(brokerage.tenant.zone).date()
    first, last = service.month_bounds(today.replace(day=1) - timedelta(days=1))
    db.add(
        AgentKpi(
            tenant_id=brokerage.tenant.id,
            user_id=brokerage.agent.id,
            broker_id=brokerage.broker.id,
            period_start=first,
            period_end=last,
            total_escrows=7,
            total_volume=Decimal("3210987"),
            total_commission=Decimal("0"),
        )
    )
    db.commit()
    sign_in(client, brokerage.broker)
    html = client.get(
        f"{DASHBOARD}/agents/{brokerage.agent.id}?startDate={first}&endDate={today}"
    ).text
    assert html.count('data-testid="month-row"') == 2
    assert "$3,210,987" in html
    assert "1 of 2 months from the monthly snapshots" in html
    assert "From the monthly snapshot" in html
