"""`WS /api/v1/transactions/{id}/live` against a real server process: the buyer sees the
agent's milestone at once, agent-only entries never reach them, outsiders are refused, and a
reconnect with `last_event_id` replays exactly what was missed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest

from doorstep.platform.db import utcnow
from tests.platform.realtime_helpers import (
    Server,
    Site,
    access_token,
    demo_site,
    hello,
    refused,
    running,
)

AGENT, BUYER, OTHER_AGENT, HARBOR, ADMIN = (
    "agent@doorstep.demo",
    "buyer@doorstep.demo",
    "agent2@doorstep.demo",
    "admin@harborhomes.demo",
    "admin@doorstep.demo",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, demo_database: str) -> Iterator[Site]:
    with demo_site(tmp_path_factory.mktemp("tx-live"), "txlive", demo_database) as made:
        yield made


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[Server]:
    with running(site, "tx-live") as started:
        yield started


def live_url(server: Server, tx_id: int, token: str, last_event_id: int | None = None) -> str:
    query = {"token": token} | (
        {"last_event_id": str(last_event_id)} if last_event_id is not None else {}
    )
    base = server.url.replace("http://", "ws://")
    return f"{base}/api/v1/transactions/{tx_id}/live?{urlencode(query)}"


def open_deal(server: Server, site: Site, token: str) -> int:
    today = utcnow().date()
    body = {
        "property_address": "77 Live Oak Lane",
        "buyer_name": "Sam Buyer",
        "buyer_ids": [site.user_id(BUYER)],
        "purchase_price": "525000",
        "loan_type": "conventional",
        "contract_date": str(today - timedelta(days=1)),
        "target_closing_date": str(today + timedelta(days=43)),
    }
    response = httpx.post(
        f"{server.url}/api/v1/transactions/",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def move(server: Server, token: str, tx_id: int, **body: str) -> httpx.Response:
    return httpx.put(
        f"{server.url}/api/v1/transactions/{tx_id}/milestones",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


async def test_the_buyer_sees_the_agents_milestone_live_and_resumes(
    server: Server, site: Site
) -> None:
    agent, buyer = access_token(server, AGENT), access_token(server, BUYER)
    tx_id = open_deal(server, site, agent)
    portal = await hello(live_url(server, tx_id, buyer), "buyer")
    desk = await hello(live_url(server, tx_id, agent), "agent")
    started = time.monotonic()
    response = move(
        server,
        agent,
        tx_id,
        milestone_type="loan_application",
        status="completed",
        notes="Lender wants two more pay stubs",
    )
    assert response.status_code == 200, response.text
    await portal.wait_for(lambda c: bool(c.of_type("celebration.triggered")), "the celebration")
    elapsed = time.monotonic() - started
    print(f"\nmilestone PUT -> buyer's celebration over the WebSocket: {elapsed * 1000:.0f} ms")
    done = portal.of_type("milestone.completed")[0]
    assert done["data"]["milestone"]["milestone_type"] == "loan_application"
    assert done["data"]["progress_shown"] == 30
    assert {"id", "type", "ts", "data"} <= set(done)
    await desk.wait_for(lambda c: bool(c.of_type("milestone.note")), "the agent-only note")
    assert not portal.of_type("milestone.note")
    assert "pay stubs" not in str(portal.messages)
    # Missed while away: replayed in order, exactly once, then live again.
    last = portal.event_ids()[-1]
    await portal.close()
    move(server, agent, tx_id, milestone_type="home_inspection", status="in_progress")
    await desk.wait_for(lambda c: bool(c.of_type("milestone.started")), "the start")
    back = await hello(live_url(server, tx_id, buyer, last_event_id=last), "buyer-again")
    await back.wait_for(lambda c: bool(c.of_type("milestone.started")), "the missed start")
    assert back.event_ids() == sorted(set(back.event_ids()))
    assert all(i > last for i in back.event_ids())
    await back.close()
    await desk.close()


def live_latency(server: Server, token: str) -> dict[str, float | int | None]:
    response = httpx.get(
        f"{server.url}/api/v1/transactions/system/status",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    figures: dict[str, float | int | None] = response.json()["realtime"]["live_event_latency"]
    return figures


async def test_the_system_status_measures_live_event_latency(server: Server, site: Site) -> None:
    agent, admin = access_token(server, AGENT), access_token(server, ADMIN)
    before = live_latency(server, admin)["samples"]
    assert isinstance(before, int)
    tx_id = open_deal(server, site, agent)
    portal = await hello(live_url(server, tx_id, access_token(server, BUYER)), "buyer")
    response = move(server, agent, tx_id, milestone_type="loan_application", status="completed")
    assert response.status_code == 200, response.text
    await portal.wait_for(lambda c: bool(c.of_type("milestone.completed")), "the milestone")
    figures = live_latency(server, admin)
    await portal.close()
    # Recorded once per delivered event (the PUT writes several), not once per subscriber.
    assert isinstance(figures["samples"], int)
    assert figures["samples"] > before
    p50, p99 = figures["p50_ms"], figures["p99_ms"]
    assert isinstance(p50, float)
    assert isinstance(p99, float)
    assert 0 <= p50 <= p99 < 60_000


async def test_outsiders_are_refused(server: Server, site: Site) -> None:
    tx_id = open_deal(server, site, access_token(server, AGENT))
    for email in (OTHER_AGENT, HARBOR):
        client = await refused(live_url(server, tx_id, access_token(server, email)))
        assert client.close_code == 4403, email
    nobody = await refused(live_url(server, tx_id, "not-a-token"))
    assert nobody.close_code == 4401
