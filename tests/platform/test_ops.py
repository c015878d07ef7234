"""Health, readiness, metrics, request ids, structured logs and configuration rules."""

from __future__ import annotations

import gc
import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from doorstep.app import create_app
from doorstep.config import ConfigurationError, Settings
from doorstep.platform.db import make_engine
from doorstep.platform.observability import JsonFormatter, Metrics
from tests.conftest import Brokerage, bearer


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "alive"


def test_readyz_checks_the_database_and_redis(client: TestClient, settings: Settings) -> None:
    body = client.get("/readyz").json()
    assert body["ready"] is True
    assert body["checks"]["database"] == "ok"
    assert ("redis" in body["checks"]) == bool(settings.redis_url)


def test_readyz_reports_an_unreachable_database(settings: Settings, tmp_path: Path) -> None:
    broken = make_engine(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    app = create_app(settings, sessionmaker=sessionmaker(bind=broken))
    with TestClient(app) as test_client:
        response = test_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("error")


def test_readyz_reports_an_unreachable_redis(
    settings: Settings, session_factory: sessionmaker
) -> None:
    cfg = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(cfg, sessionmaker=session_factory)) as test_client:
        response = test_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")


def test_metrics_count_requests_by_route(client: TestClient, brokerage: Brokerage) -> None:
    auth = bearer(client, brokerage.agent)
    for _ in range(3):
        client.get("/api/auth/me", headers=auth)
    client.get("/api/users/999999", headers=auth)
    text = client.get("/metrics").text
    assert (
        'doorstep_http_requests_total{method="GET",route="/api/auth/me",status="200"} 3.0' in text
    )
    assert 'route="/api/users/{user_id}",status="404"' in text
    assert "doorstep_http_request_duration_seconds_bucket" in text


def test_latency_histogram_buckets_are_cumulative_and_inclusive() -> None:
    metrics = Metrics()
    for seconds in (0.001, 0.002, 0.003, 0.5, 20.0):
        metrics.observe("GET", "/x", 200, seconds)
    metrics.observe("GET", "/x", 404, 0.01)
    samples = {
        (s.name, s.labels.get("le"), s.labels.get("status")): s.value
        for family in metrics.registry.collect()
        for s in family.samples
    }
    bucket = "doorstep_http_request_duration_seconds_bucket"
    assert samples[(bucket, "0.002", None)] == 2  # 0.002 itself counts in le="0.002"
    assert samples[(bucket, "0.005", None)] == 3
    assert samples[(bucket, "0.01", None)] == 4
    assert samples[(bucket, "0.5", None)] == 5
    assert samples[(bucket, "10.0", None)] == 5
    assert samples[(bucket, "+Inf", None)] == 6
    assert samples[("doorstep_http_request_duration_seconds_count", None, None)] == 6
    assert samples[("doorstep_http_request_duration_seconds_sum", None, None)] == pytest.approx(
        20.516
    )
    assert samples[("doorstep_http_requests_total", None, "200")] == 5
    assert samples[("doorstep_http_requests_total", None, "404")] == 1


def test_request_id_is_returned_and_propagated(client: TestClient) -> None:
    assert len(client.get("/healthz").headers["x-request-id"]) == 32
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )


def test_json_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("doorstep", logging.INFO, __file__, 1, "GET / 200", None, None)
    record.request_id = "rid-1"
    record.status = 200
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "GET / 200"
    assert entry["request_id"] == "rid-1"
    assert entry["status"] == 200


def test_unexpected_errors_are_500_without_details(
    client: TestClient, brokerage: Brokerage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from doorstep.platform import accounts

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(accounts, "get_tenant", explode)
    response = client.get("/api/tenant", headers=bearer(client, brokerage.agent))
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert "secret internals" not in response.text


def test_production_refuses_to_start_without_secret_key() -> None:
    cfg = Settings(database_url="postgresql://u@localhost/db", secret_key=None)
    assert not cfg.embedded
    assert cfg.database_url.startswith("postgresql+psycopg://")
    with pytest.raises(ConfigurationError, match="DOORSTEP_SECRET_KEY is required"):
        cfg.resolved_secret_key()
    with pytest.raises(ConfigurationError, match="at least 32"):
        Settings(
            database_url="postgresql://u@localhost/db", secret_key="short"
        ).resolved_secret_key()


def test_embedded_mode_generates_and_keeps_a_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = Settings(database_url="sqlite:///var/x.db", secret_key=None)
    first = cfg.resolved_secret_key()
    assert len(first) >= 48
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert cfg.resolved_secret_key() == first


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_PORT", "9123")
    monkeypatch.setenv("DOORSTEP_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("DOORSTEP_DEMO_PASSWORD", "another-demo")
    cfg = Settings()
    assert (cfg.port, cfg.redis_url, cfg.demo_password) == (
        9123,
        "redis://127.0.0.1:6379/3",
        "another-demo",
    )
    assert cfg.database_url == "sqlite:///var/doorstep.db"
    assert cfg.embedded
    assert not cfg.cookies_secure
    monkeypatch.setenv("DOORSTEP_DATABASE_URL", "mysql://nope")
    with pytest.raises(ValueError, match="sqlite:// or postgresql://"):
        Settings()


def test_production_defaults_to_secure_cookies_and_json_logs() -> None:
    cfg = Settings(database_url="postgresql://u@localhost/db")
    assert cfg.cookies_secure
    assert cfg.json_logs


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/api/docs").status_code == 200
    spec = client.get("/api/openapi.json").json()
    assert {"/api/auth/token", "/api/auth/refresh", "/api/auth/logout", "/api/auth/me"} <= set(
        spec["paths"]
    )


def test_start_up_freezes_what_it_loaded_for_the_collector(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """With freeze_gc (the default outside the suite) the objects loaded at start-up are kept
    out of the collector's full passes; without it nothing is frozen."""
    gc.unfreeze()
    try:
        with TestClient(create_app(settings, sessionmaker=session_factory)):
            assert gc.get_freeze_count() == 0  # the suite's settings: off
        on = settings.model_copy(update={"freeze_gc": True})
        with TestClient(create_app(on, sessionmaker=session_factory)) as client:
            assert gc.get_freeze_count() > 100_000  # the modules, the app, its caches
            assert client.get("/healthz").status_code == 200
    finally:
        gc.unfreeze()
