"""`SquareReader` (the official Square SDK underneath) against a local fake of Square's API."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from doorstep.analytics.square import (
    OrdersPage,
    SquareAuthError,
    SquareError,
    SquareRateLimitError,
    SquareReader,
)
from tests.fakes.square import CUSTOMERS, LOCATIONS, FakeSquare, parse_time

TOKEN = "EAAAl-test-0123456789-square-secret-token"
WRONG_TOKEN = "EAAAl-wrong-9876543210-revoked-secret"


# Backoff waits are recorded instead of slept (`sleeps` in tests/analytics/conftest.py).
pytestmark = pytest.mark.usefixtures("sleeps")


@pytest.fixture
def square() -> Iterator[FakeSquare]:
    fake = FakeSquare.generate(locations=2, customers=250, orders=150, seed=1, token=TOKEN)
    with fake.running():
        yield fake


@pytest.fixture
def reader(square: FakeSquare) -> Iterator[SquareReader]:
    with SquareReader(TOKEN, base_url=square.url) as client:
        yield client


def location_ids(square: FakeSquare) -> list[str]:
    return [location["id"] for location in square.locations]


def sold(square: FakeSquare, since: datetime | None = None) -> dict[str, dict]:
    """The orders the reader should return: completed or canceled, updated at or after since."""
    return {
        order["id"]: order
        for order in square.order_list()
        if order["state"] in ("COMPLETED", "CANCELED")
        and (since is None or parse_time(order["updated_at"]) >= since)
    }


def read_all(pages: Iterator[OrdersPage]) -> tuple[list[OrdersPage], list[dict]]:
    collected = list(pages)
    return collected, [order for page in collected for order in page.orders]


# --- reads -----------------------------------------------------------------------------------


def test_locations_are_read_as_square_sent_them(reader: SquareReader, square: FakeSquare) -> None:
    locations = reader.locations()

    assert locations == square.locations
    assert {"id", "name", "timezone", "address", "status", "created_at", "currency"} <= set(
        locations[0]
    )
    assert square.requests_to(LOCATIONS)[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_customers_are_read_page_by_page_following_cursors(
    reader: SquareReader, square: FakeSquare
) -> None:
    pages = list(reader.customers())

    assert [len(page) for page in pages] == [100, 100, 50]
    assert [c for page in pages for c in page] == square.customers
    calls = square.requests_to(CUSTOMERS)
    assert len(calls) == 3
    assert all(call.query["limit"] == ["100"] for call in calls)
    assert "cursor" not in calls[0].query
    assert calls[1].query["cursor"] != calls[2].query["cursor"]


def test_an_empty_page_with_a_cursor_is_not_the_end(
    reader: SquareReader, square: FakeSquare
) -> None:
    # The SDK's own pagers stop at the first empty page; Square's contract is the cursor.
    square.empty_page_next(1)
    customers = [c for page in reader.customers() for c in page]
    assert customers == square.customers

    square.empty_page_next(1)
    _, orders = read_all(reader.orders(location_ids(square), updated_since=None, page_size=100))
    assert {o["id"] for o in orders} == set(sold(square))


def test_orders_come_page_by_page_in_updated_at_order(
    reader: SquareReader, square: FakeSquare
) -> None:
    pages, orders = read_all(reader.orders(location_ids(square), updated_since=None, page_size=20))

    expected = sold(square)
    assert len(expected) > 120  # some generated orders are OPEN and must stay out
    assert len(orders) == len(expected) == len({o["id"] for o in orders})
    assert {o["id"] for o in orders} == set(expected)
    assert {o["state"] for o in orders} == {"COMPLETED", "CANCELED"}
    stamps = [parse_time(o["updated_at"]) for o in orders]
    assert stamps == sorted(stamps)
    assert len(pages) == -(-len(expected) // 20)
    assert all(page.cursor for page in pages[:-1])
    assert pages[-1].cursor is None

    searches = square.searches
    assert len(searches) == len(pages)
    assert searches[0]["query"] == {
        "filter": {"state_filter": {"states": ["COMPLETED", "CANCELED"]}},
        "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
    }
    assert all(s["limit"] == 20 and s["return_entries"] is False for s in searches)
    assert "cursor" not in searches[0]
    assert all(s.get("cursor") for s in searches[1:])
    assert all(s["query"] == searches[0]["query"] for s in searches)


def test_money_stays_in_integer_cents_and_quantity_a_string(
    reader: SquareReader, square: FakeSquare
) -> None:
    _, orders = read_all(reader.orders(location_ids(square), updated_since=None))
    raw = square.orders

    for order in orders:
        assert order == raw[order["id"]]  # exactly Square's JSON, nothing added or lost
        assert type(order["total_money"]["amount"]) is int
        assert order["total_money"]["currency"] == "USD"
        for item in order["line_items"]:
            assert isinstance(item["quantity"], str)
            assert int(item["quantity"]) >= 1
            for field in ("base_price_money", "gross_sales_money", "total_money"):
                assert type(item[field]["amount"]) is int
            assert item["gross_sales_money"]["amount"] == (
                int(item["quantity"]) * item["base_price_money"]["amount"]
            )
        assert order["total_money"]["amount"] == sum(
            item["total_money"]["amount"] for item in order["line_items"]
        )


def test_updated_since_filters_inclusively(reader: SquareReader, square: FakeSquare) -> None:
    everything = sorted(sold(square).values(), key=lambda o: o["updated_at"])
    boundary = everything[len(everything) // 2]
    since = parse_time(boundary["updated_at"])

    _, orders = read_all(reader.orders(location_ids(square), updated_since=since, page_size=40))

    assert {o["id"] for o in orders} == set(sold(square, since))
    assert boundary["id"] in {o["id"] for o in orders}  # start_at is inclusive
    assert len(orders) < len(everything)
    window = square.searches[0]["query"]["filter"]["date_time_filter"]
    assert window == {"updated_at": {"start_at": boundary["updated_at"]}}


def test_updated_since_must_know_its_time_zone(reader: SquareReader, square: FakeSquare) -> None:
    with pytest.raises(ValueError, match="timezone"):
        next(reader.orders(location_ids(square), updated_since=datetime(2025, 3, 1)))


def test_changes_after_a_read_come_back_in_the_next_incremental_read(
    reader: SquareReader, square: FakeSquare
) -> None:
    _, first = read_all(reader.orders(location_ids(square), updated_since=None))
    watermark = max(parse_time(o["updated_at"]) for o in first)
    completed = [o for o in first if o["state"] == "COMPLETED"]
    canceled = square.update_order(completed[0]["id"], state="CANCELED")
    refund = square.refund_order(completed[1]["id"])

    _, again = read_all(reader.orders(location_ids(square), updated_since=watermark))
    by_id = {o["id"]: o for o in again}

    assert by_id[canceled["id"]]["state"] == "CANCELED"
    assert by_id[canceled["id"]]["version"] == completed[0]["version"] + 1
    assert by_id[refund["id"]]["returns"][0]["source_order_id"] == completed[1]["id"]
    assert "line_items" not in by_id[refund["id"]]
    assert by_id[completed[1]["id"]]["return_amounts"] == refund["return_amounts"]
    assert set(by_id) <= {canceled["id"], refund["id"], completed[1]["id"], first[-1]["id"]}


def test_more_than_ten_locations_are_searched_ten_at_a_time() -> None:
    square = FakeSquare.generate(locations=23, customers=5, orders=150, seed=7, token=TOKEN)
    with square.running(), SquareReader(TOKEN, base_url=square.url) as reader:
        ids = [location["id"] for location in reader.locations()]
        pages, orders = read_all(reader.orders(ids, updated_since=None, page_size=10))

    assert len(ids) == 23
    assert {o["id"] for o in orders} == set(sold(square))
    assert len(orders) == len(sold(square))
    groups = [search["location_ids"] for search in square.searches if "cursor" not in search]
    assert groups == [ids[0:10], ids[10:20], ids[20:23]]
    assert all(len(search["location_ids"]) <= 10 for search in square.searches)
    assert {o["location_id"] for o in orders} == set(ids)
    assert pages[-1].cursor is None
    assert all(page.cursor for page in pages[:-1])


def test_a_cursor_resumes_the_same_read_even_across_location_groups() -> None:
    square = FakeSquare.generate(locations=12, customers=5, orders=120, seed=3, token=TOKEN)
    since = parse_time(sorted(o["updated_at"] for o in square.order_list())[20])
    with square.running(), SquareReader(TOKEN, base_url=square.url) as reader:
        ids = [location["id"] for location in reader.locations()]
        _, whole = read_all(reader.orders(ids, updated_since=since, page_size=15))
        head: list[dict] = []
        resumed_at: list[int] = []
        cursor = None
        # Stop after every page and resume from its cursor, as a loader restarting would.
        while True:
            page = next(reader.orders(ids, updated_since=since, cursor=cursor, page_size=15))
            head.extend(page.orders)
            resumed_at.append(len(head))
            cursor = page.cursor
            if cursor is None:
                break

        assert [o["id"] for o in head] == [o["id"] for o in whole]
        assert len(resumed_at) > 3
        with pytest.raises(ValueError, match="location_ids"):
            next(reader.orders(ids[:10], updated_since=since, cursor=resumed_cursor(reader, ids)))
        with pytest.raises(ValueError, match="not a cursor"):
            next(reader.orders(ids, updated_since=since, cursor="not-a-cursor!"))


def resumed_cursor(reader: SquareReader, ids: list[str]) -> str:
    page = next(reader.orders(ids, updated_since=None, page_size=5))
    assert page.cursor is not None
    return page.cursor


# --- rate limits, outages and errors ----------------------------------------------------------


def test_rate_limited_twice_then_served(
    reader: SquareReader, square: FakeSquare, sleeps: list[float]
) -> None:
    square.rate_limit_next(2, retry_after=7)

    assert reader.locations() == square.locations
    assert len(square.requests) == 3
    assert sleeps == [7.0, 7.0]  # Square's Retry-After, honoured


def test_rate_limited_without_retry_after_backs_off_exponentially(
    reader: SquareReader, square: FakeSquare, sleeps: list[float]
) -> None:
    square.rate_limit_next(3)

    _, orders = read_all(reader.orders(location_ids(square), updated_since=None))

    assert {o["id"] for o in orders} == set(sold(square))
    assert len(square.searches) == 4
    assert len(sleeps) == 3
    for wait, base in zip(sleeps, (1, 2, 4), strict=True):
        assert 0.9 * base <= wait <= 1.1 * base


def test_rate_limited_beyond_the_retries_raises(square: FakeSquare) -> None:
    square.rate_limit_next(10)
    reader = SquareReader(TOKEN, base_url=square.url, max_retries=2)

    with pytest.raises(SquareRateLimitError) as caught:
        reader.locations()

    assert caught.value.status == 429
    assert caught.value.code == "RATE_LIMITED"
    assert len(square.requests) == 3


def test_server_errors_are_retried(reader: SquareReader, square: FakeSquare) -> None:
    outage = {
        "errors": [{"category": "API_ERROR", "code": "SERVICE_UNAVAILABLE", "detail": "Try again."}]
    }
    square.fail_next(503, outage, times=2)

    pages = list(reader.customers())

    assert sum(len(page) for page in pages) == 250
    assert len(square.requests_to(CUSTOMERS)) == 3 + 2


class DropsConnections(httpx.BaseTransport):
    """Refuses the first `failures` connections, then lets requests through."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise httpx.ConnectError("Connection refused", request=request)
        return self.inner.handle_request(request)


