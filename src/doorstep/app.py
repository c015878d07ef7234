"""ASGI app factory: mounts every module's API and pages, the error handlers, health and metrics."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from doorstep import __version__
from doorstep.config import Settings, get_settings
from doorstep.modules import installed_modules
from doorstep.platform import (
    auth_cache,
    notify,  # noqa: F401 - registers its tables, types and jobs
)
from doorstep.platform import tasks as platform_tasks  # noqa: F401 - registers its jobs
from doorstep.platform.api import me_route
from doorstep.platform.auth import Tenant, TokenSettings
from doorstep.platform.db import make_engine, make_sessionmaker
from doorstep.platform.errors import DoorstepError
from doorstep.platform.events import InProcessBus, RedisBus
from doorstep.platform.http import wants_html
from doorstep.platform.jobs import JobRunner
from doorstep.platform.observability import (
    LatencyWindow,
    Metrics,
    RequestMiddleware,
    configure_logging,
)
from doorstep.platform.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from doorstep.platform.realtime import Hub
from doorstep.platform.realtime import router as realtime_router
from doorstep.reports.sio import DashboardEdge
from doorstep.web.templating import WEB_DIR, build_templates, render

log = logging.getLogger("doorstep")
# Importing every module registers its tables, jobs, notification types and live channels, for
# the server, the worker and Alembic alike.
installed_modules()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the hub and its bus, the Socket.IO edge's pushes, and (embedded mode) the
    in-process job threads."""
    hub: Hub = app.state.hub
    await app.state.bus.start(hub.announce, auth_cache.invalidate_local)
    await hub.start()
    await app.state.socketio.start()
    if app.state.run_jobs:
        app.state.jobs.start_in_process()
    if app.state.settings.freeze_gc:
        # Everything loaded so far (modules, the app, its caches) lives as long as the process;
        # without this, every full collection walks it again (300 ms with the whole app).
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        if app.state.run_jobs:
            await run_in_threadpool(app.state.jobs.stop)
        await app.state.socketio.stop()
        await hub.stop()
        await app.state.bus.stop()


def create_app(settings: Settings | None = None, *, sessionmaker: Any = None) -> FastAPI:
    """Build the app. `sessionmaker` lets tests bind every request to one rolled-back connection."""
    settings = settings or get_settings()
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    app = FastAPI(
        lifespan=lifespan,
        title="Doorstep",
        version=__version__,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        description=(
            "One live picture of a brokerage's work. Authenticate with POST /api/auth/token."
        ),
        # FastAPI's native OpenTelemetry looks for configured providers on every request
        # (about a tenth of a cached authenticated read); Prometheus /metrics is always on.
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    if sessionmaker is None:
        app.state.engine = make_engine(settings.database_url)
        sessionmaker = make_sessionmaker(app.state.engine)
    app.state.sessionmaker = sessionmaker
    app.state.session_cache = auth_cache.SessionCache(ttl=settings.auth_cache_seconds)
    app.state.token_settings = TokenSettings(
        secret_key=settings.resolved_secret_key(),
        access_minutes=settings.access_token_minutes,
        refresh_days=settings.refresh_token_days,
        session_days=settings.session_days,
    )
    app.state.redis = redis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    limiter: RateLimiter = (
        RedisRateLimiter(app.state.redis, settings.redis_prefix)
        if app.state.redis is not None
        else MemoryRateLimiter()
    )
    app.state.rate_limiter = limiter
    app.state.bus = (
        RedisBus(settings.redis_url, settings.redis_prefix)
        if settings.redis_url
        else InProcessBus()
    )
    app.state.live_latency = LatencyWindow()
    app.state.hub = Hub(
        sessionmaker,
        retention=timedelta(days=settings.event_retention_days),
        latency=app.state.live_latency,
        heartbeat=settings.ws_heartbeat_seconds,
        idle=settings.ws_idle_seconds,
    )
    app.state.jobs = JobRunner(settings, sessionmaker)
    app.state.run_jobs = (
        settings.run_jobs_in_server
        if settings.run_jobs_in_server is not None
        else not settings.redis_url
    )
    app.state.templates = build_templates()
    app.state.metrics = Metrics()

    # First the routes that must not wait for the search through every module's router:
    # FastAPI tries the included routers one after the other, about 0.4 ms for a path at the
    # end of the list (docs/performance.md, "API baseline").
    app.router.routes[:0] = [
        me_route,
        Route("/healthz", healthz, include_in_schema=False),
        Route("/readyz", readyz, include_in_schema=False),
        Route("/metrics", metrics, include_in_schema=False),
    ]
    app.include_router(realtime_router)
    for module in installed_modules():
        if module.api is not None:
            app.include_router(module.api)
        if module.pages is not None:
            app.include_router(module.pages)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    # The live dashboard's Socket.IO edge (seed 002), fed by the same hub as /ws.
    app.state.socketio = DashboardEdge(app)
    app.mount("/socket.io", app.state.socketio.asgi, name="socket.io")
    _install_error_handlers(app)
    app.add_middleware(
        RequestMiddleware,
        metrics=app.state.metrics,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    return app


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive", "version": __version__})


async def readyz(request: Request) -> Response:
    checks: dict[str, str] = {}

    def database() -> None:
        with request.app.state.sessionmaker() as session:
            session.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(database)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if request.app.state.redis is not None:
        try:
            await run_in_threadpool(request.app.state.redis.ping)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    return PlainTextResponse(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


def _tenant_of(request: Request) -> Tenant | None:
    """The signed-in visitor's tenant, so that error pages keep its branding."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return None
    with request.app.state.sessionmaker() as session:
        return session.get(Tenant, principal.tenant_id)


async def _error_response(
    request: Request,
    status: int,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    errors: list[Any] | None = None,
) -> Response:
    if wants_html(request):
        if status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.headers.get("hx-request"):
                return Response(status_code=204, headers={"HX-Redirect": "/login"})
            return RedirectResponse(f"/login?next={target}", status_code=303)
        if request.headers.get("hx-request"):
            short = {"detail": detail, "code": code} | ({"errors": errors} if errors else {})
            return JSONResponse(short, status_code=status, headers=headers)
        title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        return render(
            request,
            "error.html",
            {"status": status, "title": title, "detail": detail},
            status_code=status,
            tenant=await run_in_threadpool(_tenant_of, request),
        )
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DoorstepError)
    async def domain_error(request: Request, exc: DoorstepError) -> Response:
        return await _error_response(
            request, exc.status_code, exc.detail, exc.code, exc.headers, errors=exc.errors
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return await _error_response(
                request, 400, "Request body is not valid JSON", "malformed_json"
            )
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in errors
        )
        return await _error_response(
            request, 422, summary or "Invalid request", "validation_error", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "There is nothing at this address."
        return await _error_response(
            request, exc.status_code, detail, code, dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return await _error_response(
            request, 500, "Something went wrong on our side; it has been logged.", "server_error"
        )
