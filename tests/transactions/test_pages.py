"""The transactions pages: the buyer's portal and the agent pages, per role; the milestone form
(success, the rules' refusal with its reason, bad input, CSRF); filters and pagination."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.platform.auth import Role, User
from doorstep.platform.db import utcnow
from doorstep.transactions import pages
from doorstep.transactions.models import Milestone, TransactionEvent
from tests.conftest import Brokerage, Factory, bearer, web_login

API = "/api/v1/transactions/"


def open_deal(client: TestClient, brokerage: Brokerage, **overrides: Any) -> dict[str, Any]:
    today = utcnow().date()
    body: dict[str, Any] = {
        "property_address": "12 Oak Street",
        "property_city": "Austin",
        "property_state": "TX",
        "property_zip": "78701",
        "buyer_name": "Sam Buyer",
        "buyer_ids": [brokerage.client.id],
        "purchase_price": "450000.00",
        "down_payment": "90000.00",
        "loan_type": "conventional",
        "my_commission": "13500.00",
        "contract_date": str(today - timedelta(days=1)),
        "target_closing_date": str(today + timedelta(days=43)),
    }
    body.update(overrides)
    response = client.post(API, json=body, headers=bearer(client, brokerage.agent))
    assert response.status_code == 201, response.text
    client.cookies.clear()  # nobody is signed in on the pages yet
    return dict(response.json())


@pytest.fixture
def deal(client: TestClient, brokerage: Brokerage) -> dict[str, Any]:
    return open_deal(client, brokerage)


def sign_in(client: TestClient, user: User) -> str:
    """Sign in through the form, as a browser that asks for HTML (errors are pages then)."""
    client.cookies.clear()
    client.headers["Accept"] = "text/html"
    return web_login(client, user)


def status_of(db: Session, tx_id: int, milestone_type: str) -> str:
    db.expire_all()
    return str(
        db.scalar(
            select(Milestone.status).where(
                Milestone.transaction_id == tx_id, Milestone.milestone_type == milestone_type
            )
        )
    )


def event_count(db: Session, tx_id: int) -> int:
    db.expire_all()
    stmt = select(func.count()).where(TransactionEvent.transaction_id == tx_id)
    return int(db.scalar(stmt) or 0)


# --- who may open which page ---------------------------------------------------------------------


def test_the_buyer_lands_on_their_open_purchase(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    sign_in(client, brokerage.client)
    response = client.get("/portal", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/portal/{deal['id']}"


def test_a_buyer_without_a_purchase_sees_the_empty_state(
    client: TestClient, brokerage: Brokerage
) -> None:
    sign_in(client, brokerage.client)
    response = client.get("/portal")
    assert response.status_code == 200
    assert 'data-testid="portal-empty"' in response.text
    assert 'data-bs-theme="dark"' in response.text


@pytest.mark.parametrize("role", [Role.admin, Role.broker, Role.agent])
def test_staff_are_sent_from_the_portal_to_the_agent_pages(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any], role: Role
) -> None:
    sign_in(client, brokerage.by_role(role))
    home = client.get("/portal", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/transactions")
    page = client.get(f"/portal/{deal['id']}", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, f"/transactions/{deal['id']}")


def test_analysts_have_neither_portal_nor_agent_pages(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    sign_in(client, brokerage.analyst)
    for path in (
        "/portal",
        f"/portal/{deal['id']}",
        "/transactions",
        f"/transactions/{deal['id']}",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert 'data-testid="error-page"' in response.text


@pytest.mark.parametrize("role", [Role.admin, Role.broker, Role.agent])
def test_staff_open_the_list_and_the_detail_page(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any], role: Role
) -> None:
    sign_in(client, brokerage.by_role(role))
    listing = client.get("/transactions")
    assert listing.status_code == 200
    assert f'data-transaction="{deal["id"]}"' in listing.text
    detail = client.get(f"/transactions/{deal['id']}")
    assert detail.status_code == 200
    assert 'data-testid="tx-milestones"' in detail.text
    assert "$13,500" in detail.text  # staff see the commission


def test_clients_cannot_reach_the_agent_pages(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.client)
    assert client.get("/transactions").status_code == 403
    assert client.get(f"/transactions/{deal['id']}").status_code == 403
    form = client.post(
        f"/transactions/{deal['id']}/milestones/loan_application",
        data={"status": "completed", "csrf_token": csrf},
    )
    assert form.status_code == 403
    assert status_of_api(client, brokerage, deal["id"], "loan_application") == "pending"


def status_of_api(client: TestClient, brokerage: Brokerage, tx_id: int, mtype: str) -> str:
    read = client.get(f"{API}{tx_id}", headers=bearer(client, brokerage.agent)).json()
    return str(next(m["status"] for m in read["milestones"] if m["milestone_type"] == mtype))


def test_another_agents_deal_is_not_found(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    sign_in(client, brokerage.other_agent)
    listing = client.get("/transactions")
    assert listing.status_code == 200
    assert f'data-transaction="{deal["id"]}"' not in listing.text
    for path in (f"/transactions/{deal['id']}", f"/portal/{deal['id']}"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 404, path
        assert 'data-testid="error-page"' in response.text


def test_another_tenants_deal_is_not_found(
    client: TestClient, brokerage: Brokerage, rival: Brokerage, deal: dict[str, Any]
) -> None:
    for user in (rival.admin, rival.client):
        sign_in(client, user)
        path = (
            f"/portal/{deal['id']}" if user.role == Role.client else f"/transactions/{deal['id']}"
        )
        assert client.get(path, follow_redirects=False).status_code == 404


def test_a_buyer_cannot_open_someone_elses_portal(
    client: TestClient, brokerage: Brokerage, factory: Factory, db: Session, deal: dict[str, Any]
) -> None:
    stranger = factory.user(brokerage.tenant, Role.client, agent=brokerage.agent)
    db.commit()
    sign_in(client, stranger)
    assert client.get(f"/portal/{deal['id']}").status_code == 404
    assert client.get(f"/portal/{deal['id']}/panels").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient, deal: dict[str, Any]) -> None:
    for path in ("/portal", f"/portal/{deal['id']}", "/transactions"):
        response = client.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_unknown_ids_are_404(client: TestClient, brokerage: Brokerage) -> None:
    sign_in(client, brokerage.agent)
    assert client.get("/transactions/999999").status_code == 404
    assert client.get("/transactions/0").status_code == 422
    assert client.get("/transactions/abc").status_code in (404, 422)


# --- what the portal shows -----------------------------------------------------------------------


def test_the_portal_shows_progress_money_and_health_but_no_commission(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    sign_in(client, brokerage.client)
    page = client.get(f"/portal/{deal['id']}")
    assert page.status_code == 200
    html = page.text
    assert 'data-bs-theme="dark"' in html  # forced, whatever the account's theme
    assert re.search(r'data-testid="portal-progress">15%<', html)
    for shown in ("$450,000", "$90,000", "Conventional"):
        assert shown in html
    assert "13,500" not in html  # no commission for clients
    assert "ommission" not in html
    assert 'data-testid="health-score">100<' in html
    assert "gauge-green" in html
    assert (
        '<span class="countdown-number">43</span><span class="countdown-label">days to closing'
        in html
    )
    # The live stream: this deal's channel, resumed from what the page shows.
    assert f'data-live-channels="user:{brokerage.client.id},transaction:{deal["id"]}"' in html
    assert "sessionStorage.setItem" in html
    assert '<link rel="manifest" href="/static/portal/manifest.webmanifest">' in html
    assert "/static/js/portal.js" in html
    # Each milestone with its status, the next one highlighted as the stage.
    assert html.count('data-testid="milestone"') == 8
    assert 'data-milestone="contract_signed" data-status="completed"' in html
    assert "Next: <strong>Loan Application</strong>" in html


def test_a_missed_celebration_is_offered_on_the_next_visit(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.agent)
    client.post(
        f"/transactions/{deal['id']}/milestones/loan_application",
        data={"status": "completed", "csrf_token": csrf},
    )
    celebrations = client.get(
        f"{API}{deal['id']}/celebrations", headers=bearer(client, brokerage.agent)
    ).json()
    sign_in(client, brokerage.client)
    page = client.get(f"/portal/{deal['id']}").text
    missed = json.loads(
        re.search(r'id="missed-celebrations">(.*?)</script>', page, re.S).group(1)  # type: ignore[union-attr]
    )
    assert missed, "the buyer was not there when the milestone was celebrated"
    assert {c["id"] for c in missed} == {c["id"] for c in celebrations if c["shown_at"] is None}
    assert {"title", "message", "animation", "duration", "share_message"} <= set(missed[0])
    # Once the buyer has seen them, they are not offered again.
    headers = {"X-CSRF-Token": re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)}  # type: ignore[union-attr]
    for c in missed:
        seen = client.post(
            f"{API}{deal['id']}/celebrations/{c['id']}/engagement",
            json={"shown": True, "seconds_viewed": 3.5},
            headers=headers,
        )
        assert seen.status_code == 200, seen.text
    again = client.get(f"/portal/{deal['id']}").text
    assert 'id="missed-celebrations">[]</script>' in again


def test_the_buyer_sees_client_entries_only_and_can_acknowledge_them(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.agent)
    client.post(
        f"/transactions/{deal['id']}/milestones/loan_application",
        data={"status": "in_progress", "notes": "Lender wants two pay stubs", "csrf_token": csrf},
    )
    agent_page = client.get(f"/transactions/{deal['id']}").text
    assert 'data-testid="agent-only"' in agent_page  # the note is marked as the agent's own
    assert "Note on Loan Application" in agent_page
    sign_in(client, brokerage.client)
    page = client.get(f"/portal/{deal['id']}").text
    assert "Note on Loan Application" not in page
    assert 'data-testid="agent-only"' not in page
    ack = re.search(r'data-ack="([^"]+)"', page)
    assert ack
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post(ack.group(1)).status_code == 403  # the CSRF header is required
    done = client.post(ack.group(1), headers={"X-CSRF-Token": token})
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_at"]


def test_portal_panels_are_fragments_for_the_buyer_only(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    sign_in(client, brokerage.client)
    response = client.get(f"/portal/{deal['id']}/panels?parts=hero&parts=activity")
    assert response.status_code == 200
    assert response.text.count('hx-swap-oob="true"') == 2
    assert "<html" not in response.text
    assert client.get(f"/portal/{deal['id']}/panels?parts=nope").status_code == 422
    sign_in(client, brokerage.agent)
    assert client.get(f"/portal/{deal['id']}/panels").status_code == 403


def test_the_service_worker_may_control_the_portal(client: TestClient) -> None:
    response = client.get("/portal/sw.js")
    assert response.status_code == 200
    assert response.headers["service-worker-allowed"] == "/portal"
    assert response.headers["content-type"].startswith("text/javascript")
    assert "cache-page" in response.text
    manifest = client.get("/static/portal/manifest.webmanifest")
    assert manifest.status_code == 200
    assert json.loads(manifest.text)["scope"] == "/portal"
    assert client.get("/static/portal/icon-512.png").status_code == 200


# --- the agent's milestone form ------------------------------------------------------------------


def test_the_milestone_form_moves_the_milestone(
    client: TestClient, brokerage: Brokerage, db: Session, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.agent)
    response = client.post(
        f"/transactions/{deal['id']}/milestones/loan_application",
        data={"status": "completed", "actual_date": "", "notes": "", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/transactions/{deal['id']}"
    assert status_of(db, deal["id"], "loan_application") == "completed"
    page = client.get(response.headers["location"]).text
    assert "Loan Application: completed." in page  # the flash toast
    assert 'data-testid="agent-progress">30%<' in page


def test_the_htmx_form_answers_with_the_panels_it_moved(
    client: TestClient, brokerage: Brokerage, db: Session, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.agent)
    response = client.post(
        f"/transactions/{deal['id']}/milestones/home_inspection",
        data={"status": "in_progress", "notes": "Inspector booked for Tuesday"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert response.status_code == 200
    assert json.loads(response.headers["HX-Trigger"]) == {
        "transactions:toast": {"message": "Home Inspection: in progress."}
    }
    html = response.text
    assert 'id="tx-milestones" data-testid="tx-milestones">' in html  # the swap target itself
    assert 'id="tx-summary" data-testid="tx-summary" hx-swap-oob="true"' in html
    assert 'id="tx-activity" data-testid="tx-activity" hx-swap-oob="true"' in html
    assert "Inspector booked for Tuesday" in html
    assert status_of(db, deal["id"], "home_inspection") == "in_progress"


def test_a_refused_move_says_why_and_changes_nothing(
    client: TestClient, brokerage: Brokerage, db: Session, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.agent)
    before = event_count(db, deal["id"])
    response = client.post(
        f"/transactions/{deal['id']}/milestones/loan_approval",
        data={"status": "completed", "csrf_token": csrf},
    )
    assert response.status_code == 409
    assert 'data-testid="milestone-error"' in response.text
    assert "Loan Approval cannot be completed before Loan Application" in response.text
    assert "<html" in response.text  # the whole page, with the reason next to the milestone
    assert status_of(db, deal["id"], "loan_approval") == "pending"
    assert event_count(db, deal["id"]) == before


def test_a_refused_htmx_move_comes_back_as_the_form_with_a_toast(
    client: TestClient, brokerage: Brokerage, db: Session, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.agent)
    response = client.post(
        f"/transactions/{deal['id']}/milestones/title_search",
        data={"status": "skipped", "notes": "no title search"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert response.status_code == 409
    reason = "Title Search cannot be skipped: every purchase needs it"
    assert reason in response.text
    assert "<html" not in response.text
    assert 'value="no title search"' in response.text  # what was typed is kept
    assert json.loads(response.headers["HX-Trigger"]) == {
        "transactions:toast": {"message": f"Not saved: {reason}", "level": "danger"}
    }
    assert status_of(db, deal["id"], "title_search") == "pending"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "done"}, "Status: Input should be"),
        ({"status": ""}, "Status: Input should be"),
        ({"status": "completed", "actual_date": "yesterday"}, "Completion date must be a date"),
        ({"status": "completed", "actual_date": "2999-01-01"}, "is in the future"),
        ({"status": "completed", "actual_date": "2001-01-01"}, "before the contract date"),
        ({"status": "in_progress", "actual_date": "2001-01-01"}, "only given when completing"),
        ({"status": "completed", "notes": "x" * 2001}, "Notes: String should have at most 2000"),
        ({"status": "pending"}, "Loan Application is already pending"),
    ],
)
def test_bad_form_input_is_explained_and_changes_nothing(
    client: TestClient,
    brokerage: Brokerage,
    db: Session,
    deal: dict[str, Any],
    data: dict[str, str],
    message: str,
) -> None:
    csrf = sign_in(client, brokerage.agent)
    before = event_count(db, deal["id"])
    response = client.post(
        f"/transactions/{deal['id']}/milestones/loan_application",
        data={**data, "csrf_token": csrf},
    )
    assert response.status_code in (409, 422)
    assert 'data-testid="milestone-error"' in response.text
    assert message in response.text
    assert status_of(db, deal["id"], "loan_application") == "pending"
    assert event_count(db, deal["id"]) == before


def test_an_unknown_milestone_is_404(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.agent)
    response = client.post(
        f"/transactions/{deal['id']}/milestones/moving_day",
        data={"status": "completed", "csrf_token": csrf},
    )
    assert response.status_code == 404


def test_the_milestone_form_needs_the_csrf_token(
    client: TestClient, brokerage: Brokerage, db: Session, deal: dict[str, Any]
) -> None:
    sign_in(client, brokerage.agent)
    for token in (None, "forged-token-" + "x" * 30):
        data = {"status": "completed", **({"csrf_token": token} if token else {})}
        response = client.post(f"/transactions/{deal['id']}/milestones/loan_application", data=data)
        assert response.status_code == 403
        assert "CSRF" in response.text
    assert status_of(db, deal["id"], "loan_application") == "pending"


def test_other_agents_cannot_move_a_deal_that_is_not_theirs(
    client: TestClient, brokerage: Brokerage, rival: Brokerage, db: Session, deal: dict[str, Any]
) -> None:
    for user in (brokerage.other_agent, rival.agent, rival.admin):
        csrf = sign_in(client, user)
        response = client.post(
            f"/transactions/{deal['id']}/milestones/loan_application",
            data={"status": "completed", "csrf_token": csrf},
        )
        assert response.status_code == 404
    assert status_of(db, deal["id"], "loan_application") == "pending"


@pytest.mark.parametrize("role", [Role.broker, Role.admin])
def test_the_agents_broker_and_admins_may_move_milestones(
    client: TestClient, brokerage: Brokerage, db: Session, deal: dict[str, Any], role: Role
) -> None:
    csrf = sign_in(client, brokerage.by_role(role))
    response = client.post(
        f"/transactions/{deal['id']}/milestones/loan_application",
        data={"status": "in_progress", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert status_of(db, deal["id"], "loan_application") == "in_progress"


# --- the detail page's panels ---------------------------------------------------------------------


def test_the_detail_page_has_prediction_health_celebrations_and_activity(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    sign_in(client, brokerage.agent)
    html = client.get(f"/transactions/{deal['id']}").text
    # A prediction is shown as the service gives it, or the reason there is none: never invented.
    assert ('data-testid="delay-probability"' in html) != (
        'data-testid="prediction-missing"' in html
    )
    assert 'data-testid="health-factors"' in html
    assert "Timeline adherence" in html
    assert 'data-testid="tx-celebrations"' in html
    assert 'data-testid="activity-feed"' in html
    assert "Your purchase is under way" in html
    assert f'data-live-channels="user:{brokerage.agent.id},transaction:{deal["id"]}"' in html


def test_detail_panels_render_out_of_band(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    sign_in(client, brokerage.agent)
    response = client.get(f"/transactions/{deal['id']}/panels?parts=milestones&parts=health")
    assert response.status_code == 200
    assert response.text.count('hx-swap-oob="true"') == 2
    sign_in(client, brokerage.client)
    assert client.get(f"/transactions/{deal['id']}/panels").status_code == 403


def test_celebration_engagement_shows_on_the_agent_page(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    csrf = sign_in(client, brokerage.agent)
    client.post(
        f"/transactions/{deal['id']}/milestones/loan_application",
        data={"status": "completed", "csrf_token": csrf},
    )
    celebrations = client.get(
        f"{API}{deal['id']}/celebrations", headers=bearer(client, brokerage.agent)
    ).json()
    assert celebrations, "completing a milestone celebrates it"
    first = celebrations[0]
    sign_in(client, brokerage.client)
    page = client.get(f"/portal/{deal['id']}").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    client.post(
        f"{API}{deal['id']}/celebrations/{first['id']}/engagement",
        json={"shown": True, "seconds_viewed": 7.2, "shared": True, "share_channel": "copy_link"},
        headers={"X-CSRF-Token": token},
    ).raise_for_status()
    sign_in(client, brokerage.agent)
    html = client.get(f"/transactions/{deal['id']}").text
    assert "7 s" in html
    assert "copy link" in html


# --- the list: stages, filters, pagination -------------------------------------------------------


def test_the_list_groups_deals_by_their_current_stage(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    second = open_deal(client, brokerage, property_address="9 Elm Road", buyer_name="Ann Lee")
    csrf = sign_in(client, brokerage.agent)
    client.post(
        f"/transactions/{second['id']}/milestones/loan_application",
        data={"status": "completed", "csrf_token": csrf},
    )
    client.post(
        f"/transactions/{second['id']}/milestones/home_inspection",
        data={"status": "in_progress", "csrf_token": csrf},
    )
    html = client.get("/transactions").text
    rows = dict(re.findall(r'data-stage="(\w+)">\s*<h3 class="tx-row-title">([^<]+?) <', html))
    assert rows == {"loan_application": "Loan Application", "home_inspection": "Home Inspection"}
    inspection = html.split('data-stage="home_inspection"')[1]
    assert "9 Elm Road" in inspection
    assert 'data-testid="tx-progress">' in inspection
    assert 'data-testid="health-chip"' in inspection


def test_filters_and_search(client: TestClient, brokerage: Brokerage, deal: dict[str, Any]) -> None:
    cash = open_deal(
        client, brokerage, property_address="77 Cash Lane", loan_type="cash", buyer_name="Bo Diaz"
    )
    sign_in(client, brokerage.agent)

    def shown(query: str) -> set[int]:
        response = client.get(f"/transactions?{query}")
        assert response.status_code == 200, response.text
        return {int(i) for i in re.findall(r'data-transaction="(\d+)"', response.text)}

    assert shown("") == {deal["id"], cash["id"]}
    assert shown("loan_type=cash") == {cash["id"]}
    assert shown("loan_type=") == {deal["id"], cash["id"]}
    assert shown("q=oak") == {deal["id"]}
    assert shown("q=bo+diaz") == {cash["id"]}
    assert shown("status=Closed") == set()
    assert shown("status=all&sort=health_score") == {deal["id"], cash["id"]}
    assert 'data-testid="empty-state"' in client.get("/transactions?status=Cancelled").text
    for bad in ("status=finished", "loan_type=barter", "sort=price", "page=0", "q=" + "x" * 101):
        assert client.get(f"/transactions?{bad}").status_code == 422, bad


def test_large_lists_are_paginated(
    client: TestClient, brokerage: Brokerage, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [open_deal(client, brokerage, property_address=f"{n} Pine Court")["id"] for n in range(3)]
    monkeypatch.setattr(pages, "PER_PAGE", 2)
    sign_in(client, brokerage.agent)
    first = client.get("/transactions?q=pine")
    assert 'data-testid="pagination"' in first.text
    assert "page 1 of 2" in first.text
    next_link = re.search(r'href="\?([^"]*page=2)"', first.text)
    assert next_link
    assert "q=pine" in next_link.group(1)  # the filters carry over
    second = client.get("/transactions?q=pine&page=2").text
    on_pages = re.findall(r'data-transaction="(\d+)"', first.text + second)
    assert sorted(int(i) for i in on_pages) == sorted(ids)
