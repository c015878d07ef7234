"""Seed 004's three visibility levels, enforced in the query layer: a matrix of role x resource x
action (list, get, search, export, events), and a property-based check that nothing a broker
receives ever names a private lead."""

from __future__ import annotations

import string
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.crm.models import Appointment, Lead
from doorstep.platform import realtime
from doorstep.platform.auth import Role, User
from doorstep.platform.db import utcnow
from doorstep.platform.errors import DoorstepError
from doorstep.platform.events import Event, audience_allows
from tests.conftest import Brokerage, Factory, bearer, principal_of
from tests.crm.conftest import HOME
from tests.transactions.conftest import deal_body

WHO = ("admin", "broker", "agent", "other_agent", "client", "analyst")


def create(client: TestClient, user: User, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(url, json=body, headers=bearer(client, user))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def world(client: TestClient, brokerage: Brokerage) -> dict[str, Any]:
    """One of each resource, with a distinctive name to search and to look for."""
    start = (utcnow() + timedelta(days=2)).isoformat()
    end = (utcnow() + timedelta(days=2, hours=1)).isoformat()
    agent_lead = create(
        client,
        brokerage.agent,
        "/api/leads/",
        {"name": "Zephyrine Agentlead", "phone": "+15550001111"},
    )
    broker_lead = create(client, brokerage.broker, "/api/leads/", {"name": "Quillon Brokerlead"})
    visit = {"title": "Viewing Marigold Court", "start_time": start, "end_time": end}
    return {
        "agent_lead": ("lead", agent_lead["id"], "Zephyrine"),
        "broker_lead": ("lead", broker_lead["id"], "Quillon"),
        "agent_appointment": (
            "appointment",
            create(client, brokerage.agent, "/api/appointments/", visit)["id"],
            "Marigold",
        ),
        "broker_appointment": (
            "appointment",
            create(
                client,
                brokerage.broker,
                "/api/appointments/",
                {**visit, "title": "Coffee Tamarisk Lane"},
            )["id"],
            "Tamarisk",
        ),
        "agent_escrow": (
            "escrow",
            create(
                client,
                brokerage.agent,
                "/api/v1/transactions/",
                deal_body(brokerage, property_address="77 Wisteria Way"),
            )["id"],
            "Wisteria",
        ),
        "agent_client": (
            "client",
            create(client, brokerage.agent, "/api/clients/", {"name": "Orlaith Clientname"})["id"],
            "Orlaith",
        ),
        "agent_listing": (
            "listing",
            create(
                client, brokerage.agent, "/api/properties/", {**HOME, "title": "Juniper Ridge home"}
            )["id"],
            "Juniper",
        ),
    }


URLS: dict[str, dict[str, str | None]] = {
    "lead": {
        "list": "/api/leads/?page_size=200",
        "get": "/api/leads/{id}",
        "search": "/api/leads/?search={word}",
        "export": "/api/leads/export",
    },
    "appointment": {
        "list": "/api/appointments/?page_size=200",
        "get": "/api/appointments/{id}",
        "search": None,
        "export": None,
    },
    "escrow": {
        "list": "/api/v1/transactions/?per_page=200",
        "get": "/api/v1/transactions/{id}",
        "search": "/api/v1/transactions/?q={word}",
        "export": None,
    },
    "client": {
        "list": "/api/clients/?page_size=200",
        "get": "/api/clients/{id}",
        "search": "/api/clients/?search={word}",
        "export": None,
    },
    "listing": {
        "list": "/api/properties/?page_size=200",
        "get": "/api/properties/{id}",
        "search": "/api/properties/?search={word}",
        "export": None,
    },
}

# Who sees each resource in full (True) or not at all (False). Level 1: the broker sees the
# team's escrows, clients and listings. Level 2: not the agents' leads or appointments (counts
# only, through the KPIs). Level 3: the broker's own pipeline is the broker's.
SEES: dict[str, set[str]] = {
    "agent_lead": {"admin", "agent"},
    "broker_lead": {"admin", "broker"},
    "agent_appointment": {"admin", "agent"},
    "broker_appointment": {"admin", "broker"},
    "agent_escrow": {"admin", "broker", "agent", "client"},  # the client is the deal's buyer
    "agent_client": {"admin", "broker", "agent"},
    "agent_listing": {"admin", "broker", "agent", "other_agent"},  # shared inventory
}


def who(brokerage: Brokerage, name: str) -> User:
    return brokerage.other_agent if name == "other_agent" else brokerage.by_role(Role(name))


def events_text(db: Session, user: User) -> str:
    """Everything in the outbox this user could receive over a WebSocket."""
    principal = principal_of(user)
    texts = []
    for event in db.scalars(select(Event).where(Event.tenant_id == user.tenant_id)):
        if not audience_allows(event.audience, principal):
            continue
        try:
            realtime.authorize_channels(db, principal, list(event.channels))
        except DoorstepError:
            continue
        texts.append(str(event.data))
    return " ".join(texts)


@pytest.mark.parametrize("resource", list(SEES))
def test_visibility_matrix(
    client: TestClient, db: Session, brokerage: Brokerage, world: dict[str, Any], resource: str
) -> None:
    kind, ident, word = world[resource]
    for name in WHO:
        user = who(brokerage, name)
        headers = bearer(client, user)
        allowed = name in SEES[resource]
        for action, template in URLS[kind].items():
            if template is None:
                continue
            url = template.format(id=ident, word=word)
            response = client.get(url, headers=headers)
            if action == "get":
                assert response.status_code == (200 if allowed else 404), (resource, name)
                continue
            assert response.status_code in (200, 403), (resource, name, action)
            shown = response.status_code == 200 and word in response.text
            assert shown is allowed, (resource, name, action)
        received = word in events_text(db, user)
        assert not received or allowed, (resource, name, "events")


def test_the_broker_sees_agents_pipelines_as_numbers(
    client: TestClient, brokerage: Brokerage, world: dict[str, Any]
) -> None:
    kpis = client.get(
        "/api/broker/agents/kpis",
        params={"period": "ytd"},
        headers=bearer(client, brokerage.broker),
    )
    assert kpis.status_code == 200
    mine = next(a for a in kpis.json()["agents"] if a["agent_id"] == brokerage.agent.id)
    assert mine["total_leads"] == 1
    assert "Zephyrine" not in kpis.text
    assert "Marigold" not in kpis.text
    assert "Quillon" not in kpis.text  # the broker's own lead is not an agent's figure


# --- property-based: random brokerages, nothing private in what the broker receives -------------

TOKEN = st.text(alphabet=string.ascii_letters, min_size=10, max_size=14).map(lambda s: "Zx" + s)
# The broker's own leads (which the broker may see) in lower case: never containing an agent's
# "Zx..." name by chance.
OWN = st.lists(
    st.tuples(st.text(alphabet=string.ascii_lowercase, min_size=10, max_size=14), st.booleans()),
    max_size=4,
)
LEADS = st.lists(
    st.tuples(TOKEN, st.booleans(), st.integers(min_value=1_000_000, max_value=9_999_999)),
    max_size=4,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(team=st.lists(LEADS, min_size=1, max_size=3), own=OWN)
def test_no_broker_response_names_a_private_lead(
    client: TestClient,
    db: Session,
    factory: Factory,
    team: list[list[tuple[str, bool, int]]],
    own: list[tuple[str, bool]],
) -> None:
    tenant = factory.tenant()
    broker = factory.user(tenant, Role.broker)
    secrets: list[str] = []
    agents = []
    for leads in team:
        agent = factory.user(tenant, Role.agent, broker=broker)
        agents.append(agent)
        for name, private, digits in leads:
            db.add(
                Lead(
                    tenant_id=tenant.id,
                    agent_id=agent.id,
                    name=name,
                    email=f"{name.lower()}@example.com",
                    phone=f"+1555{digits}",
                    is_private=private,
                )
            )
            start = utcnow() - timedelta(days=1)
            db.add(
                Appointment(
                    tenant_id=tenant.id,
                    agent_id=agent.id,
                    title=f"Meet {name}",
                    location=f"{name} Street",
                    start_time=start,
                    end_time=start + timedelta(hours=1),
                    status="completed",
                )
            )
            secrets += [name, f"{name.lower()}@example.com", f"+1555{digits}"]
    for name, private in own:
        db.add(Lead(tenant_id=tenant.id, agent_id=broker.id, name=name, is_private=private))
    db.commit()

    headers = bearer(client, broker)
    urls = [
        "/api/broker/agents/kpis?period=ytd",
        "/api/broker/agents/kpis?period=7d&sort=leads",
        "/api/broker/notifications",
        "/api/leads/?page_size=200",
        "/api/leads/export",
        "/api/appointments/?page_size=200",
        "/api/clients/?page_size=200",
        *(f"/api/broker/agents/{a.id}/report?period=ytd" for a in agents),
        *(f"/api/broker/agents/{a.id}/report?period=ytd&format=csv" for a in agents),
        *(f"/api/leads/?search={secret[:6]}" for secret in secrets[:3]),
    ]
    for url in urls:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text)
        leaked = [secret for secret in secrets if secret in response.text]
        assert leaked == [], url
