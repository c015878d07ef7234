"""Small helpers every module's pages share: money, times in the brokerage's zone, safe
redirect targets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from doorstep.platform.auth import Tenant


def money(value: Decimal | int | float | None) -> str:
    if value is None:
        return "—"
    return f"${Decimal(value):,.0f}"


def local_time(tenant: Tenant) -> Callable[..., str]:
    """Times are stored in UTC and shown in the brokerage's zone."""
    zone = tenant.zone

    def show(value: datetime | None, fmt: str = "%b %d, %H:%M") -> str:
        if value is None:
            return "—"
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(zone).strftime(fmt)

    return show


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: an open redirect would let a phishing link borrow our pages."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
