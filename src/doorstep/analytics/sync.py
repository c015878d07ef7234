"""The Square ingest (seed 001's `sync_square_to_postgres.py`): a merchant's locations, customers
and orders from Square's API into the warehouse, incrementally and resumably.

What an order becomes (`order_from_square`):

- The sale's moment is `closed_at` (when it was paid), else `created_at`; its day and hour are
  taken in the location's time zone by the loader.
- One fact line per `line_items` entry. The product is the catalog variation
  (`catalog_object_id`), or for an ad hoc item the lowercased name and variation; its name is the
  item's name, with the variation in parentheses unless it is Square's default "Regular".
- **Revenue is net sales**: the line's `gross_sales_money` (quantity x price, modifiers included)
  minus its `total_discount_money`. Taxes and tips are not revenue (the tax is owed to the state,
  the tip to the staff), so they are left out, as in Square's own "Net sales"; inclusive taxes,
  already inside the price, stay in. Only when a line has no `gross_sales_money` (older API
  versions) is its `total_money` used, tax included. Money comes in the currency's smallest unit
  (cents), an integer; it becomes a Decimal of the main unit (dollars).
- **Refunds**: Square does not change a refunded sale's lines or state. It records the refund as
  a separate COMPLETED *return order* whose `returns[].return_line_items` name the returned items
  and whose `returns[].source_order_id` points at the sale. That order is loaded like any other,
  with negative quantity and revenue lines (`gross_return_money` minus discounts), on the day of
  the refund: the sale's day keeps its sale, the refund's day shows the money going back, and any
  sum over both nets out. A return order counts as an order in the rollups' order counts.
- OPEN (and DRAFT) orders are skipped (not a sale yet, and the reader does not ask for them);
  a CANCELED order is removed from the warehouse if it was there.

How `sync_square` runs: locations, then customers (SCD Type 2 in silver), then orders page by
page. Each page is one transaction: its raw JSON in bronze, its facts in gold, and the rollups of
the days it touched; so a crash leaves whole pages, never half of one, and the rollups always
agree with the facts. The incremental cursor (`AnalyticsSource.orders_cursor`) is written only at
the very end, as the greatest `updated_at` seen: the reader sorts by `updated_at` only within
each group of 10 locations, so a partial maximum could be ahead of orders not read yet. A run
that stops half-way leaves the cursor where it was; the next run reads the same orders again and
the loader, keyed by order id, ends with the same warehouse.

An incremental run reads from `orders_cursor - lookback` (72 hours by default): orders taken
offline on a Square device carry the time they were taken and reach the API when the device is
back online, up to 72 hours later, with an `updated_at` that can be older than the cursor.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from doorstep.analytics.models import AnalyticsSource, SilverCustomer, SquareLineItem, SquareOrder
from doorstep.analytics.square import SquareReader
from doorstep.analytics.warehouse import (
    CANCELED,
    CustomerRecord,
    Loader,
    LocationRecord,
    SaleLine,
    SaleOrder,
)
from doorstep.platform.auth import Tenant
from doorstep.platform.db import utcnow

log = logging.getLogger(__name__)

SOURCE = "square"
COMPLETED = "COMPLETED"
LOADED_STATES = (COMPLETED, CANCELED)
DEFAULT_VARIATION = "Regular"
DEFAULT_LOOKBACK = timedelta(hours=72)
DEFAULT_PAGE_SIZE = 500  # SearchOrders' default; up to 1,000
# Currencies whose smallest unit is the main unit (Square's `amount` is then whole yen, won...).
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "XAF", "XOF"})
STATUS_LENGTH = 200  # AnalyticsSource.last_sync_status
PRODUCT_KEY_LENGTH = 128  # DimProduct.product_key


class SyncError(Exception):
    """The sync cannot run as asked (an unknown tenant, a tenant without a token)."""


class SquareNotConfigured(SyncError):
    """The tenant has no Square access token."""


class UnknownTenant(SyncError):
    pass


@dataclass
class SyncReport:
    """`orders` and `lines` loaded into gold this run (return orders included; CANCELED ones
    not), `customers` and `locations` read from Square, `pages` of orders, the run's wall time
    and the cursor stored at the end. `removed`: orders taken out of gold (cancelled)."""

    orders: int = 0
    lines: int = 0
    customers: int = 0
    locations: int = 0
    pages: int = 0
    seconds: float = 0.0
    cursor: datetime | None = None
    removed: int = 0


# --- Square's JSON -> typed records ----------------------------------------------------------


def parse_time(value: str) -> datetime:
    """Square's RFC 3339 timestamps (`...Z` or an offset) as aware UTC datetimes."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def money(value: dict[str, Any] | None) -> Decimal:
    """Square's `{"amount": 425, "currency": "USD"}` as Decimal("4.25") (main unit)."""
    if not value:
        return Decimal(0)
    amount = Decimal(int(value.get("amount") or 0))
    if value.get("currency") in ZERO_DECIMAL_CURRENCIES:
        return amount
    return amount.scaleb(-2)


