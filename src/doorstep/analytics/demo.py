"""Demo data of the analytics module (seed 001): Morning Ritual Coffee, a café chain with three
Los Angeles locations and 18 months of point-of-sale orders, and the closings feed of the demo
brokerages, so that every `/analytics` page has something to show.

The café's sales are planned as numpy arrays first (`plan`, pure and deterministic for a given
day: a seeded generator, no I/O), then turned into `SaleOrder`s a month at a time and loaded
with the warehouse's own `Loader` (rollups refreshed once, at the end). What the data holds:

- *Volume*: about 2,500 orders a day across the chain at scale 1 (`DOORSTEP_DEMO_SCALE`
  multiplies it; the tests run at 0.05), growing ~17% over the 18 months, with day-to-day
  noise, a summer and a winter, holidays (closed on Christmas Day) and a menu price rise.
- *Locations*: Downtown LA is a business district (busy Monday to Friday, quiet at weekends),
  Santa Monica is a beach neighbourhood (weekend-heavy, busier in summer), Pasadena in between.
- *Time of day*: a morning rush (7-9) and a lunch peak (12-14); weekends start later.
- *Menu*: 22 items in five categories at café prices; hot drinks sell more in winter, cold
  drinks in summer; breakfast in the morning, sandwiches at lunch; 1-4 lines an order.
- *Customers*: about 60% of orders come from identified customers. Four kinds (a loyal core,
  loyal, regular and occasional guests) are acquired over time at their home location, visit
  at individual (gamma-distributed) rates that follow their location's week and season, and
  churn after a geometric lifetime; the customers already coming when the data starts are
  drawn from the steady state. So the cohorts, segments, CLV buckets and churn scores all have
  something to say.

Idempotent: a tenant that already has facts is left alone (the café's orders, a brokerage's
closings), so a second run changes nothing. The models are not trained here (`doorstep train`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from doorstep.analytics import feeds
from doorstep.analytics.models import GOLD, FactSales
from doorstep.analytics.warehouse import (
    CustomerRecord,
    Loader,
    LocationRecord,
    SaleLine,
    SaleOrder,
)
from doorstep.demo import FIRST, LAST, DemoContext
from doorstep.platform.auth import Role
from doorstep.platform.db import utcnow

SEED = 20261124  # this seeder's own stream
SCALE_ENV = "DOORSTEP_DEMO_SCALE"  # the variable the CRM demo reads too
SOURCE = "demo"
MONTHS = 18

SLUG = "morning-ritual"
NAME = "Morning Ritual Coffee"
COLOR = "#8b5a2b"
TIMEZONE = "America/Los_Angeles"
OWNER = ("owner@doorstep.demo", "Nora Bennett")
ANALYST = ("analyst@morningritual.demo", "Theo Park")
CUSTOMER_DOMAIN = "guests.morningritual.demo"

# Loaded a month of orders at a time; progress is reported every few months.
PROGRESS_MONTHS = 3


@dataclass(frozen=True)
class Shop:
    key: str
    name: str
    week: tuple[int, ...]  # orders a day at scale 1, Monday to Sunday
    summer: float  # how much busier in mid-July (and quieter in mid-January), as a fraction
    holidays: float  # the day's factor on a Monday holiday, July 4th and between the holidays


SHOPS = (
    Shop("MR-DTLA", "Downtown LA", (1150, 1180, 1170, 1140, 1000, 390, 300), -0.05, 0.45),
    Shop("MR-SMO", "Santa Monica", (590, 600, 610, 640, 720, 1200, 1150), 0.14, 1.25),
    Shop("MR-PAS", "Pasadena", (740, 760, 760, 770, 800, 890, 820), 0.0, 0.9),
)


@dataclass(frozen=True)
class Item:
    key: str
    name: str
    category: str
    cents: int
    weight: float
    warmth: float  # > 0 sells more in winter, < 0 more in summer
    by_time: tuple[float, float, float] = (1.0, 1.0, 1.0)  # morning, lunch, afternoon
    months: tuple[int, ...] = ()  # a seasonal item: only sold in these months


HOT, TEA, COLD, BAKERY, FOOD = "Hot Coffee", "Tea & More", "Cold Drinks", "Bakery", "Food"
DRINKS = (
    Item("drip", "Drip Coffee", HOT, 295, 12, 0.8, (1.4, 0.8, 0.7)),
    Item("americano", "Americano", HOT, 375, 7, 0.7),
    Item("espresso", "Espresso", HOT, 325, 3, 0.5, (1.2, 1.0, 0.9)),
    Item("latte", "Latte", HOT, 525, 16, 0.7),
    Item("cappuccino", "Cappuccino", HOT, 495, 9, 0.7, (1.3, 0.8, 0.8)),
    Item("flat-white", "Flat White", HOT, 510, 5, 0.6),
    Item("mocha", "Mocha", HOT, 575, 5, 0.9, (0.9, 1.0, 1.2)),
    Item("pumpkin-spice", "Pumpkin Spice Latte", HOT, 625, 7, 0.5, months=(9, 10, 11)),
    Item("chai", "Chai Latte", TEA, 545, 5, 0.8, (0.9, 1.0, 1.2)),
    Item("matcha", "Matcha Latte", TEA, 595, 4, 0.1, (0.8, 1.0, 1.3)),
    Item("hot-chocolate", "Hot Chocolate", TEA, 450, 2, 2.0, (0.6, 1.0, 1.6)),
    Item("cold-brew", "Cold Brew", COLD, 495, 9, -1.6, (0.9, 1.1, 1.2)),
    Item("iced-latte", "Iced Latte", COLD, 545, 10, -1.6, (0.8, 1.1, 1.3)),
    Item("nitro", "Nitro Cold Brew", COLD, 575, 3, -1.6, (0.8, 1.1, 1.2)),
    Item("smoothie", "Berry Smoothie", COLD, 695, 2, -2.2, (0.5, 1.3, 1.5)),
)
FOODS = (
    Item("croissant", "Croissant", BAKERY, 395, 10, 0.0, (1.3, 0.7, 1.0)),
    Item("choc-croissant", "Chocolate Croissant", BAKERY, 445, 6, 0.0, (1.2, 0.7, 1.1)),
    Item("muffin", "Blueberry Muffin", BAKERY, 375, 5, 0.0, (1.2, 0.7, 1.0)),
    Item("banana-bread", "Banana Bread", BAKERY, 425, 4, 0.2, (0.9, 0.8, 1.4)),
    Item("breakfast-sandwich", "Breakfast Sandwich", FOOD, 795, 6, 0.0, (2.2, 0.4, 0.2)),
    Item("avocado-toast", "Avocado Toast", FOOD, 950, 4, -0.2, (0.8, 1.8, 0.6)),
    Item("panini", "Turkey Pesto Panini", FOOD, 1095, 5, 0.0, (0.15, 3.2, 0.8)),
)
CATALOGUE = DRINKS + FOODS
PRICE_RISE = 1.05  # the menu went up 5% eight months ago
PRICE_RISE_MONTHS_AGO = 8

# Share of the orders an hour takes, Monday to Friday and at weekends (local time).
WEEKDAY_HOURS = {6: 4, 7: 11, 8: 13, 9: 8, 10: 5, 11: 6, 12: 9.5, 13: 8, 14: 4.5, 15: 4,
                 16: 3.5, 17: 2.5, 18: 1.5}  # fmt: skip
WEEKEND_HOURS = {7: 5, 8: 8.5, 9: 10, 10: 9, 11: 7.5, 12: 8.5, 13: 7.5, 14: 5.5, 15: 4.5,
                 16: 3.5, 17: 2.5, 18: 1.5}  # fmt: skip
LINES = (0.50, 0.32, 0.13, 0.05)  # 1, 2, 3 or 4 lines
QUANTITY = (0.90, 0.08, 0.02)  # 1, 2 or 3 of an item


@dataclass(frozen=True)
class Kind:
    """A kind of customer: how many are coming at any time (at scale 1, in the steady state),
    how often they come (orders a day, on an average day of their location) and for how long
    (the mean of a geometric lifetime, in days)."""

    name: str
    pool: int
    rate: float
    lifetime: float


KINDS = (
    Kind("core", 1_000, 0.50, 1_100),  # nearly every weekday: the VIPs
    Kind("loyal", 1_800, 0.22, 450),
    Kind("regular", 3_000, 0.10, 200),
    Kind("occasional", 4_000, 0.03, 120),
)
RATE_SHAPE = 4.0  # gamma shape of a customer's own rate around their kind's (CV 0.5)
AWAY = 0.12  # share of a customer's orders at one of the other locations
IDENTIFIED = 0.6  # the share of orders the customer pools are sized for


def scale() -> float:
    """DOORSTEP_DEMO_SCALE, between 0.005 and 1 (1 when unset or unreadable)."""
    raw = os.environ.get(SCALE_ENV, "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        value = 1.0
    return min(max(value, 0.005), 1.0)


def months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month + 1, day=min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th `weekday` (Monday 0) of the month; n = -1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _holiday_factors(days: list[date]) -> np.ndarray:
    """(days, shops): 0 on Christmas Day, less on Thanksgiving and New Year's Day, and each
    shop's own `holidays` factor on Memorial Day, July 4th, Labor Day and Dec 24-31."""
    out = np.ones((len(days), len(SHOPS)))
    shop_factor = np.array([shop.holidays for shop in SHOPS])
    years = {day.year for day in days}
    thanksgiving = {_nth_weekday(y, 11, 3, 4) for y in years}
    mondays = {_nth_weekday(y, 5, 0, -1) for y in years} | {_nth_weekday(y, 9, 0, 1) for y in years}
    for i, day in enumerate(days):
        if (day.month, day.day) == (12, 25):
            out[i] = 0.0
        elif day in thanksgiving:
            out[i] = 0.35
        elif (day.month, day.day) == (1, 1):
            out[i] = 0.5
        elif day in mondays or (day.month, day.day) == (7, 4) or (day.month == 12 and day.day > 23):
            out[i] = shop_factor
    return out


