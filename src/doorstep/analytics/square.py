"""Reading a merchant's Square account (seed 001): locations, customers and orders, through
Square's official SDK (`squareup`, `import square`), for the warehouse loader.

What the SDK does for us, checked in its source (`square/core/http_client.py`, 46.x):

- Retries: every call is retried on 429, 408, 409 and any 5xx, `max_retries` times (passed per
  request as `request_options={"max_retries": n}`; the SDK's default is 2). The wait is the
  `Retry-After` header when it is a positive number of seconds or an HTTP date (capped at 60 s),
  else `X-RateLimit-Reset`, else exponential backoff 1 s, 2 s, 4 s... (capped at 60 s, +-10%
  jitter). The SDK logs nothing of it (httpx logs each request at INFO, 429s included). After
  the last retry the error is raised.
- It does *not* retry a request that never got an answer (connection refused or reset, timeout):
  `SquareReader` retries those itself, with the same backoff, since every call here only reads
  (SearchOrders is a POST but changes nothing).
- Errors come back as `square.core.api_error.ApiError` with Square's `errors` document; here they
  become `SquareError` (`SquareAuthError` for 401/403, `SquareRateLimitError` for a 429 that
  outlasted the retries), carrying Square's `code`, `category` and `detail`, never the token.
- It parses every answer into its pydantic models, slowly: about 9 ms per order of a
  SearchOrders page on the development machine (some 15 minutes of CPU for 100,000 orders).
  Fine for incremental syncs; a first backfill of a busy account will feel it.
- Its pagers (`customers.list(...)` iterated) stop at the first *empty* page even when Square sent
  a cursor; Square's pagination contract is "continue while there is a cursor", so the cursors are
  followed here by hand.

Orders are read with SearchOrders: states COMPLETED and CANCELED, `updated_at >= updated_since`,
sorted by `UPDATED_AT` ascending (Square requires the sort field to be the one the date filter
uses). COMPLETED orders are the sales. Square documents COMPLETED and CANCELED as terminal
states, so a completed order does not become canceled; CANCELED is read anyway, so that an order
the loader holds (from any path) and Square reports canceled can be removed. A refund does not
change the sale's state: Square records it as a separate *return order* (COMPLETED, with
`returns[].source_order_id` pointing at the sale and no `line_items`), and the sale itself may be
updated too, so both come back through the `updated_at` filter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from square import Square
from square.core.api_error import ApiError
from square.core.request_options import RequestOptions
from square.environment import SquareEnvironment

log = logging.getLogger(__name__)

T = TypeVar("T")

ORDER_STATES = ("COMPLETED", "CANCELED")
MAX_LOCATIONS_PER_SEARCH = 10  # SearchOrders takes at most 10 location ids
CUSTOMERS_PAGE_SIZE = 100  # ListCustomers' maximum
DEFAULT_TIMEOUT = 60.0  # seconds, the SDK's own default
MAX_BACKOFF = 60.0
ENVIRONMENTS = {
    "production": SquareEnvironment.PRODUCTION,
    "sandbox": SquareEnvironment.SANDBOX,
}


class SquareError(Exception):
    """Square refused a request, or could not be reached. `status` is the HTTP status (None when
    there was no answer); `code`, `category` and `detail` are those of Square's first error."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        category: str | None = None,
        detail: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.category = category
        self.detail = detail
        self.errors = errors or []


class SquareAuthError(SquareError):
    """The access token was refused (401: missing, wrong, expired or revoked) or lacks a
    permission the call needs (403, e.g. `INSUFFICIENT_SCOPES`)."""


class SquareRateLimitError(SquareError):
    """Square still answered 429 `RATE_LIMITED` after every retry."""


@dataclass(frozen=True)
class OrdersPage:
    """One page of SearchOrders. `orders` are Square's JSON objects as returned (money `amount`s
    are integers in the currency's smallest unit, line-item `quantity` is a decimal string).
    `cursor` resumes the same `SquareReader.orders(...)` call after this page (same
    `location_ids` and `updated_since`); None when this was the last page."""

    orders: list[dict[str, Any]]
    cursor: str | None