def _product(item: dict[str, Any]) -> tuple[str, str]:
    name = (item.get("name") or "").strip() or "Custom amount"
    variation = (item.get("variation_name") or "").strip()
    shown = name if not variation or variation == DEFAULT_VARIATION else f"{name} ({variation})"
    key = item.get("catalog_object_id") or f"{name} {variation}".strip().lower()
    if len(key) > PRODUCT_KEY_LENGTH:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        key = f"{key[: PRODUCT_KEY_LENGTH - 17]}#{digest}"
    return key, shown[:200]


def _line(item: dict[str, Any], *, returned: bool) -> SaleLine:
    key, name = _product(item)
    gross = item.get("gross_return_money" if returned else "gross_sales_money")
    if gross is not None:
        revenue = money(gross) - money(item.get("total_discount_money"))
    else:
        revenue = money(item.get("total_money"))
    quantity = Decimal(str(item.get("quantity") or "0"))
    sign = -1 if returned else 1
    return SaleLine(key, name, sign * quantity, sign * revenue)


def order_from_square(payload: dict[str, Any], *, source: str = SOURCE) -> SaleOrder:
    """One Square order (as `SquareReader.orders` returns it) as the loader's `SaleOrder`, with
    Square's `state` (the caller skips OPEN ones; the loader removes CANCELED ones). A return
    order's `return_line_items` become negative lines; an exchange (returns and new items in one
    order) gets both."""
    lines = [_line(item, returned=False) for item in payload.get("line_items") or []]
    for ret in payload.get("returns") or []:
        lines.extend(_line(item, returned=True) for item in ret.get("return_line_items") or [])
    return SaleOrder(
        source=source,
        order_key=payload["id"],
        location_key=payload["location_id"],
        ts=parse_time(payload.get("closed_at") or payload["created_at"]),
        lines=tuple(lines),
        customer_key=payload.get("customer_id") or None,
        state=payload.get("state") or "",
    )


def customer_from_square(payload: dict[str, Any], *, source: str = SOURCE) -> CustomerRecord:
    name = " ".join(
        part for part in (payload.get("given_name"), payload.get("family_name")) if part
    ).strip()
    name = name or payload.get("company_name") or payload.get("nickname") or ""
    updated = payload.get("updated_at") or payload.get("created_at")
    return CustomerRecord(
        source=source,
        customer_key=payload["id"],
        name=name[:200],
        email=(payload.get("email_address") or "")[:254],
        phone=(payload.get("phone_number") or "")[:32],
        updated_at=parse_time(updated) if updated else None,
    )


def location_from_square(
    payload: dict[str, Any], *, default_timezone: str, source: str = SOURCE
) -> LocationRecord:
    return LocationRecord(
        source=source,
        location_key=payload["id"],
        name=(payload.get("name") or payload["id"])[:200],
        timezone=payload.get("timezone") or default_timezone,
    )


# --- the sync --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    token: str
    base_url: str
    cursor: datetime | None
    timezone: str


