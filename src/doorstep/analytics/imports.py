"""Orders from a CSV file, for sellers without a Square token.

The format (one row per order line; a header row names the columns, in any order):

| column          | required | meaning                                                     |
|-----------------|----------|-------------------------------------------------------------|
| `order_id`      | yes      | the order's id; rows with the same id form one order        |
| `ordered_at`    | yes      | ISO 8601 date-time; without an offset, the local time       |
| `location`      | yes      | the store's name                                            |
| `product`       | yes      | the product's name                                          |
| `quantity`      | yes      | units sold, a positive number                               |
| `revenue`       | yes      | the line's total in dollars (e.g. `4.50`), zero or more     |
| `category`      | no       | the product's category                                      |
| `customer_id`   | no       | your id for the customer (empty for anonymous sales)        |
| `customer_name` | no       | the customer's name                                         |

Every row is checked; an order with any bad row is left out whole (never half an order), and
each problem names its line and column. Loading the same file again changes nothing: orders are
keyed by `order_id`, and a changed order replaces its earlier version.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from doorstep.analytics.warehouse import SaleLine, SaleOrder

SOURCE = "csv"
REQUIRED = ("order_id", "ordered_at", "location", "product", "quantity", "revenue")
OPTIONAL = ("category", "customer_id", "customer_name")
MAX_ROWS = 500_000
MAX_QUANTITY = Decimal(100_000)
MAX_REVENUE = Decimal(10_000_000)


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (no header, missing columns, too many rows)."""


@dataclass
class Problem:
    line: int
    errors: list[str]


@dataclass
class ParsedOrders:
    rows: int = 0
    orders: list[SaleOrder] = field(default_factory=list)
    customers: dict[str, str] = field(default_factory=dict)  # customer_id -> name
    locations: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)


def _decimal(text: str, name: str, errors: list[str], *, positive: bool, cap: Decimal) -> Decimal:
    try:
        value = Decimal(text.replace("$", "").replace(",", "").strip())
    except InvalidOperation:
        errors.append(f"{name} must be a number, got {text!r}")
        return Decimal(0)
    if not value.is_finite() or (value <= 0 if positive else value < 0) or value > cap:
        bound = "greater than 0" if positive else "0 or more"
        errors.append(f"{name} must be {bound} and at most {cap:,}, got {text!r}")
    return value


def _when(text: str, zone: ZoneInfo, errors: list[str]) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        errors.append(f"ordered_at must be an ISO 8601 date-time, got {text!r}")
        return datetime.now(zone)
    return value if value.tzinfo else value.replace(tzinfo=zone)


def parse_orders_csv(text: str, zone: ZoneInfo) -> ParsedOrders:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if not header:
        raise CsvFormatError("The file is empty: the first row must name the columns")
    if missing:
        raise CsvFormatError(
            f"Missing column(s): {', '.join(missing)}. Required: {', '.join(REQUIRED)}"
        )
    reader.fieldnames = header
    out = ParsedOrders()
    lines: dict[str, list[tuple[int, SaleLine]]] = {}
    heads: dict[str, tuple[int, datetime, str, str | None]] = {}
    bad: dict[str, list[int]] = {}
    for number, row in enumerate(reader, start=2):
        out.rows += 1
        if out.rows > MAX_ROWS:
            raise CsvFormatError(f"The file has more than {MAX_ROWS:,} rows: split it")
        values = {key: (value or "").strip() for key, value in row.items() if key}
        errors = [f"{name} is empty" for name in REQUIRED if not values.get(name)]
        order_id = values.get("order_id", "")
        if len(order_id) > 64 or len(values.get("customer_id", "")) > 64:
            errors.append("order_id and customer_id may be at most 64 characters")
        for name in ("location", "product", "category", "customer_name"):
            if len(values.get(name, "")) > 200:
                errors.append(f"{name} may be at most 200 characters")
        quantity = _decimal(
            values.get("quantity") or "0", "quantity", errors, positive=True, cap=MAX_QUANTITY
        )
        revenue = _decimal(
            values.get("revenue") or "0", "revenue", errors, positive=False, cap=MAX_REVENUE
        )
        when = _when(values.get("ordered_at") or "", zone, errors)
        customer = values.get("customer_id") or None
        head = (number, when, values.get("location", ""), customer)
        first = heads.setdefault(order_id, head) if order_id else head
        if first[1:] != head[1:]:
            errors.append(
                f"order {order_id} has a different ordered_at, location or customer_id "
                f"on line {first[0]}"
            )
        if errors:
            out.problems.append(Problem(number, errors))
            bad.setdefault(order_id, []).append(number)
            continue
        product = values["product"]
        lines.setdefault(order_id, []).append(
            (
                number,
                SaleLine(
                    product.lower(),
                    product,
                    quantity,
                    revenue.quantize(Decimal("0.01")),
                    values.get("category", ""),
                ),
            )
        )
        if customer:
            out.customers[customer] = values.get("customer_name", "") or out.customers.get(
                customer, ""
            )
    for order_id, order_lines in lines.items():
        if order_id in bad:
            for number, _ in order_lines:
                out.problems.append(
                    Problem(
                        number, [f"order {order_id} is skipped: line {bad[order_id][0]} has errors"]
                    )
                )
            continue
        _, when, location, customer = heads[order_id]
        out.locations.add(location)
        out.orders.append(
            SaleOrder(
                SOURCE, order_id, location, when, tuple(line for _, line in order_lines), customer
            )
        )
    out.problems.sort(key=lambda p: p.line)
    return out