def test_requests_without_an_answer_are_retried(square: FakeSquare, sleeps: list[float]) -> None:
    transport = DropsConnections(failures=2)
    with httpx.Client(transport=transport, timeout=5) as http:
        reader = SquareReader(TOKEN, base_url=square.url, httpx_client=http)
        assert reader.locations() == square.locations
        assert transport.attempts == 3
        assert len(sleeps) == 2

        transport.failures = 10
        with pytest.raises(SquareError, match="no answer") as caught:
            SquareReader(TOKEN, base_url=square.url, httpx_client=http, max_retries=1).locations()
        assert caught.value.status is None


def test_a_refused_token_raises_auth_error_without_the_token(
    square: FakeSquare, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = SquareReader(WRONG_TOKEN, base_url=square.url)

    with pytest.raises(SquareAuthError) as caught:
        reader.locations()

    error = caught.value
    assert error.status == 401
    assert error.code == "UNAUTHORIZED"
    assert error.category == "AUTHENTICATION_ERROR"
    assert len(square.requests) == 1  # a 401 is not retried
    # The token did reach Square, and nothing said about it afterwards repeats it.
    assert square.requests[0].headers["authorization"] == f"Bearer {WRONG_TOKEN}"
    told = "\n".join(
        [str(error), repr(error), "".join(traceback.format_exception(error)), repr(reader)]
    )
    assert "401" in str(error)
    assert WRONG_TOKEN not in told
    assert "/v2/locations" in caplog.text  # the logs did record the call...
    assert WRONG_TOKEN not in caplog.text  # ...but not the token
    assert "revoked-secret" not in caplog.text


def test_the_token_is_scrubbed_even_if_square_echoes_it(square: FakeSquare) -> None:
    echo = {
        "errors": [
            {
                "category": "AUTHENTICATION_ERROR",
                "code": "ACCESS_TOKEN_REVOKED",
                "detail": f"The token {TOKEN} was revoked.",
            }
        ]
    }
    square.fail_next(401, echo)

    with pytest.raises(SquareAuthError) as caught:
        SquareReader(TOKEN, base_url=square.url).locations()

    assert caught.value.code == "ACCESS_TOKEN_REVOKED"
    assert "revoked" in str(caught.value)
    assert TOKEN not in "".join(traceback.format_exception(caught.value))
    assert all(TOKEN not in e.get("detail", "") for e in caught.value.errors)
    # Nor in a chained exception (the SDK's, which holds Square's answer verbatim).
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_a_bad_request_raises_square_error_with_its_code(
    reader: SquareReader, square: FakeSquare
) -> None:
    with pytest.raises(SquareError) as caught:
        next(reader.orders(location_ids(square), updated_since=None, page_size=1001))

    error = caught.value
    assert not isinstance(error, SquareAuthError)
    assert error.status == 400
    assert error.code == "VALUE_TOO_HIGH"
    assert error.category == "INVALID_REQUEST_ERROR"
    assert "VALUE_TOO_HIGH" in str(error)
    assert len(square.searches) == 1  # a 400 is not retried


# --- configuration ---------------------------------------------------------------------------


def test_the_environment_chooses_squares_base_url_and_repr_hides_the_token() -> None:
    production = SquareReader(TOKEN)
    sandbox = SquareReader(TOKEN, environment="sandbox")
    local = SquareReader(TOKEN, base_url="http://127.0.0.1:9", environment="sandbox")

    assert production.base_url == "https://connect.squareup.com"
    assert sandbox.base_url == "https://connect.squareupsandbox.com"
    assert local.base_url == "http://127.0.0.1:9"
    assert all(TOKEN not in repr(r) for r in (production, sandbox, local))
    assert "connect.squareup.com" in repr(production)
    with pytest.raises(ValueError, match="environment"):
        SquareReader(TOKEN, environment="staging")
    with pytest.raises(ValueError, match="token"):
        SquareReader("")


def test_generated_data_is_deterministic() -> None:
    one = FakeSquare.generate(locations=2, customers=10, orders=50, seed=5)
    two = FakeSquare.generate(locations=2, customers=10, orders=50, seed=5)
    other = FakeSquare.generate(locations=2, customers=10, orders=50, seed=6)

    assert one.order_list() == two.order_list()
    assert one.customers == two.customers
    assert one.order_list() != other.order_list()
    names = {item["name"] for order in one.order_list() for item in order["line_items"]}
    assert {"Latte", "Croissant"} & names
    span = parse_time(one.order_list()[-1]["created_at"]) - parse_time(
        one.order_list()[0]["created_at"]
    )
    assert timedelta(days=10) < span <= timedelta(days=31)
