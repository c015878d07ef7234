"""Training on the warehouse: the three models store their predictions and runs, a second run
replaces the first's predictions, the dashboard's insights read them, and an empty warehouse
is refused with a reason."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.analytics import ml, rules, service, tasks, training
from doorstep.analytics.models import (
    CustomerChurnScore,
    CustomerLtvScore,
    DemandForecast,
    DimCustomer,
    FactSales,
    ModelRun,
)
from doorstep.analytics.warehouse import Loader, LocationRecord, SaleLine, SaleOrder
from doorstep.platform import jobs
from doorstep.platform.jobs import Job
from tests.conftest import Brokerage

END = date(2026, 6, 30)
MENU = [("latte", "Latte", "4.50"), ("mocha", "Mocha", "5.25"), ("bagel", "Bagel", "3.00")]


def shop_history(seed: int = 3, customers: int = 300, days: int = 300) -> list[SaleOrder]:
    """Regulars who keep coming and others who stop, plus anonymous walk-ins."""
    rng = random.Random(seed)
    start = END - timedelta(days=days - 1)
    orders: list[SaleOrder] = []

    def order(day: date, customer: str | None) -> None:
        hour = rng.choice([7, 8, 8, 9, 12, 12, 13, 15])
        ts = datetime(day.year, day.month, day.day, hour, rng.randrange(60), tzinfo=UTC)
        key, name, price = rng.choice(MENU)
        qty = rng.randint(1, 2)
        lines = (SaleLine(key, name, Decimal(qty), Decimal(price) * qty),)
        orders.append(SaleOrder("square", f"o{len(orders)}", "main", ts, lines, customer))

    for c in range(customers):
        first = start + timedelta(days=rng.randrange(days - 60))
        stop = first + timedelta(days=rng.randrange(20, 400))
        gap = rng.choice([2, 4, 7, 14])
        day = first
        while day <= min(stop, END):
            order(day, f"c{c}")
            day += timedelta(days=max(1, int(rng.expovariate(1 / gap))))
    for n in range(days):
        for _ in range(6):
            order(start + timedelta(days=n), None)
    return orders


@pytest.fixture
def trained_shop(db: Session, brokerage: Brokerage) -> int:
    loader = Loader(db, brokerage.tenant.id)
    loader.upsert_locations([LocationRecord("square", "main", "Main St", "UTC")])
    loader.load_orders(shop_history())
    db.flush()
    return brokerage.tenant.id


def test_training_stores_every_model_with_its_figures(db: Session, trained_shop: int) -> None:
    results = {r.model: r for r in training.train(db, trained_shop)}
    assert set(results) == {"churn", "demand", "ltv"}
    customers = db.scalar(select(func.count()).select_from(DimCustomer))
    assert results["churn"].rows == customers
    assert 0.5 < results["churn"].metrics["auc"] <= 1
    assert results["demand"].rows == 3 * 7  # each product, the next 7 days
    assert results["demand"].metrics["mase_model"] > 0
    assert results["ltv"].rows == customers
    assert results["ltv"].metrics["r"] > 0
    forecast_days = set(db.scalars(select(DemandForecast.forecast_date)))
    assert forecast_days == {END + timedelta(days=i) for i in range(1, 8)}
    scores = dict(
        db.execute(select(CustomerChurnScore.customer_sk, CustomerChurnScore.probability)).all()
    )
    assert all(0 <= p <= 1 for p in scores.values())
    assert all(v >= 0 for v in db.scalars(select(CustomerLtvScore.predicted_ltv)))

    board = service.dashboard(
        db, service.Filters(trained_shop, rules.Period(END - timedelta(days=29), END, "x"))
    )
    ai = board["insights"]
    assert ai["available"] is True
    # The alert counts customers who bought in the last 90 days of the data, from the facts.
    recent = set(
        db.scalars(
            select(FactSales.customer_sk)
            .where(FactSales.sale_date > END - timedelta(days=90))
            .distinct()
        )
    ) - {None}
    assert ai["churn"]["scored"] == len(recent)
    assert ai["churn"]["at_risk"] == sum(1 for sk in recent if scores[sk] > 0.7)
    assert 0 < len(recent) < len(scores)
    assert ai["churn"]["model_version"] == results["churn"].model_version
    assert ai["demand"]["product"] in {name for _, name, _ in MENU}
    average = db.scalar(select(func.avg(CustomerLtvScore.predicted_ltv)))
    assert float(ai["ltv"]["average"]) == pytest.approx(float(average), abs=0.01)


def test_a_second_run_replaces_the_predictions(db: Session, trained_shop: int) -> None:
    training.train(db, trained_shop, "ltv")
    first = db.scalar(select(func.count()).select_from(CustomerLtvScore))
    training.train(db, trained_shop, "ltv")
    assert db.scalar(select(func.count()).select_from(CustomerLtvScore)) == first
    assert db.scalar(select(func.count()).select_from(ModelRun)) == 2  # the history stays


def test_an_empty_warehouse_cannot_be_trained(db: Session, brokerage: Brokerage) -> None:
    with pytest.raises(ml.NotEnoughData, match="no sales yet"):
        training.train(db, brokerage.tenant.id)
    with pytest.raises(ValueError, match="model must be one of"):
        training.train(db, brokerage.tenant.id, "weather")


def test_the_weekly_job_trains_every_tenant_with_sales(
    db: Session, trained_shop: int, rival: Brokerage
) -> None:
    weekly = [schedule for name, schedule, _ in jobs._schedules if name == tasks.TRAIN_ALL]
    assert len(weekly) == 1
    start = datetime(2026, 1, 5)  # a Monday
    fires = [weekly[0](start + timedelta(minutes=m)) for m in range(14 * 24 * 60)]
    assert sum(fires) == 2  # once a week

    tasks.train_all(db)
    tasks.train_all(db)  # the same week: no second job
    queued = db.scalars(select(Job).where(Job.name == tasks.TRAIN)).all()
    assert [job.args for job in queued] == [{"tenant_id": trained_shop}]  # not the empty rival

    tasks.train_job(db, tenant_id=trained_shop)
    assert {run.model for run in db.scalars(select(ModelRun))} == {"churn", "demand", "ltv"}
    tasks.train_job(db, tenant_id=rival.tenant.id)  # no sales: skipped, not raised
    assert db.scalar(select(func.count()).select_from(ModelRun)) == 3
