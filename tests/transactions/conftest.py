"""Fixtures of the transactions tests: a deal opened through the API by the brokerage's agent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.platform.db import utcnow
from tests.conftest import Brokerage, bearer


def deal_body(brokerage: Brokerage, **overrides: Any) -> dict[str, Any]:
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
        "stakeholders": {"lender": True, "title company": True},
    }
    body.update(overrides)
    return body


@pytest.fixture
def deal(client: TestClient, brokerage: Brokerage) -> dict[str, Any]:
    response = client.post(
        "/api/v1/transactions/", json=deal_body(brokerage), headers=bearer(client, brokerage.agent)
    )
    assert response.status_code == 201, response.text
    return response.json()
