"""Training the three models on a tenant's warehouse and storing their predictions.

The models read the gold rollups, not the line items: a customer's purchases are their
`customer_daily` rows (same-day purchases count once, as the BG/NBD model wants), a product's
demand is its daily quantity from `product_performance`. "Now" is the last day with data, so a
warehouse loaded up to last week is scored as of last week. Each run replaces the model's
previous predictions and adds a `model_runs` row with its held-out figures (the dashboard shows
the version and time as the predictions' freshness)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from doorstep.analytics import ltv, ml, rules, service
from doorstep.analytics.models import (
    CustomerChurnScore,
    CustomerDaily,
    CustomerLtvScore,
    DemandForecast,
    ModelRun,
    ProductPerformance,
)
from doorstep.platform.db import utcnow

log = logging.getLogger(__name__)
MODELS = ("churn", "demand", "ltv")
LTV_HORIZON_WEEKS = 52
LTV_WEEKLY_DISCOUNT = 0.0019  # about 10% a year
LTV_HOLDOUT_WEEKS = 13
BATCH = 5_000


@dataclass(frozen=True)
class Trained:
    model: str
    model_version: str
    rows: int
    metrics: dict[str, Any]


def _customer_days(session: Session, tenant_id: int, through: date) -> pd.DataFrame:
    d = CustomerDaily
    rows = session.execute(
        select(d.customer_sk, d.sale_date, func.sum(d.revenue))
        .where(d.tenant_id == tenant_id, d.sale_date <= through)
        .group_by(d.customer_sk, d.sale_date)
    ).all()
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "revenue"])
    frame["revenue"] = frame["revenue"].astype(float)
    return frame


def _store(session: Session, model: type, tenant_id: int, rows: list[dict[str, Any]]) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    session.execute(delete(table).where(table.c.tenant_id == tenant_id))
    for start in range(0, len(rows), BATCH):
        session.execute(insert(table), rows[start : start + BATCH])


def _run(
    session: Session, tenant_id: int, model: str, version: str, metrics: dict[str, Any]
) -> None:
    session.add(ModelRun(tenant_id=tenant_id, model=model, model_version=version, metrics=metrics))


def train_churn(session: Session, tenant_id: int, through: date) -> Trained:
    days = _customer_days(session, tenant_id, through)
    orders = pd.DataFrame(
        {
            "customer_id": days["customer_id"],
            "ts": pd.to_datetime(days["day"]),
            "revenue": days["revenue"],
        }
    )
    as_of = datetime.combine(through + timedelta(days=1), time.min, UTC)
    result = ml.train_churn(orders, as_of)
    now = utcnow()
    rows = [
        {
            "tenant_id": tenant_id,
            "customer_sk": int(sk),
            "probability": float(p),
            "model_version": result.model_version,
            "created_at": now,
        }
        for sk, p in zip(result.scores["customer_id"], result.scores["probability"], strict=True)
    ]
    _store(session, CustomerChurnScore, tenant_id, rows)
    metrics: dict[str, Any] = {
        "auc": round(result.auc, 4),
        "n_train": result.n_train,
        "n_validation": result.n_validation,
        "at_risk": int((result.scores["probability"] > rules.CHURN_ALERT).sum()),
        "as_of": through.isoformat(),
    }
    _run(session, tenant_id, "churn", result.model_version, metrics)
    return Trained("churn", result.model_version, len(rows), metrics)


def train_demand(session: Session, tenant_id: int, through: date) -> Trained:
    p = ProductPerformance
    rows = session.execute(
        select(p.product_sk, p.sale_date, func.sum(p.quantity))
        .where(p.tenant_id == tenant_id, p.sale_date <= through)
        .group_by(p.product_sk, p.sale_date)
    ).all()
    daily = pd.DataFrame(rows, columns=["product_id", "date", "quantity"])
    daily["quantity"] = daily["quantity"].astype(float)
    daily["date"] = pd.to_datetime(daily["date"])
    if daily.empty:
        raise ml.NotEnoughData("no sales to forecast from")
    result = ml.forecast_demand(daily, through)
    now = utcnow()
    f = result.forecasts
    out = [
        {
            "tenant_id": tenant_id,
            "product_sk": int(sk),
            "forecast_date": day,
            "predicted_quantity": float(yhat),
            "lower_bound": float(lower),
            "upper_bound": float(upper),
            "model_version": result.model_version,
            "created_at": now,
        }
        for sk, day, yhat, lower, upper in zip(
            f["product_id"], f["date"], f["yhat"], f["lower"], f["upper"], strict=True
        )
    ]
    _store(session, DemandForecast, tenant_id, out)
    bt = result.backtest
    metrics = {
        "mase_model": _round(bt.mase_model),
        "mase_seasonal_naive": _round(bt.mase_seasonal_naive),
        "backtest_weeks": bt.weeks,
        "interval_coverage": _round(bt.interval_coverage),
        "as_of": through.isoformat(),
    }
    _run(session, tenant_id, "demand", result.model_version, metrics)
    return Trained("demand", result.model_version, len(out), metrics)


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def train_ltv(session: Session, tenant_id: int, through: date) -> Trained:
    days = _customer_days(session, tenant_id, through)
    if days["customer_id"].nunique() < 20:
        raise ml.NotEnoughData("fewer than 20 identified customers to fit the LTV model on")
    # A holdout check first: fit on all but the last weeks, compare the predicted total of
    # repeat purchases in them with the actual total.
    cut = through - timedelta(weeks=LTV_HOLDOUT_WEEKS)
    check = ltv.rfm_summary(
        days["customer_id"],
        days["day"],
        days["revenue"],
        calibration_end=cut,
        observation_end=through,
    )
    holdout_error = None
    if len(check) >= 20 and check["frequency"].sum() > 0:
        fitted = ltv.fit_bgnbd(check["frequency"], check["recency"], check["T"])
        predicted = ltv.expected_purchases(
            fitted, LTV_HOLDOUT_WEEKS, check["frequency"], check["recency"], check["T"]
        ).sum()
        actual = check["frequency_holdout"].sum()
        holdout_error = round(float((predicted - actual) / actual * 100), 1) if actual else None
    rfm = ltv.rfm_summary(
        days["customer_id"], days["day"], days["revenue"], calibration_end=through
    )
    bgnbd = ltv.fit_bgnbd(rfm["frequency"], rfm["recency"], rfm["T"])
    gg = ltv.fit_gamma_gamma(rfm["frequency"], rfm["monetary_value"])
    values = ltv.customer_ltv(
        bgnbd, gg, rfm["frequency"], rfm["recency"], rfm["T"], rfm["monetary_value"],
        horizon_units=LTV_HORIZON_WEEKS, discount_rate_per_unit=LTV_WEEKLY_DISCOUNT,
    )  # fmt: skip
    purchases = ltv.expected_purchases(
        bgnbd, LTV_HORIZON_WEEKS, rfm["frequency"], rfm["recency"], rfm["T"]
    )
    alive = ltv.probability_alive(bgnbd, rfm["frequency"], rfm["recency"], rfm["T"])
    version = f"ltv-bgnbd-gg-1-{through:%Y%m%d}"
    now = utcnow()
    rows = [
        {
            "tenant_id": tenant_id,
            "customer_sk": int(sk),
            "predicted_ltv": Decimal(str(round(float(v), 2))),
            "expected_purchases": float(n),
            "probability_alive": float(a),
            "model_version": version,
            "created_at": now,
        }
        for sk, v, n, a in zip(rfm.index, values, purchases, alive, strict=True)
    ]
    _store(session, CustomerLtvScore, tenant_id, rows)
    metrics = {
        "r": round(bgnbd.r, 4),
        "alpha": round(bgnbd.alpha, 4),
        "a": round(bgnbd.a, 4),
        "b": round(bgnbd.b, 4),
        "p": round(gg.p, 4),
        "q": round(gg.q, 4),
        "gamma": round(gg.gamma, 4),
        "horizon_weeks": LTV_HORIZON_WEEKS,
        "holdout_weeks": LTV_HOLDOUT_WEEKS,
        "holdout_error_pct": holdout_error,
        "average_ltv": round(float(np.mean(values)), 2),
        "as_of": through.isoformat(),
    }
    _run(session, tenant_id, "ltv", version, metrics)
    return Trained("ltv", version, len(rows), metrics)


TRAINERS: dict[str, Callable[[Session, int, date], Trained]] = {
    "churn": train_churn,
    "demand": train_demand,
    "ltv": train_ltv,
}


def train(session: Session, tenant_id: int, which: str = "all") -> list[Trained]:
    """Train one model or all three; raises `ml.NotEnoughData` when there is nothing to learn."""
    if which != "all" and which not in TRAINERS:
        raise ValueError(f"model must be one of {', '.join(MODELS)} or all")
    through = service.data_bounds(session, tenant_id)[1]
    if through is None:
        raise ml.NotEnoughData("the warehouse has no sales yet: load orders first")
    names = MODELS if which == "all" else (which,)
    return [TRAINERS[name](session, tenant_id, through) for name in names]
