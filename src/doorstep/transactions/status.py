"""`GET /api/v1/transactions/system/status`: measured figures of the parts a live portal needs."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from doorstep.platform.events import RedisBus
from doorstep.platform.jobs import Job
from doorstep.transactions.models import EscrowStatus, Transaction


def system_status(db: Session, *, app: FastAPI, tenant_id: int) -> dict[str, Any]:
    from doorstep.transactions import predict

    started = time.perf_counter()
    db.execute(text("SELECT 1"))
    database = {
        "status": "ok",
        "dialect": db.get_bind().dialect.name,
        "ping_ms": round(1000 * (time.perf_counter() - started), 2),
    }
    redis_status = None
    if app.state.redis is not None:
        try:
            app.state.redis.ping()
            redis_status = "ok"
        except Exception as exc:  # a status page reports the failure rather than failing
            redis_status = f"error: {type(exc).__name__}"
    jobs = dict(
        db.execute(
            select(Job.status, func.count()).where(Job.tenant_id == tenant_id).group_by(Job.status)
        ).all()
    )
    open_deals = db.scalar(
        select(func.count())
        .select_from(Transaction)
        .where(
            Transaction.tenant_id == tenant_id,
            Transaction.escrow_status.in_([EscrowStatus.active, EscrowStatus.pending]),
        )
    )
    return {
        "status": "ok" if redis_status in (None, "ok") else "degraded",
        "database": database,
        "bus": {
            "kind": "redis" if isinstance(app.state.bus, RedisBus) else "in-process",
            "redis": redis_status,
        },
        "jobs": {
            "runs_in_server": bool(app.state.run_jobs),
            "by_status": {str(k): int(v) for k, v in jobs.items()},
        },
        "realtime": {
            "connected_clients": app.state.hub.connections,
            "live_event_latency": app.state.live_latency.percentiles(),
        },
        "transactions": {"open": int(open_deals or 0)},
        "models": predict.live_accuracy(db, tenant_id=tenant_id),
    }
