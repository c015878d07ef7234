"""Small helpers every module's pages share: money, times in the brokerage's zone, dates typed
in forms, safe redirect targets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from doorstep.platform.auth import Tenant
from doorstep.platform.errors import RuleViolation


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


def parse_day(text: str | None, name: str) -> date | None:
    """A date typed in a filter form (YYYY-MM-DD); empty is None, anything else is refused."""
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise RuleViolation(f"{name} must be a date (YYYY-MM-DD), got {text.strip()!r}") from None


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: an open redirect would let a phishing link borrow our pages."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
