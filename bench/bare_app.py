"""The reference of bench/api_baseline.py: a bare Starlette JSON endpoint.

No middleware, no database, no authentication: what the server and the HTTP stack cost on
their own. The body has the shape and size of `GET /api/auth/me` (about 390 bytes), so the two
endpoints move the same bytes and differ only in the work behind them.

Serve it with `uvicorn bare_app:app --app-dir bench` (or gunicorn `--pythonpath bench`)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

BODY = {
    "id": 2,
    "tenant_id": 1,
    "email": "broker@doorstep.demo",
    "full_name": "Josh Riley",
    "role": "broker",
    "phone": "+15553930321",
    "broker_id": None,
    "agent_id": None,
    "is_active": True,
    "created_at": "2026-01-01T12:00:00.000000Z",
    "last_login_at": "2026-01-01T12:00:00.000000Z",
    "tenant": {
        "id": 1,
        "slug": "riley-realty",
        "name": "Riley Realty",
        "primary_color": "#1d6fa5",
        "timezone": "America/Los_Angeles",
        "has_logo": False,
    },
}

# A Response is itself an ASGI app: the body is rendered once and sent as is to every request,
# which makes this the ceiling any real endpoint is measured against.
app = Starlette(routes=[Route("/", JSONResponse(BODY))])
