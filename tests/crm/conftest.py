from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.config import Settings
from doorstep.crm import tasks
from doorstep.platform.auth import User
from tests.conftest import bearer

HOME = {
    "property_type": "residential",
    "title": "Sunny three-bedroom near the park",
    "address": "123 Main St",
    "city": "Bakersfield",
    "state": "CA",
    "zip_code": "93301",
    "price": "450000.00",
    "attributes": {"bedrooms": 3, "bathrooms": 2, "living_area_sqft": 1650, "year_built": 1995},
    "features": ["Garage", "pool"],
}


class Api:
    """A signed-in API caller."""

    def __init__(self, client: TestClient, user: User) -> None:
        self.client, self.user = client, user
        self.headers = bearer(client, user)

    def get(self, url: str, **params: Any) -> Any:
        return self.client.get(url, params=params, headers=self.headers)

    def post(self, url: str, body: Any = None) -> Any:
        return self.client.post(url, json=body, headers=self.headers)

    def patch(self, url: str, body: Any) -> Any:
        return self.client.patch(url, json=body, headers=self.headers)

    def put(self, url: str, body: Any) -> Any:
        return self.client.put(url, json=body, headers=self.headers)

    def lead(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Ana Ruiz", "email": "ana@example.com", "phone": "+1 661 555 0101"}
        response = self.post("/api/leads/", {**body, **fields})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def home(self, **fields: Any) -> dict[str, Any]:
        response = self.post("/api/properties/", {**HOME, **fields})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def api(client: TestClient) -> Any:
    def signed_in(user: User) -> Api:
        return Api(client, user)

    return signed_in


@pytest.fixture
def capture_messages(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    """Lead messages are recorded as captured instead of sent (the demo's set-up)."""
    captured = settings.model_copy(update={"capture_messages": True})
    monkeypatch.setattr(tasks.jobs, "settings_of", lambda _session: captured)
    return captured
