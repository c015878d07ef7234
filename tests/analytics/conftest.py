"""Fixtures shared by the analytics tests."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The Square SDK's and the reader's backoff waits, recorded instead of slept."""
    waits: list[float] = []
    fake_time = SimpleNamespace(sleep=waits.append, time=time.time)
    monkeypatch.setattr("square.core.http_client.time", fake_time)
    monkeypatch.setattr("doorstep.analytics.square.time", fake_time)
    return waits
