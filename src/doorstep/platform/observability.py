"""Request ids, structured logs, Prometheus metrics, and the request-body size limit."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
log = logging.getLogger("doorstep")
SLOW_REQUEST_SECONDS = 1.0  # logged at INFO even when it succeeded


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(*, json_logs: bool, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_logs
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root = logging.getLogger("doorstep")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class Metrics:
    """Request counts and latency histograms for /metrics.

    Kept as plain numbers by the event loop's thread (every request passes `RequestMiddleware`
    there) and turned into Prometheus families only when scraped: prometheus_client's own
    Counter and Histogram take a lock per increment, three per request, a cost every request
    paid for a reading taken every few seconds."""

    BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
    _LE = (*(str(float(b)) for b in BUCKETS), "+Inf")  # the buckets' `le` labels

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._counts: dict[tuple[str, str, int], int] = {}
        # per (method, route): one count per bucket, one past the last bound, then the sum
        self._latency: dict[tuple[str, str], list[float]] = {}
        self.registry.register(self)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one request."""
        key = (method, route, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        latency = self._latency.get((method, route))
        if latency is None:
            latency = self._latency[(method, route)] = [0.0] * (len(self.BUCKETS) + 2)
        latency[bisect_left(self.BUCKETS, seconds)] += 1  # `le` bounds are inclusive
        latency[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "doorstep_http_requests",
            "HTTP requests by method, route and status",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in list(self._counts.items()):
            requests.add_metric([method, route, str(status)], count)
        latency = HistogramMetricFamily(
            "doorstep_http_request_duration_seconds",
            "HTTP request latency by method and route",
            labels=["method", "route"],
        )
        for (method, route), values in list(self._latency.items()):
            buckets = list(zip(self._LE, accumulate(values[:-1]), strict=True))
            latency.add_metric([method, route], buckets, values[-1])
        yield requests
        yield latency


class LatencyWindow:
    """The last `size` latencies (seconds) of something live, for percentiles on a status page."""

    def __init__(self, size: int = 2048) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def percentiles(self) -> dict[str, float | int | None]:
        values = sorted(self._values)
        if not values:
            return {"samples": 0, "p50_ms": None, "p99_ms": None}

        def at(q: float) -> float:
            return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 2)

        return {"samples": len(values), "p50_ms": at(0.50), "p99_ms": at(0.99)}


# Paths whose POSTs are file uploads: their bodies may reach the `max_upload_bytes` setting
# instead of `max_body_bytes`. Modules add theirs with `allow_uploads()` when imported.
_UPLOAD_PATHS: list[re.Pattern[str]] = []


def allow_uploads(pattern: str) -> None:
    """Let POST requests to paths that fully match `pattern` carry upload-sized bodies."""
    compiled = re.compile(pattern)
    if all(p.pattern != compiled.pattern for p in _UPLOAD_PATHS):
        _UPLOAD_PATHS.append(compiled)


def _too_large(max_bytes: int) -> bytes:
    return json.dumps(
        {
            "detail": f"Request body exceeds {max_bytes // (1024 * 1024)} MB",
            "code": "payload_too_large",
        }
    ).encode()


class RequestMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware, which buffers and breaks streaming): tags each request
    with an id, bounds its body, counts it and logs it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes or max_body_bytes

    def _limit(self, scope: Scope) -> int:
        if scope["method"] == "POST" and any(p.fullmatch(scope["path"]) for p in _UPLOAD_PATHS):
            return self.max_upload
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = declared = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")[:64]
            elif name == b"content-length":
                declared = value
        rid = rid or os.urandom(16).hex()
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500
        limit = self._limit(scope)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            request_id_var.reset(token)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, bounded_receive, tagged_send)
        except _BodyTooLarge:
            status = 413
            await self._reject(send, limit)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            label = getattr(route, "path", None) or (
                "static" if scope["path"].startswith("/static") else "unmatched"
            )
            self.metrics.observe(scope["method"], label, status, elapsed)
            if label not in ("static", "/metrics", "/healthz"):
                # Every request is counted and timed in /metrics; the log tells the ones to look
                # at (errors, slow requests) and the rest only at DEBUG: a line per request
                # cost about a tenth of an authenticated read (docs/performance.md).
                notable = status >= 400 or elapsed >= SLOW_REQUEST_SECONDS
                level = logging.INFO if notable else logging.DEBUG
                if log.isEnabledFor(level):
                    log.log(
                        level,
                        "%s %s %s %.1fms",
                        scope["method"],
                        scope["path"],
                        status,
                        elapsed * 1000,
                        extra={
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                        },
                    )
            request_id_var.reset(token)

    async def _reject(self, send: Send, limit: int) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": _too_large(limit)})


class _BodyTooLarge(HTTPException):
    # An HTTPException, so that FastAPI's body parsing re-raises it unchanged as a 413.
    def __init__(self) -> None:
        super().__init__(status_code=413, detail="Request body is too large")