class SquareReader:
    """A read-only client of one Square account. The token goes to Square in the Authorization
    header and nowhere else: not in `repr`, logs or exception messages."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str | None = None,
        environment: str = "production",
        max_retries: int = 5,
        httpx_client: httpx.Client | None = None,
    ) -> None:
        if not token:
            raise ValueError("a Square access token is required")
        if environment.lower() not in ENVIRONMENTS:
            raise ValueError(f"unknown Square environment {environment!r}: production or sandbox")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url or ENVIRONMENTS[environment.lower()].value
        self.max_retries = max_retries
        self._token = token
        self._owns_http = httpx_client is None
        self._http = httpx_client or httpx.Client(timeout=DEFAULT_TIMEOUT)
        # The SDK takes its per-request timeout from the client's read timeout.
        self._client = Square(base_url=self.base_url, token=token, httpx_client=self._http)
        self._options: RequestOptions = {"max_retries": max_retries}

    def __repr__(self) -> str:
        return f"SquareReader(base_url={self.base_url!r}, max_retries={self.max_retries})"

    def close(self) -> None:
        """Close the HTTP client if this reader made it (a client passed in is the caller's)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> SquareReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the three reads ---------------------------------------------------------------------

    def locations(self) -> list[dict[str, Any]]:
        """All of the account's locations (ListLocations is not paginated), active or not."""
        response = self._call("ListLocations", self._client.locations.list)
        return [_as_json(location) for location in response.locations or []]

    def customers(self) -> Iterator[list[dict[str, Any]]]:
        """Every customer profile, one list per page of ListCustomers (100 a page)."""
        cursor: str | None = None
        while True:
            pager = self._call(
                "ListCustomers",
                self._client.customers.list,
                cursor=cursor,
                limit=CUSTOMERS_PAGE_SIZE,
            )
            response = pager.response
            customers = [_as_json(customer) for customer in response.customers or []]
            log.debug("Square ListCustomers: %d customers", len(customers))
            if customers:
                yield customers
            cursor = response.cursor or None
            if cursor is None:
                return

    def orders(
        self,
        location_ids: list[str],
        *,
        updated_since: datetime | None,
        cursor: str | None = None,
        page_size: int = 500,
    ) -> Iterator[OrdersPage]:
        """COMPLETED and CANCELED orders of `location_ids` updated at or after `updated_since`
        (inclusive; None: all of them), page by page, ascending by `updated_at` *within each
        group of 10 locations* (SearchOrders' limit): with more than 10 locations the groups
        follow one another, so the order is not global. `cursor` is an `OrdersPage.cursor` from
        an earlier call with the same `location_ids` and `updated_since`. `page_size` is
        SearchOrders' `limit` (1 to 1000; Square answers 400 otherwise)."""
        since = _rfc3339(updated_since) if updated_since is not None else None
        groups = [
            location_ids[i : i + MAX_LOCATIONS_PER_SEARCH]
            for i in range(0, len(location_ids), MAX_LOCATIONS_PER_SEARCH)
        ]
        fingerprint = _fingerprint(location_ids, since)
        group, square_cursor = (0, None) if cursor is None else _decode(cursor, fingerprint)
        query: dict[str, Any] = {
            "filter": {"state_filter": {"states": list(ORDER_STATES)}},
            "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"},
        }
        if since is not None:
            query["filter"]["date_time_filter"] = {"updated_at": {"start_at": since}}
        while group < len(groups):
            more: dict[str, Any] = {"cursor": square_cursor} if square_cursor else {}
            response = self._call(
                "SearchOrders",
                self._client.orders.search,
                location_ids=groups[group],
                query=query,
                limit=page_size,
                return_entries=False,
                **more,
            )
            orders = [_as_json(order) for order in response.orders or []]
            log.debug(
                "Square SearchOrders: %d orders (location group %d of %d)",
                len(orders),
                group + 1,
                len(groups),
            )
            # An empty page with a cursor is not the end: Square's contract is the cursor.
            square_cursor = response.cursor or None
            if square_cursor is None:
                group += 1
            resume = _encode(group, square_cursor, fingerprint) if group < len(groups) else None
            yield OrdersPage(orders=orders, cursor=resume)

    # --- calls, retries and errors -----------------------------------------------------------

    def _call(self, what: str, method: Callable[..., T], **kwargs: Any) -> T:
        """Call the SDK (which retries 429/5xx itself), retrying requests that got no answer.
        Errors are raised outside the `except` blocks, so that they carry no `__context__` (the
        SDK's exception, whose body is Square's answer verbatim)."""
        attempt = 0
        while True:
            try:
                return method(**kwargs, request_options=self._options)
            except ApiError as exc:
                failure = self._error(what, exc)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if attempt < self.max_retries:
                    delay = min(2.0**attempt, MAX_BACKOFF) * (1 + (random.random() - 0.5) * 0.2)
                    log.warning(
                        "Square %s: no answer (%s), retry %d of %d in %.1fs",
                        what,
                        type(exc).__name__,
                        attempt + 1,
                        self.max_retries,
                        delay,
                    )
                    time.sleep(delay)
                    attempt += 1
                    continue
                reason = self._scrub(f"{type(exc).__name__}: {exc}")
                failure = SquareError(f"Square {what}: no answer ({reason})")
            raise failure

    def _error(self, what: str, exc: ApiError) -> SquareError:
        errors = [
            {k: v for k, v in e.model_dump(mode="json").items() if v is not None}
            for e in exc.errors
        ]
        first = errors[0] if errors else {}
        status = exc.status_code
        code = first.get("code")
        category = first.get("category")
        detail = self._scrub(str(first.get("detail") or ""))
        for error in errors:
            if "detail" in error:
                error["detail"] = self._scrub(str(error["detail"]))
        message = f"Square {what} answered {status} {code}" + (f": {detail}" if detail else "")
        kind: type[SquareError] = SquareError
        if status in (401, 403):
            kind = SquareAuthError
        elif status == 429:
            kind = SquareRateLimitError
        return kind(
            message, status=status, code=code, category=category, detail=detail, errors=errors
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]")


def _as_json(model: Any) -> dict[str, Any]:
    """Square's object as it came: the SDK keeps unknown fields, Square omits absent ones, and its
    models hold only JSON types (timestamps are strings). Not `mode="json"`: there the SDK's
    serializer re-dumps every nested model, 200 times slower (4.6 ms against 0.02 ms an order)."""
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True)
    return dumped


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("updated_since must be timezone-aware")
    # Milliseconds, as Square writes them; truncating only moves the inclusive start earlier.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fingerprint(location_ids: list[str], since: str | None) -> str:
    raw = json.dumps([location_ids, since]).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _encode(group: int, square_cursor: str | None, fingerprint: str) -> str:
    raw = json.dumps({"g": group, "c": square_cursor, "f": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode(cursor: str, fingerprint: str) -> tuple[int, str | None]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        group, square_cursor, made_for = int(data["g"]), data["c"], data["f"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise ValueError("not a cursor of SquareReader.orders") from exc
    if made_for != fingerprint:
        raise ValueError("this cursor belongs to other location_ids or another updated_since")
    return group, square_cursor
