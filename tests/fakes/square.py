"""Enough of Square's API for the analytics ingest, in the shapes of Square's API reference, so
that the official SDK (`squareup`) parses it: `GET /v2/locations`, `GET /v2/customers` (cursor,
limit <= 100) and `POST /v2/orders/search` (location_ids <= 10, cursor, limit <= 1000, state
filter, one date-time filter whose field must be the sort field, sort by CREATED_AT, UPDATED_AT
or CLOSED_AT, return_entries), with Bearer-token auth and Square's error documents
(`{"errors": [{"category", "code", "detail", "field"?}]}`).

As Square does, answers omit absent fields and empty lists (a search with no match is `{}`, the
last page has no `cursor`), money is `{"amount": <int, smallest unit>, "currency": "USD"}` and a
line item's `quantity` is a decimal string. Timestamps are RFC 3339 in UTC with milliseconds.

Approximations, where Square's behaviour is not documented precisely: error codes for a bad
search (`ARRAY_LENGTH_TOO_LONG` for more than 10 locations, `INVALID_VALUE` for an unknown
location or a sort field that is not the filtered one, `INVALID_CURSOR`), and cursors, which here
are base64 JSON of an offset into the sorted result, so that an order updated while someone pages
moves to the end and shifts the pages after it. As Square documents, a time range without `end_at`
ends at the time of the first request of a cursor chain. Filters the fake does not implement
(customer_filter, source_filter, fulfillment_filter) are refused with 400, not ignored.

The fake keeps its own clock (`FakeSquare.clock`): writes happen one second after the previous
write unless given a time, so `updated_at`s are distinct and deterministic.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import string
import threading
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.fakes.http import FakeService, Recorded, Reply

LOCATIONS = "/v2/locations"
CUSTOMERS = "/v2/customers"
ORDERS_SEARCH = "/v2/orders/search"
MAX_SEARCH_LOCATIONS = 10
MAX_ORDERS_LIMIT = 1000
MAX_CUSTOMERS_LIMIT = 100
STATES = ("OPEN", "COMPLETED", "CANCELED", "DRAFT")
SORT_FIELDS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "CLOSED_AT": "closed_at"}
DEFAULT_TOKEN = "EAAAl-fake-square-access-token"
EPOCH = datetime(2025, 3, 1, tzinfo=UTC)
TAX_PERCENT = Decimal("8.5")

# A café's menu: (item, variations as (name, price in cents)).
MENU: list[tuple[str, list[tuple[str, int]]]] = [
    ("Latte", [("Small", 425), ("Medium", 475), ("Large", 525)]),
    ("Cappuccino", [("Small", 400), ("Medium", 450), ("Large", 500)]),
    ("Flat White", [("Regular", 450)]),
    ("Americano", [("Small", 300), ("Medium", 350), ("Large", 400)]),
    ("Espresso", [("Single", 275), ("Double", 325)]),
    ("Cold Brew", [("Medium", 425), ("Large", 475)]),
    ("Mocha", [("Medium", 525), ("Large", 575)]),
    ("Chai Latte", [("Medium", 475), ("Large", 525)]),
    ("Matcha Latte", [("Medium", 525), ("Large", 575)]),
    ("Hot Chocolate", [("Regular", 400)]),
    ("Croissant", [("Regular", 375)]),
    ("Pain au Chocolat", [("Regular", 425)]),
    ("Blueberry Muffin", [("Regular", 375)]),
    ("Banana Bread", [("Slice", 395)]),
    ("Avocado Toast", [("Regular", 950)]),
    ("Breakfast Sandwich", [("Regular", 875)]),
    ("Bagel with Cream Cheese", [("Regular", 425)]),
]
# Drinks sell more than food: the first ten items are drinks.
MENU_WEIGHTS = [10, 8, 5, 7, 4, 5, 4, 4, 3, 2, 6, 4, 3, 3, 2, 3, 2]
CITIES = [
    ("Mission Street", "San Francisco", "CA", "94110", "America/Los_Angeles"),
    ("Hawthorne Blvd", "Portland", "OR", "97214", "America/Los_Angeles"),
    ("Pike Street", "Seattle", "WA", "98101", "America/Los_Angeles"),
    ("South Congress Ave", "Austin", "TX", "78704", "America/Chicago"),
    ("Milwaukee Ave", "Chicago", "IL", "60622", "America/Chicago"),
    ("Bedford Ave", "Brooklyn", "NY", "11211", "America/New_York"),
]
GIVEN = [
    "Ava",
    "Ben",
    "Chloe",
    "Diego",
    "Emma",
    "Farid",
    "Grace",
    "Hiro",
    "Isla",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olivia",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
]
FAMILY = [
    "Nguyen",
    "Garcia",
    "Smith",
    "Kim",
    "Patel",
    "Cohen",
    "Rossi",
    "Okafor",
    "Silva",
    "Müller",
    "Johnson",
    "Tanaka",
    "Brown",
    "Lopez",
    "Wilson",
    "Ahmed",
]


def error(status: int, category: str, code: str, detail: str, field: str | None = None) -> Reply:
    err = {"category": category, "code": code, "detail": detail}
    if field:
        err["field"] = field
    return Reply(status, {"errors": [err]})


def bad_request(code: str, detail: str, field: str | None = None) -> Reply:
    return error(400, "INVALID_REQUEST_ERROR", code, detail, field)


def timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.astimezone(UTC)


def money(amount: int, currency: str = "USD") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def catalog_id(*parts: str) -> str:
    """A stable 24-character id in the style of Square's catalog ids."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    alphabet = string.ascii_uppercase + string.digits
    return "".join(alphabet[b % len(alphabet)] for b in digest[:24])