@dataclass(frozen=True)
class Plan:
    """The café's orders as arrays, sorted by (day, shop, time). Days are indices from
    `start`; `order_customer` is -1 for an anonymous order, else an index into the customers,
    who are numbered in the order of their first purchase."""

    start: date
    days: int
    order_day: np.ndarray
    order_shop: np.ndarray
    order_second: np.ndarray  # seconds after local midnight
    order_customer: np.ndarray
    line_offsets: np.ndarray  # the lines of order i are [line_offsets[i], line_offsets[i + 1])
    line_item: np.ndarray  # index into CATALOGUE
    line_quantity: np.ndarray
    price_tier: np.ndarray  # per day: 0 before the price rise, 1 after
    customer_kind: np.ndarray

    @property
    def orders(self) -> int:
        return len(self.order_day)

    @property
    def customers(self) -> int:
        return len(self.customer_kind)


def _hour_cdf(hours: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.array(sorted(hours))
    weights = np.array([hours[h] for h in keys], dtype=float)
    return keys, np.cumsum(weights) / weights.sum()


def _item_cdfs(items: tuple[Item, ...], season: np.ndarray, months: np.ndarray) -> np.ndarray:
    """(days * 3, items): cumulative choice probabilities per day and time of day."""
    weight = np.array([item.weight for item in items])
    warmth = np.array([item.warmth for item in items])
    by_time = np.array([item.by_time for item in items]).T  # (3, items)
    w = weight[None, :] * np.clip(1.0 + 0.35 * warmth[None, :] * season[:, None], 0.05, None)
    for j, item in enumerate(items):
        if item.months:
            w[:, j] *= np.isin(months, item.months)
    full = w[:, None, :] * by_time[None, :, :]  # (days, 3, items)
    cdf = np.cumsum(full, axis=2)
    cdf /= cdf[:, :, -1:]
    return cdf.reshape(-1, len(items))


def _choose(rng: np.random.Generator, cdf: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each row index, an item drawn from that row's cumulative probabilities."""
    out = np.empty(len(rows), dtype=np.int16)
    u = rng.random(len(rows))
    step = 200_000
    for lo in range(0, len(rows), step):
        chunk = slice(lo, lo + step)
        out[chunk] = (u[chunk, None] > cdf[rows[chunk]]).sum(axis=1)
    return np.minimum(out, cdf.shape[1] - 1)


def plan(today: date, *, now_second: int | None = None, factor: float = 1.0) -> Plan:
    """The café's orders for the 18 months ending `today` (local), up to `now_second` of today
    when given. Deterministic: the same arguments give the same arrays."""
    rng = np.random.default_rng(SEED)
    start = months_back(today, MONTHS) + timedelta(days=1)
    n_days = (today - start).days + 1
    days = [start + timedelta(days=i) for i in range(n_days)]
    weekday = np.array([d.weekday() for d in days])
    months = np.array([d.month for d in days])
    doy = np.array([d.timetuple().tm_yday for d in days])
    season = np.cos(2 * math.pi * (doy - 15) / 365.25)  # +1 mid-January, -1 mid-July
    n_shops = len(SHOPS)

    # Orders a day at each shop: its week, its summer, growth, holidays, weather and luck.
    week = np.array([shop.week for shop in SHOPS], dtype=float).T  # (7, shops)
    summer = np.array([shop.summer for shop in SHOPS])
    growth = np.linspace(0.92, 1.08, n_days)
    weather = np.exp(rng.normal(0, 0.06, n_days))[:, None] * np.exp(
        rng.normal(0, 0.04, (n_days, n_shops))
    )
    base = (
        week[weekday]
        * (1 - summer[None, :] * season[:, None])
        * growth[:, None]
        * _holiday_factors(days)
    )
    mean = base * weather  # (days, shops) at scale 1
    target = rng.poisson(mean * factor)
    # A customer's visits follow their home shop's days: how busy the day is, against the
    # shop's average day.
    busy = mean / week.mean(axis=0)[None, :]
    cum = np.vstack([np.zeros(n_shops), np.cumsum(busy, axis=0)])  # (days + 1, shops)

    # Customers: the ones already coming when the data starts, and those acquired since.
    shop_share = week.mean(axis=0) / week.mean(axis=0).sum()
    # Orders a day from identified customers in the steady state: the pools' visits and the
    # newcomers' first orders (as many join a day as leave). Sized to IDENTIFIED of the volume.
    pool_orders = sum(k.pool * k.rate + k.pool / k.lifetime for k in KINDS)
    calibrate = IDENTIFIED * week.mean(axis=0).sum() / pool_orders
    kinds, homes, firsts, ends, forced = [], [], [], [], []
    for k, kind in enumerate(KINDS):
        pool = rng.poisson(kind.pool * calibrate * factor)
        kinds.append(np.full(pool, k))
        homes.append(rng.choice(n_shops, size=pool, p=shop_share))
        firsts.append(np.zeros(pool, dtype=np.int64))
        ends.append(rng.geometric(1 / kind.lifetime, pool))  # memoryless: a steady-state pool
        forced.append(np.zeros(pool, dtype=bool))
        # New customers per day and shop, in proportion to how busy the shop is that day.
        new = rng.poisson(kind.pool / kind.lifetime * calibrate * factor * shop_share * busy)
        day_idx, shop_idx = np.nonzero(new)
        count = new[day_idx, shop_idx]
        joined = np.repeat(day_idx, count)
        kinds.append(np.full(len(joined), k))
        homes.append(np.repeat(shop_idx, count))
        firsts.append(joined)
        ends.append(joined + rng.geometric(1 / kind.lifetime, len(joined)))
        forced.append(np.ones(len(joined), dtype=bool))
    kind_of = np.concatenate(kinds)
    home = np.concatenate(homes)
    first = np.concatenate(firsts)
    end = np.minimum(np.concatenate(ends), n_days)
    is_new = np.concatenate(forced)
    rate_mean = np.array([k.rate for k in KINDS])[kind_of]
    rate = rng.gamma(RATE_SHAPE, rate_mean / RATE_SHAPE)

    # Their visits: a Poisson process at `rate` times the home shop's busy-ness, from the day
    # after they joined (the joining day holds their first order) to the end of their lifetime.
    lo = first + is_new
    span = cum[np.maximum(end, lo), home] - cum[lo, home]
    visits = rng.poisson(rate * span)
    who = np.repeat(np.arange(len(kind_of)), visits)
    at = cum[lo[who], home[who]] + rng.random(len(who)) * span[who]
    visit_day = np.empty(len(who), dtype=np.int64)
    for s in range(n_shops):
        mine = home[who] == s
        visit_day[mine] = np.searchsorted(cum[:, s], at[mine], side="right") - 1
    visit_day = np.clip(visit_day, 0, n_days - 1)
    cust_day = np.concatenate([first[is_new], visit_day])
    cust_id = np.concatenate([np.nonzero(is_new)[0], who])
    cust_shop = home[cust_id].copy()
    away = rng.random(len(cust_id)) < AWAY
    cust_shop[away] = (cust_shop[away] + rng.integers(1, n_shops, away.sum())) % n_shops

    # Anonymous orders fill each day up to its target.
    identified = np.zeros((n_days, n_shops), dtype=np.int64)
    np.add.at(identified, (cust_day, cust_shop), 1)
    anonymous = np.maximum(target - identified, 0)
    day_idx, shop_idx = np.nonzero(anonymous)
    count = anonymous[day_idx, shop_idx]
    order_day = np.concatenate([cust_day, np.repeat(day_idx, count)])
    order_shop = np.concatenate([cust_shop, np.repeat(shop_idx, count)])
    order_customer = np.concatenate([cust_id, np.full(int(count.sum()), -1)])

    # Time of day.
    weekend = weekday[order_day] >= 5
    order_second = np.empty(len(order_day), dtype=np.int64)
    for mask, hours in ((~weekend, WEEKDAY_HOURS), (weekend, WEEKEND_HOURS)):
        keys, cdf = _hour_cdf(hours)
        picked = keys[np.searchsorted(cdf, rng.random(mask.sum()), side="right")]
        order_second[mask] = picked * 3600 + rng.integers(0, 3600, mask.sum())
    if now_second is not None:
        keep = (order_day < n_days - 1) | (order_second <= now_second)
        order_day, order_shop = order_day[keep], order_shop[keep]
        order_customer, order_second = order_customer[keep], order_second[keep]
    order = np.lexsort((order_second, order_shop, order_day))
    order_day, order_shop = order_day[order], order_shop[order]
    order_customer, order_second = order_customer[order], order_second[order]

    # Customers who bought at all, renumbered by their first purchase.
    bought = order_customer >= 0
    seen, first_at = np.unique(order_customer[bought], return_index=True)
    by_first = seen[np.argsort(first_at)]
    renumber = np.full(len(kind_of), -1)
    renumber[by_first] = np.arange(len(by_first))
    order_customer = np.where(bought, renumber[np.maximum(order_customer, 0)], -1)

    # Lines: the first mostly a drink, the others mostly food.
    n_lines = rng.choice(len(LINES), size=len(order_day), p=LINES) + 1
    offsets = np.concatenate([[0], np.cumsum(n_lines)])
    line_order = np.repeat(np.arange(len(order_day)), n_lines)
    first_line = np.zeros(len(line_order), dtype=bool)
    first_line[offsets[:-1]] = True
    drink = np.where(
        first_line, rng.random(len(line_order)) < 0.9, rng.random(len(line_order)) < 0.4
    )
    hour = order_second[line_order] // 3600
    part = np.where(hour < 11, 0, np.where(hour < 15, 1, 2))
    rows = order_day[line_order] * 3 + part
    line_item = np.empty(len(line_order), dtype=np.int16)
    line_item[drink] = _choose(rng, _item_cdfs(DRINKS, season, months), rows[drink])
    line_item[~drink] = len(DRINKS) + _choose(rng, _item_cdfs(FOODS, season, months), rows[~drink])
    quantity = rng.choice(len(QUANTITY), size=len(line_order), p=QUANTITY) + 1

    rise = months_back(today, PRICE_RISE_MONTHS_AGO).replace(day=1)
    tier = np.array([d >= rise for d in days], dtype=np.int8)
    return Plan(
        start=start,
        days=n_days,
        order_day=order_day,
        order_shop=order_shop,
        order_second=order_second,
        order_customer=order_customer,
        line_offsets=offsets,
        line_item=line_item,
        line_quantity=quantity,
        price_tier=tier,
        customer_kind=kind_of[by_first],
    )


def price_cents(item: Item, tier: int) -> int:
    """The menu price; after the rise, rounded to 5 cents."""
    return item.cents if tier == 0 else int(round(item.cents * PRICE_RISE / 5) * 5)


def _sale_lines() -> dict[tuple[int, int, int], SaleLine]:
    """Every (tier, item, quantity) line, made once: lines are immutable and shared."""
    lines = {}
    for tier in (0, 1):
        for i, item in enumerate(CATALOGUE):
            for qty in range(1, len(QUANTITY) + 1):
                revenue = Decimal(price_cents(item, tier) * qty) / 100
                lines[(tier, i, qty)] = SaleLine(
                    item.key, item.name, Decimal(qty), revenue, item.category
                )
    return lines


def customer_key(index: int) -> str:
    return f"MRC-{index + 1:06d}"


def customer_records(p: Plan) -> list[CustomerRecord]:
    """Names and e-mails for the identified customers (their own seeded stream), each valid
    from their first purchase."""
    rng = np.random.default_rng(SEED + 1)
    firsts = rng.integers(0, len(FIRST), p.customers)
    lasts = rng.integers(0, len(LAST), p.customers)
    bought = p.order_customer >= 0
    ids, at = np.unique(p.order_customer[bought], return_index=True)
    first_order = np.flatnonzero(bought)[at]
    zone = ZoneInfo(TIMEZONE)
    records = []
    for index, o in zip(ids.tolist(), first_order.tolist(), strict=True):
        given, family = FIRST[firsts[index]], LAST[lasts[index]]
        day = p.start + timedelta(days=int(p.order_day[o]))
        second = int(p.order_second[o])
        since = datetime(day.year, day.month, day.day, second // 3600, second // 60 % 60,
                         second % 60, tzinfo=zone)  # fmt: skip
        records.append(
            CustomerRecord(
                SOURCE,
                customer_key(index),
                f"{given} {family}",
                f"{given}.{family}.{index + 1}@{CUSTOMER_DOMAIN}".lower(),
                updated_at=since,
            )
        )
    return records


def sale_orders(p: Plan, lo: int, hi: int) -> Iterator[SaleOrder]:
    """Orders lo..hi of the plan as `SaleOrder`s, keyed `<shop>-<yyyymmdd>-<n>`."""
    zone = ZoneInfo(TIMEZONE)
    lines = _sale_lines()
    days = p.order_day[lo:hi].tolist()
    shops = p.order_shop[lo:hi].tolist()
    seconds = p.order_second[lo:hi].tolist()
    customers = p.order_customer[lo:hi].tolist()
    offsets = p.line_offsets[lo : hi + 1].tolist()
    items = p.line_item[offsets[0] : offsets[-1]].tolist()
    quantities = p.line_quantity[offsets[0] : offsets[-1]].tolist()
    tiers = p.price_tier.tolist()
    base = offsets[0]
    # An order's number within its shop and day, counting from the first order of the day.
    first_of_group = np.flatnonzero(
        np.r_[True, (np.diff(p.order_day) != 0) | (np.diff(p.order_shop) != 0)]
    )
    group_start = first_of_group[np.searchsorted(first_of_group, np.arange(lo, hi), "right") - 1]
    numbers = (np.arange(lo, hi) - group_start + 1).tolist()
    dates: dict[int, tuple[date, str]] = {}
    for i in range(hi - lo):
        d = days[i]
        if d not in dates:
            day = p.start + timedelta(days=d)
            dates[d] = (day, day.strftime("%Y%m%d"))
        day, stamp = dates[d]
        tier = tiers[d]
        s = seconds[i]
        shop = SHOPS[shops[i]]
        order_lines = tuple(
            lines[(tier, items[j], quantities[j])]
            for j in range(offsets[i] - base, offsets[i + 1] - base)
        )
        c = customers[i]
        yield SaleOrder(
            SOURCE,
            f"{shop.key}-{stamp}-{numbers[i]:05d}",
            shop.key,
            datetime(day.year, day.month, day.day, s // 3600, s // 60 % 60, s % 60, tzinfo=zone),
            order_lines,
            customer_key=customer_key(c) if c >= 0 else None,
        )


def month_offsets(p: Plan) -> list[int]:
    """The day index where each calendar month of the plan starts (0 for the first)."""
    offsets, month = [], p.start.replace(day=1)
    while (month - p.start).days < p.days:
        offsets.append(max((month - p.start).days, 0))
        month = (month + timedelta(days=32)).replace(day=1)
    return offsets


def _analyze(session: Session) -> None:
    """PostgreSQL: give the planner statistics of the facts loaded so far in this transaction.
    Without them it takes `fact_sales` for empty, and the loader's check for orders it already
    has (`order_key IN (...)`, a batch at a time) scans every row of the tenant, each time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {GOLD}.{FactSales.__tablename__}"))


def _has_facts(session: Session, tenant_id: int, source: str) -> bool:
    return (
        session.scalar(
            select(FactSales.order_key)
            .where(FactSales.tenant_id == tenant_id, FactSales.source == source)
            .limit(1)
        )
        is not None
    )


def seed_cafe(ctx: DemoContext) -> str | None:
    """Morning Ritual Coffee, its logins and its sales (once). Returns what it loaded."""
    session = ctx.session
    tenant = ctx.tenant(SLUG, NAME, COLOR, TIMEZONE)
    ctx.user(tenant, *OWNER, Role.admin)
    ctx.user(tenant, *ANALYST, Role.analyst)
    if _has_facts(session, tenant.id, SOURCE):
        return None
    started = time.perf_counter()
    now = utcnow().astimezone(ZoneInfo(TIMEZONE))
    p = plan(now.date(), now_second=now.hour * 3600 + now.minute * 60 + now.second, factor=scale())
    planned = time.perf_counter() - started

    loader = Loader(session, tenant.id, default_timezone=TIMEZONE)
    loader.upsert_locations(LocationRecord(SOURCE, s.key, s.name, TIMEZONE) for s in SHOPS)
    loader.upsert_customers(customer_records(p))
    customers = time.perf_counter() - started - planned
    ctx.progress(f"{NAME}: {p.customers:,} customers")

    days: set[date] = set()
    bounds = [*np.searchsorted(p.order_day, month_offsets(p)).tolist(), p.orders]
    for n, (lo, hi) in enumerate(pairwise(bounds), start=1):
        days |= loader.load_orders(sale_orders(p, lo, hi), refresh=False).days
        if n == 1 or n % PROGRESS_MONTHS == 0:
            _analyze(session)
        if n % PROGRESS_MONTHS == 0 and hi < p.orders:
            last = p.start + timedelta(days=int(p.order_day[hi - 1]))
            ctx.progress(f"{NAME}: orders through {last:%b %Y}")
    loaded = time.perf_counter() - started - planned - customers
    ctx.progress(f"{NAME}: rollups")
    loader.refresh(days)
    total = time.perf_counter() - started
    return (
        f"{NAME}: {p.orders:,} orders, {int(p.line_offsets[-1]):,} lines, "
        f"{p.customers:,} customers over {len(days)} days in {total:.1f} s (plan {planned:.1f} s, "
        f"customers {customers:.1f} s, orders {loaded:.1f} s, rollups "
        f"{total - planned - customers - loaded:.1f} s)"
    )


def seed_brokerage_feeds(ctx: DemoContext) -> list[str]:
    """The closings of each demo brokerage (made by the transactions seeder, without the
    `escrow.closed` hook) into its warehouse, once."""
    done = []
    for slug, tenant in list(ctx.tenants.items()):
        if slug == SLUG or _has_facts(ctx.session, tenant.id, feeds.SOURCE):
            continue
        result = feeds.sync_brokerage(ctx.session, tenant.id)
        if result.orders:
            done.append(f"{tenant.name}: {result.orders:,} closings")
            ctx.progress(f"{tenant.name}: closings")
    return done


def seed_demo(ctx: DemoContext) -> None:
    started = time.perf_counter()
    reports = seed_brokerage_feeds(ctx)
    cafe = seed_cafe(ctx)
    if cafe:
        reports.append(cafe)
    if reports:
        elapsed = time.perf_counter() - started
        print(f"analytics demo data in {elapsed:.1f} s ({'; '.join(reports)})", file=sys.stderr)