def _read_source(factory: sessionmaker[Session], tenant_id: int) -> _Source:
    with factory() as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise UnknownTenant(f"no tenant with id {tenant_id}")
        source = session.scalar(
            select(AnalyticsSource).where(AnalyticsSource.tenant_id == tenant_id)
        )
        found = _Source(
            token=(source.square_token if source else "") or "",
            base_url=(source.square_base_url if source else "") or "",
            cursor=source.orders_cursor if source else None,
            timezone=tenant.timezone or "UTC",
        )
        session.rollback()
        return found


def _record(
    factory: sessionmaker[Session],
    tenant_id: int,
    status: str,
    *,
    cursor: datetime | None = None,
) -> None:
    """The outcome on the tenant's source row, in a transaction of its own."""
    with factory() as session:
        source = session.scalar(
            select(AnalyticsSource).where(AnalyticsSource.tenant_id == tenant_id)
        )
        if source is None:
            source = AnalyticsSource(tenant_id=tenant_id)
            session.add(source)
        source.last_sync_at = utcnow()
        source.last_sync_status = status[:STATUS_LENGTH]
        if cursor is not None:
            source.orders_cursor = cursor
        session.commit()


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


def sync_square(
    session_factory: sessionmaker[Session],
    tenant_id: int,
    *,
    full: bool = False,
    since: datetime | None = None,
    reader: SquareReader | None = None,
    progress: Callable[[int], None] | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> SyncReport:
    """Bring the tenant's Square data into the warehouse: every order with `full`, those updated
    since `since` (aware) with it, else those updated since the stored cursor minus `lookback`
    (everything on the first run). `progress(n)` is told of each page's `n` orders. `reader`
    replaces the one built from the tenant's token and base URL (tests, benchmarks);
    `page_size` is SearchOrders' page (one transaction each).

    Raises `UnknownTenant`, `SquareNotConfigured` (no token), or Square's errors
    (`SquareAuthError` for a refused token...); the outcome goes to `last_sync_status` either way,
    "ok: N orders" or the error (never the token)."""
    if full and since is not None:
        raise ValueError("full and since exclude each other")
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    started = time.perf_counter()
    source = _read_source(session_factory, tenant_id)
    if reader is None and not source.token:
        message = (
            "no Square access token is set for this tenant "
            "(set one with `doorstep square-token --tenant SLUG`)"
        )
        _record(session_factory, tenant_id, f"error: {message}")
        raise SquareNotConfigured(message)
    if full:
        updated_since = None
    elif since is not None:
        updated_since = since
    else:
        updated_since = source.cursor - lookback if source.cursor is not None else None
    own_reader = reader is None
    client = reader or SquareReader(source.token, base_url=source.base_url or None)
    report = SyncReport()
    try:
        seen = _run(
            session_factory, tenant_id, client, source, updated_since, page_size, progress, report
        )
    except Exception as exc:
        reason = _scrub(str(exc) or type(exc).__name__, source.token)
        log.warning("Square sync of tenant %s failed: %s", tenant_id, reason)
        _record(session_factory, tenant_id, f"error: {reason}")
        raise
    finally:
        if own_reader:
            client.close()
    cursor = max(filter(None, (source.cursor, seen)), default=None)
    report.cursor = cursor
    report.seconds = time.perf_counter() - started
    _record(session_factory, tenant_id, f"ok: {report.orders} orders", cursor=cursor)
    log.info(
        "Square sync of tenant %s: %d orders, %d lines, %d pages in %.1fs",
        tenant_id,
        report.orders,
        report.lines,
        report.pages,
        report.seconds,
    )
    return report


def _run(
    factory: sessionmaker[Session],
    tenant_id: int,
    reader: SquareReader,
    source: _Source,
    updated_since: datetime | None,
    page_size: int,
    progress: Callable[[int], None] | None,
    report: SyncReport,
) -> datetime | None:
    """The reads and loads; returns the greatest `updated_at` seen. One session throughout (the
    loader's dimension keys stay valid across commits); one transaction per step or page; no
    transaction is open while Square is being read."""
    with factory() as session:
        loader = Loader(session, tenant_id, default_timezone=source.timezone)
        locations = reader.locations()
        loader.upsert_locations(
            location_from_square(location, default_timezone=source.timezone)
            for location in locations
        )
        session.commit()
        report.locations = len(locations)

        for page in reader.customers():
            _load_customers(session, loader, tenant_id, page)
            session.commit()
            report.customers += len(page)

        seen: datetime | None = None
        location_ids = [location["id"] for location in locations]
        if not location_ids:
            return None
        for orders_page in reader.orders(
            location_ids, updated_since=updated_since, page_size=page_size
        ):
            latest = _load_page(session, loader, tenant_id, orders_page.orders, report)
            session.commit()
            report.pages += 1
            if latest is not None and (seen is None or latest > seen):
                seen = latest
            if progress is not None:
                progress(len(orders_page.orders))
        return seen


def _load_customers(
    session: Session, loader: Loader, tenant_id: int, page: list[dict[str, Any]]
) -> None:
    """SCD Type 2 through the loader, for the customers whose attributes changed (one query for
    the page's current rows rather than one per customer)."""
    records = [customer_from_square(customer) for customer in page]
    current = {
        key: (name, email, phone)
        for key, name, email, phone in session.execute(
            select(
                SilverCustomer.customer_key,
                SilverCustomer.name,
                SilverCustomer.email,
                SilverCustomer.phone,
            ).where(
                SilverCustomer.tenant_id == tenant_id,
                SilverCustomer.source == SOURCE,
                SilverCustomer.is_current.is_(True),
                SilverCustomer.customer_key.in_([r.customer_key for r in records]),
            )
        )
    }
    changed = [r for r in records if current.get(r.customer_key) != (r.name, r.email, r.phone)]
    if changed:
        loader.upsert_customers(changed)


def _load_page(
    session: Session,
    loader: Loader,
    tenant_id: int,
    orders: list[dict[str, Any]],
    report: SyncReport,
) -> datetime | None:
    """One page: bronze, gold and the rollups of its days (the caller commits)."""
    if not orders:
        return None
    _store_bronze(session, tenant_id, orders)
    sales = [order_from_square(o) for o in orders if o.get("state") in LOADED_STATES]
    result = loader.load_orders(sales, refresh=False)
    loader.refresh(result.days)
    report.orders += result.orders
    report.lines += result.lines
    report.removed += result.removed
    return max(parse_time(o["updated_at"]) for o in orders)


def _raw_items(order: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield from order.get("line_items") or []
    for ret in order.get("returns") or []:
        yield from ret.get("return_line_items") or []


def _store_bronze(session: Session, tenant_id: int, orders: list[dict[str, Any]]) -> None:
    """Each order's latest version as Square sent it, upserted by (tenant, order id), and its
    raw line items (a return order's returned items) replaced."""
    ids = [order["id"] for order in orders]
    existing = dict(
        session.execute(
            select(SquareOrder.order_id, SquareOrder.id).where(
                SquareOrder.tenant_id == tenant_id, SquareOrder.order_id.in_(ids)
            )
        ).all()
    )
    now = utcnow()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for order in orders:
        row = {
            "order_id": order["id"],
            "location_id": order["location_id"],
            "version": int(order.get("version") or 1),
            "state": order.get("state") or "",
            "updated_at": parse_time(order["updated_at"]),
            "payload": order,
            "loaded_at": now,
        }
        if order["id"] in existing:
            updates.append({"id": existing[order["id"]], **row})
        else:
            inserts.append({"tenant_id": tenant_id, **row})
    if inserts:
        session.execute(insert(SquareOrder), inserts)
    if updates:
        session.execute(update(SquareOrder), updates)
    session.execute(
        delete(SquareLineItem).where(
            SquareLineItem.tenant_id == tenant_id, SquareLineItem.order_id.in_(ids)
        )
    )
    items = [
        {
            "tenant_id": tenant_id,
            "order_id": order["id"],
            "uid": item.get("uid") or "",
            "payload": item,
        }
        for order in orders
        for item in _raw_items(order)
    ]
    if items:
        session.execute(insert(SquareLineItem), items)


__all__ = [
    "SquareNotConfigured",
    "SyncError",
    "SyncReport",
    "UnknownTenant",
    "order_from_square",
    "sync_square",
]