class FakeSquare(FakeService):
    """Square for one merchant, in memory. Build it with `add_location`, `add_customer`,
    `add_order` (or `generate`), change it with `update_order` and `refund_order`, and make the
    next requests fail with `rate_limit_next` (429) or `fail_next` (anything), or answer an
    empty page with a cursor (`empty_page_next`)."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, seed: int = 0) -> None:
        super().__init__()
        self.token = token
        self.merchant_id = "ML" + catalog_id("merchant", str(seed))[:11]
        self.clock = EPOCH
        self.locations: list[dict[str, Any]] = []
        self.customers: list[dict[str, Any]] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self._rng = random.Random(seed)
        self._state = threading.RLock()
        self._rate_limits: list[str | None] = []
        self._empty_pages = 0

    # --- building the merchant ---------------------------------------------------------------

    def tick(self, at: datetime | None = None) -> datetime:
        """The time of a write: `at`, or one second after the clock. The clock never goes back."""
        with self._state:
            moment = at.astimezone(UTC) if at is not None else self.clock + timedelta(seconds=1)
            self.clock = max(self.clock, moment)
            return moment

    def _id(self, length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(length))

    def add_location(
        self, name: str, *, city: int = 0, status: str = "ACTIVE", currency: str = "USD"
    ) -> dict[str, Any]:
        street, locality, state, postal, tz = CITIES[city % len(CITIES)]
        location = {
            "id": "L" + self._id(12),
            "name": name,
            "address": {
                "address_line_1": f"{100 + 17 * len(self.locations)} {street}",
                "locality": locality,
                "administrative_district_level_1": state,
                "postal_code": postal,
                "country": "US",
            },
            "timezone": tz,
            "capabilities": ["CREDIT_CARD_PROCESSING"],
            "status": status,
            "created_at": timestamp(self.tick()),
            "merchant_id": self.merchant_id,
            "country": "US",
            "language_code": "en-US",
            "currency": currency,
            "business_name": "Doorstep Coffee",
            "type": "PHYSICAL",
        }
        with self._state:
            self.locations.append(location)
        return copy.deepcopy(location)

    def add_customer(
        self,
        given_name: str,
        family_name: str,
        *,
        email_address: str | None = None,
        phone_number: str | None = None,
    ) -> dict[str, Any]:
        now = timestamp(self.tick())
        customer: dict[str, Any] = {
            "id": self._id(26),
            "created_at": now,
            "updated_at": now,
            "given_name": given_name,
            "family_name": family_name,
            "preferences": {"email_unsubscribed": False},
            "creation_source": "THIRD_PARTY",
            "version": 0,
        }
        if email_address:
            customer["email_address"] = email_address
        if phone_number:
            customer["phone_number"] = phone_number
        with self._state:
            self.customers.append(customer)
        return copy.deepcopy(customer)

    def line_item(
        self, name: str, quantity: int | str = 1, *, variation: str | None = None
    ) -> dict[str, Any]:
        """A line item of a menu item (first variation unless named), before taxes."""
        variations = dict(next(v for n, v in MENU if n == name))
        variation = variation or next(iter(variations))
        price = variations[variation]
        gross = int((Decimal(str(quantity)) * price).to_integral_value(ROUND_HALF_UP))
        return {
            "uid": self._id(22, string.ascii_letters + string.digits),
            "name": name,
            "quantity": str(quantity),
            "catalog_object_id": catalog_id(name, variation),
            "catalog_version": 1740787200000,
            "variation_name": variation,
            "item_type": "ITEM",
            "base_price_money": money(price),
            "variation_total_price_money": money(gross),
            "gross_sales_money": money(gross),
        }

    def add_order(
        self,
        location_id: str,
        line_items: list[dict[str, Any]],
        *,
        customer_id: str | None = None,
        state: str = "COMPLETED",
        created_at: datetime | None = None,
        source: str = "Square Point of Sale",
    ) -> dict[str, Any]:
        """An order of `line_items` (from `line_item`) with an 8.5% additive tax; a COMPLETED or
        CANCELED order is closed a few minutes after it is created."""
        created = self.tick(created_at)
        tax_uid = self._id(22, string.ascii_letters + string.digits)
        items = copy.deepcopy(line_items)
        for item in items:
            gross = item["gross_sales_money"]["amount"]
            tax = int((gross * TAX_PERCENT / 100).to_integral_value(ROUND_HALF_UP))
            applied = {"uid": self._id(22, string.ascii_letters), "tax_uid": tax_uid}
            item["applied_taxes"] = [{**applied, "applied_money": money(tax)}]
            item["total_tax_money"] = money(tax)
            item["total_discount_money"] = money(0)
            item["total_money"] = money(gross + tax)
        gross = sum(i["gross_sales_money"]["amount"] for i in items)
        tax = sum(i["total_tax_money"]["amount"] for i in items)
        order: dict[str, Any] = {
            "id": self._id(27, string.ascii_letters + string.digits),
            "location_id": location_id,
            "source": {"name": source},
            "line_items": items,
            "taxes": [
                {
                    "uid": tax_uid,
                    "name": "Sales Tax",
                    "percentage": str(TAX_PERCENT),
                    "type": "ADDITIVE",
                    "applied_money": money(tax),
                    "scope": "ORDER",
                }
            ],
            "net_amounts": {
                "total_money": money(gross + tax),
                "tax_money": money(tax),
                "discount_money": money(0),
                "tip_money": money(0),
                "service_charge_money": money(0),
            },
            "created_at": timestamp(created),
            "updated_at": timestamp(created),
            "state": "OPEN",
            "version": 1,
            "total_money": money(gross + tax),
            "total_tax_money": money(tax),
            "total_discount_money": money(0),
            "total_tip_money": money(0),
            "total_service_charge_money": money(0),
        }
        if customer_id:
            order["customer_id"] = customer_id
        if state in ("COMPLETED", "CANCELED"):
            closed = created + timedelta(minutes=self._rng.randint(1, 9))
            order.update(state=state, version=3, updated_at=timestamp(closed))
            order["closed_at"] = timestamp(closed)
            self.tick(closed)
        else:
            order["state"] = state
        with self._state:
            self.orders[order["id"]] = order
        return copy.deepcopy(order)

    def update_order(
        self, order_id: str, *, at: datetime | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change fields of an order (e.g. `state="CANCELED"`): its version goes up by one and
        `updated_at` becomes the clock's next second (or `at`). Reaching COMPLETED or CANCELED
        sets `closed_at`. (Real Square refuses to change a COMPLETED or CANCELED order's state:
        both are terminal. The fake allows it, for testing what a loader does with it.)"""
        with self._state:
            order = self.orders[order_id]
            moment = timestamp(self.tick(at))
            order.update(copy.deepcopy(changes))
            order["version"] = order.get("version", 0) + 1
            order["updated_at"] = moment
            if changes.get("state") in ("COMPLETED", "CANCELED"):
                order["closed_at"] = moment
            return copy.deepcopy(order)

    def refund_order(self, order_id: str, *, at: datetime | None = None) -> dict[str, Any]:
        """Refund every line of a completed order, the way Square records it: a new COMPLETED
        *return order* with `returns` (pointing at the sale through `source_order_id`) and
        `return_amounts`, and no `line_items`; the sale gets `return_amounts`, its `net_amounts`
        drop to zero and its version and `updated_at` move on. Returns the return order."""
        with self._state:
            sale = self.orders[order_id]
            moment = timestamp(self.tick(at))
            returned = [
                {
                    "uid": self._id(22, string.ascii_letters + string.digits),
                    "source_line_item_uid": item["uid"],
                    "name": item["name"],
                    "quantity": item["quantity"],
                    "catalog_object_id": item["catalog_object_id"],
                    "variation_name": item["variation_name"],
                    "item_type": "ITEM",
                    "base_price_money": item["base_price_money"],
                    "gross_return_money": item["gross_sales_money"],
                    "total_tax_money": item["total_tax_money"],
                    "total_discount_money": item["total_discount_money"],
                    "total_money": item["total_money"],
                }
                for item in sale.get("line_items", [])
            ]
            amounts = {
                "total_money": sale["total_money"],
                "tax_money": sale["total_tax_money"],
                "discount_money": sale["total_discount_money"],
                "tip_money": money(0),
                "service_charge_money": money(0),
            }
            zero = {key: money(0) for key in amounts}
            refund: dict[str, Any] = {
                "id": self._id(27, string.ascii_letters + string.digits),
                "location_id": sale["location_id"],
                "source": {"name": sale.get("source", {}).get("name", "Square Point of Sale")},
                "returns": [
                    {
                        "uid": self._id(22, string.ascii_letters + string.digits),
                        "source_order_id": sale["id"],
                        "return_line_items": returned,
                    }
                ],
                "return_amounts": copy.deepcopy(amounts),
                "net_amounts": {key: money(-value["amount"]) for key, value in amounts.items()},
                "created_at": moment,
                "updated_at": moment,
                "closed_at": moment,
                "state": "COMPLETED",
                "version": 1,
                "total_money": money(0),
                "total_tax_money": money(0),
                "total_discount_money": money(0),
                "total_tip_money": money(0),
                "total_service_charge_money": money(0),
            }
            if "customer_id" in sale:
                refund["customer_id"] = sale["customer_id"]
            self.orders[refund["id"]] = refund
            sale["return_amounts"] = copy.deepcopy(amounts)
            sale["net_amounts"] = zero
            sale["version"] = sale.get("version", 0) + 1
            sale["updated_at"] = moment
            return copy.deepcopy(refund)

    def empty_page_next(self, n: int = 1) -> None:
        """Answer the next `n` ListCustomers or SearchOrders requests with an empty page that
        has a cursor to the same place, which Square's contract allows (page sizes are
        advisory; only a missing cursor ends the results)."""
        with self._state:
            self._empty_pages += n

    def _empty_page(self) -> bool:
        if self._empty_pages:
            self._empty_pages -= 1
            return True
        return False

    def rate_limit_next(self, n: int, retry_after: int | None = None) -> None:
        """Answer the next `n` requests 429 RATE_LIMITED, with `Retry-After: retry_after`."""
        with self._state:
            self._rate_limits.extend([str(retry_after) if retry_after is not None else None] * n)

    @classmethod
    def generate(
        cls,
        *,
        locations: int = 2,
        customers: int = 50,
        orders: int = 300,
        seed: int = 1,
        token: str = DEFAULT_TOKEN,
        days: int = 30,
    ) -> FakeSquare:
        """A café chain with `orders` orders over `days` days from `EPOCH`: mostly COMPLETED,
        about 3% CANCELED and 2% still OPEN; 60% of orders have a customer. Same seed, same
        data (ids included)."""
        fake = cls(token, seed=seed)
        rng = random.Random(seed)
        for i in range(locations):
            fake.add_location(f"Doorstep Coffee #{i + 1}", city=i)
        for _ in range(customers):
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            handle = f"{given}.{family}{rng.randint(1, 999)}".lower()
            fake.add_customer(
                given,
                family,
                email_address=f"{handle}@example.com",
                phone_number=f"+1415555{rng.randint(0, 9999):04d}",
            )
        start = fake.clock
        seconds = days * 24 * 3600
        moments = sorted(start + timedelta(seconds=rng.randrange(seconds)) for _ in range(orders))
        for moment in moments:
            lines = []
            for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
                name, variations = rng.choices(MENU, weights=MENU_WEIGHTS)[0]
                variation = rng.choice(variations)[0]
                lines.append(fake.line_item(name, rng.choice([1, 1, 1, 2]), variation=variation))
            roll = rng.random()
            state = "CANCELED" if roll < 0.03 else "OPEN" if roll < 0.05 else "COMPLETED"
            customer = None
            if fake.customers and rng.random() < 0.6:
                customer = rng.choice(fake.customers)["id"]
            fake.add_order(
                rng.choice(fake.locations)["id"],
                lines,
                customer_id=customer,
                state=state,
                created_at=max(moment, fake.clock + timedelta(seconds=1)),
            )
        return fake

    # --- reading the fake in tests -----------------------------------------------------------

    def order_list(self) -> list[dict[str, Any]]:
        with self._state:
            return copy.deepcopy(list(self.orders.values()))

    @property
    def searches(self) -> list[dict[str, Any]]:
        """The bodies of the SearchOrders requests received."""
        return [r.json() for r in self.requests if r.path == ORDERS_SEARCH]

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # --- the API -----------------------------------------------------------------------------

    def answer(self, request: Recorded) -> Reply:
        with self._state:
            limited = bool(self._rate_limits)
            retry_after = self._rate_limits.pop(0) if limited else None
        if limited:
            reply = error(429, "RATE_LIMIT_ERROR", "RATE_LIMITED", "Rate limit exceeded.")
            if retry_after is not None:
                reply.headers["Retry-After"] = retry_after
            return reply
        authorization = request.headers.get("authorization")
        if authorization is None:
            return error(
                401,
                "AUTHENTICATION_ERROR",
                "UNAUTHORIZED",
                "Your request did not include an `Authorization` http header with an access token.",
            )
        if authorization != f"Bearer {self.token}":
            return error(
                401,
                "AUTHENTICATION_ERROR",
                "UNAUTHORIZED",
                "This request could not be authorized.",
            )
        routes = {
            LOCATIONS: ("GET", self._locations),
            CUSTOMERS: ("GET", self._customers),
            ORDERS_SEARCH: ("POST", self._search_orders),
        }
        if request.path not in routes:
            return error(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Resource not found.")
        method, handler = routes[request.path]
        if request.method != method:
            return error(405, "INVALID_REQUEST_ERROR", "METHOD_NOT_ALLOWED", "Method not allowed.")
        with self._state:
            return handler(request)

    def _locations(self, request: Recorded) -> Reply:
        return Reply(200, {"locations": copy.deepcopy(self.locations)} if self.locations else {})

    def _customers(self, request: Recorded) -> Reply:
        params = {k: v[-1] for k, v in request.query.items()}
        try:
            limit = int(params.get("limit", MAX_CUSTOMERS_LIMIT))
        except ValueError:
            return bad_request("EXPECTED_INTEGER", "Expected an integer value.", "limit")
        if limit < 1:
            return bad_request("VALUE_TOO_LOW", "`limit` must be at least 1.", "limit")
        if limit > MAX_CUSTOMERS_LIMIT:
            return bad_request("VALUE_TOO_HIGH", "`limit` must be at most 100.", "limit")
        offset = 0
        if params.get("cursor"):
            state = _read_cursor(params["cursor"])
            if state is None or state.get("k") != "customers":
                return bad_request("INVALID_CURSOR", "The cursor is not valid.", "cursor")
            offset = state["o"]
        if self._empty_page():
            return Reply(200, {"cursor": _write_cursor({"k": "customers", "o": offset})})
        page = self.customers[offset : offset + limit]
        body: dict[str, Any] = {}
        if page:
            body["customers"] = copy.deepcopy(page)
        if offset + limit < len(self.customers):
            body["cursor"] = _write_cursor({"k": "customers", "o": offset + limit})
        return Reply(200, body)

    def _search_orders(self, request: Recorded) -> Reply:
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return bad_request("EXPECTED_JSON_BODY", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return bad_request("EXPECTED_OBJECT", "The request body must be a JSON object.")
        location_ids = body.get("location_ids") or []
        if not location_ids:
            return bad_request("MISSING_REQUIRED_PARAMETER", "Field must be set", "location_ids")
        if len(location_ids) > MAX_SEARCH_LOCATIONS:
            return bad_request(
                "ARRAY_LENGTH_TOO_LONG",
                f"Field must not contain more than {MAX_SEARCH_LOCATIONS} elements",
                "location_ids",
            )
        known = {location["id"] for location in self.locations}
        for location_id in location_ids:
            if location_id not in known:
                return bad_request(
                    "INVALID_VALUE", f"Location `{location_id}` not found.", "location_ids"
                )
        limit = body.get("limit")
        limit = 500 if limit is None else limit
        if not isinstance(limit, int):
            return bad_request("EXPECTED_INTEGER", "Expected an integer value.", "limit")
        if limit < 1:
            return bad_request("VALUE_TOO_LOW", "`limit` must be at least 1.", "limit")
        if limit > MAX_ORDERS_LIMIT:
            return bad_request(
                "VALUE_TOO_HIGH", f"`limit` must be at most {MAX_ORDERS_LIMIT}.", "limit"
            )
        query = body.get("query") or {}
        filters = query.get("filter") or {}
        unsupported = set(filters) - {"state_filter", "date_time_filter"}
        if unsupported:
            return bad_request(
                "BAD_REQUEST", f"FakeSquare does not implement {sorted(unsupported)}.", "query"
            )
        sort = query.get("sort") or {}
        sort_field = sort.get("sort_field", "CREATED_AT")
        sort_order = sort.get("sort_order", "DESC")
        if sort_field not in SORT_FIELDS:
            return bad_request("INVALID_ENUM_VALUE", "Invalid sort_field.", "query.sort.sort_field")
        if sort_order not in ("ASC", "DESC"):
            return bad_request("INVALID_SORT_ORDER", "Invalid sort_order.", "query.sort.sort_order")
        states = (filters.get("state_filter") or {}).get("states")
        if states is not None and (not states or set(states) - set(STATES)):
            return bad_request(
                "INVALID_ENUM_VALUE", "Invalid order state.", "query.filter.state_filter.states"
            )
        ranges = {k: v for k, v in (filters.get("date_time_filter") or {}).items() if v}
        if len(ranges) > 1:
            return bad_request(
                "INVALID_VALUE",
                "Only one time range can be used in a date_time_filter.",
                "query.filter.date_time_filter",
            )
        range_field = next(iter(ranges), None)
        if range_field is not None and range_field.upper() not in SORT_FIELDS:
            return bad_request(
                "BAD_REQUEST", f"Unknown time range `{range_field}`.", "query.filter"
            )
        if range_field is not None and range_field.upper() != sort_field:
            return bad_request(
                "INVALID_VALUE",
                f"The sort_field must be {range_field.upper()} when filtering on {range_field}.",
                "query.sort.sort_field",
            )

        original = [location_ids, query, bool(body.get("return_entries"))]
        fingerprint = hashlib.sha256(json.dumps(original, sort_keys=True).encode()).hexdigest()[:16]
        offset, end_default = 0, timestamp(self.clock)
        if body.get("cursor"):
            state = _read_cursor(body["cursor"])
            if state is None or state.get("k") != "orders" or state.get("q") != fingerprint:
                return bad_request("INVALID_CURSOR", "The cursor is not valid.", "cursor")
            offset, end_default = state["o"], state["e"]

        field = SORT_FIELDS[sort_field]
        start = end = None
        if range_field is not None:
            window = ranges[range_field]
            try:
                start = parse_time(window["start_at"]) if window.get("start_at") else None
                end = parse_time(window.get("end_at") or end_default)
            except (ValueError, TypeError):
                return bad_request(
                    "INVALID_TIME", "Invalid RFC 3339 timestamp.", f"query.filter.{range_field}"
                )
        matches = []
        for order in self.orders.values():
            if order["location_id"] not in location_ids:
                continue
            if states is not None and order["state"] not in states:
                continue
            if field not in order:  # e.g. an open order has no closed_at
                continue
            moment = parse_time(order[field])
            if (start is not None and moment < start) or (end is not None and moment > end):
                continue
            matches.append((moment, order["id"], order))
        matches.sort(key=lambda m: (m[0], m[1]), reverse=sort_order == "DESC")
        if self._empty_page():
            state = {"k": "orders", "o": offset, "e": end_default, "q": fingerprint}
            return Reply(200, {"cursor": _write_cursor(state)})
        page = [order for _, _, order in matches[offset : offset + limit]]

        reply: dict[str, Any] = {}
        if page and body.get("return_entries"):
            reply["order_entries"] = [
                {"order_id": o["id"], "version": o.get("version"), "location_id": o["location_id"]}
                for o in page
            ]
        elif page:
            reply["orders"] = copy.deepcopy(page)
        if offset + limit < len(matches):
            reply["cursor"] = _write_cursor(
                {"k": "orders", "o": offset + limit, "e": end_default, "q": fingerprint}
            )
        return Reply(200, reply)


def _write_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _read_cursor(cursor: str) -> dict[str, Any] | None:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        return None
    return state if isinstance(state, dict) else None
