"""The churn and demand models on synthetic data drawn from fixed seeds: churn ranks customers who
stop buying above loyal ones on a cutoff held out in time and never looks past its cutoff; demand
forecasts every product for the seven days after as_of, with intervals that cover about 80% of a
holdout, and beats the weekly seasonal naive. Run with -s to see the figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from doorstep.analytics import ml
from tests.conftest import record_figure

# --- churn ---------------------------------------------------------------------------------------

CDNOW = Path(__file__).resolve().parent.parent / "data" / "cdnow" / "CDNOW_sample.txt"
CHURN_START = datetime(2026, 1, 1, tzinfo=UTC)
CHURN_DAYS = 420


@dataclass(frozen=True)
class ChurnData:
    orders: pd.DataFrame
    loyal: frozenset[int]
    stops: dict[int, datetime]  # a churner's last day of buying
    as_of: datetime


def churn_data(seed: int = 7, customers: int = 600) -> ChurnData:
    """Half loyal customers, who buy every few days to the end; half churners, who buy the same
    way from their start until a random day (within the period or, for some, after it)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, datetime, float]] = []
    loyal: set[int] = set()
    stops: dict[int, datetime] = {}
    for customer in range(customers):
        is_loyal = bool(rng.random() < 0.5)
        start = rng.uniform(0, 120)
        stop = CHURN_DAYS if is_loyal else rng.uniform(60, CHURN_DAYS + 60)
        if is_loyal:
            loyal.add(customer)
        else:
            stops[customer] = CHURN_START + timedelta(days=float(stop))
        gap = rng.uniform(2, 7)
        basket = rng.uniform(5, 40)
        t = start
        while t < min(stop, CHURN_DAYS):
            rows.append(
                (customer, CHURN_START + timedelta(days=float(t)), float(rng.gamma(4, basket / 4)))
            )
            t += rng.exponential(gap)
    orders = pd.DataFrame(rows, columns=["customer_id", "ts", "revenue"])
    return ChurnData(orders, frozenset(loyal), stops, CHURN_START + timedelta(days=CHURN_DAYS))


@pytest.fixture(scope="module")
def churn() -> tuple[ChurnData, ml.ChurnResult]:
    data = churn_data()
    return data, ml.train_churn(data.orders, data.as_of)


def test_churn_ranks_on_a_cutoff_held_out_in_time(
    churn: tuple[ChurnData, ml.ChurnResult],
) -> None:
    _, result = churn
    print(
        f"\nchurn: AUC {result.auc:.3f} on the validation cutoff "
        f"({result.n_train} training, {result.n_validation} validation customers)"
    )
    record_figure("churn: held-out AUC on synthetic customers", result.auc)
    assert result.auc > 0.8
    assert result.n_train > 400
    assert result.n_validation > 400
    assert result.model_version.startswith(ml.CHURN_MODEL)
    assert len(result.model_version) <= 64  # predictions.*.model_version is String(64)


def test_churn_scores_every_customer_with_a_probability(
    churn: tuple[ChurnData, ml.ChurnResult],
) -> None:
    data, result = churn
    scores = result.scores
    assert list(scores.columns) == ["customer_id", "probability", "recency_days", "frequency"]
    assert set(scores["customer_id"]) == set(data.orders["customer_id"])
    assert scores["customer_id"].is_unique
    assert scores["probability"].between(0.0, 1.0).all()
    assert (scores["recency_days"] > 0).all()
    assert (scores["frequency"] >= 1).all()

    by_id = scores.set_index("customer_id")["probability"]
    loyal = by_id[by_id.index.isin(data.loyal)]
    gone = [c for c, stop in data.stops.items() if stop < data.as_of - timedelta(days=30)]
    churned = by_id[by_id.index.isin(gone)]
    print(f"churn: mean probability loyal {loyal.mean():.3f}, churned {churned.mean():.3f}")
    assert loyal.mean() + 0.3 < churned.mean()


def test_churn_features_use_only_orders_before_the_cutoff() -> None:
    data = churn_data(seed=11, customers=200)
    cutoff = data.as_of - timedelta(days=100)
    features = ml.churn_features(data.orders, cutoff)
    assert list(features.columns) == list(ml.CHURN_FEATURES)

    # Orders at and after the cutoff (existing customers and a new one) change nothing.
    later = pd.DataFrame(
        {
            "customer_id": [0, 1, 1, 2, 9999],
            "ts": [
                cutoff,
                cutoff + timedelta(seconds=1),
                cutoff + timedelta(days=5),
                cutoff + timedelta(days=50),
                cutoff + timedelta(days=1),
            ],
            "revenue": [1000.0, 1000.0, 1000.0, 1000.0, 1000.0],
        }
    )
    more = pd.concat([data.orders, later], ignore_index=True)
    pd.testing.assert_frame_equal(ml.churn_features(more, cutoff), features)
    assert 9999 not in features.index

    # The same as computing from the earlier orders only; naive UTC reads as UTC.
    before = data.orders[data.orders["ts"] < cutoff]
    pd.testing.assert_frame_equal(ml.churn_features(before, cutoff), features)
    naive = data.orders.assign(ts=data.orders["ts"].dt.tz_localize(None))
    pd.testing.assert_frame_equal(
        ml.churn_features(naive, cutoff.replace(tzinfo=None)), features, check_exact=False
    )

    # A customer's figures, by hand.
    customer = int(before["customer_id"].iloc[0])
    mine = before[before["customer_id"] == customer]["ts"]
    row = features.loc[customer]
    assert row["frequency"] == len(mine)
    assert row["recency_days"] == pytest.approx((cutoff - mine.max()) / timedelta(days=1))
    assert row["tenure_days"] == pytest.approx((cutoff - mine.min()) / timedelta(days=1))
    in_90 = int((mine >= cutoff - timedelta(days=90)).sum())
    assert row["orders_90d"] == in_90


def test_churn_training_ignores_orders_from_as_of_on(
    churn: tuple[ChurnData, ml.ChurnResult],
) -> None:
    data, result = churn
    future = pd.DataFrame(
        {
            "customer_id": sorted(data.stops)[:50],
            "ts": [data.as_of + timedelta(days=d % 20) for d in range(50)],
            "revenue": 50.0,
        }
    )
    again = ml.train_churn(pd.concat([data.orders, future], ignore_index=True), data.as_of)
    assert again.auc == result.auc
    pd.testing.assert_frame_equal(again.scores, result.scores)


def test_churn_needs_enough_customers_of_both_kinds() -> None:
    data = churn_data(seed=3, customers=20)
    with pytest.raises(ml.NotEnoughData, match="at least 100"):
        ml.train_churn(data.orders, data.as_of)

    # Everybody keeps buying: nobody to learn churn from.
    days = np.arange(0, CHURN_DAYS, 3)
    loyal_only = pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(150), len(days)),
            "ts": np.tile([CHURN_START + timedelta(days=int(d)) for d in days], 150),
            "revenue": 10.0,
        }
    )
    with pytest.raises(ml.NotEnoughData, match="churned"):
        ml.train_churn(loyal_only, CHURN_START + timedelta(days=CHURN_DAYS))
    assert issubclass(ml.NotEnoughData, ValueError)


def test_churn_on_the_cdnow_purchase_log() -> None:
    """Real purchases (tests/data/cdnow, 2,357 customers, January 1997 to June 1998): fewer signs
    than the synthetic two kinds, and most customers bought once at the start. Only customers
    with an order in the year before a cutoff count; counting every customer ever seen would
    add hundreds of long-gone ones who are trivially 'churned' and inflate the AUC."""
    raw = pd.read_csv(
        CDNOW,
        sep=r"\s+",
        header=None,
        names=["customer_id", "_", "date", "units", "revenue"],
        dtype={"date": str},
    )
    orders = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "ts": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "revenue": raw["revenue"],
        }
    )
    result = ml.train_churn(orders, datetime(1998, 7, 1))
    everyone = ml.train_churn(orders, datetime(1998, 7, 1), active_days=10_000)
    print(
        f"\nchurn on CDNOW: AUC {result.auc:.3f} ({result.n_train} training, "
        f"{result.n_validation} validation customers); counting every customer ever seen "
        f"{everyone.auc:.3f} ({everyone.n_validation})"
    )
    record_figure("churn: held-out AUC on CDNOW", result.auc)
    assert result.auc > 0.65
    assert result.n_validation < everyone.n_validation
    assert len(result.scores) == orders["customer_id"].nunique()


# --- demand --------------------------------------------------------------------------------------

DEMAND_START = date(2026, 1, 5)
DEMAND_DAYS = 200


def demand_data(seed: int = 3, products: int = 16) -> pd.DataFrame:
    """Daily sales with a weekend peak, a trend and noise, and one product that never sells.
    Days without a sale are missing rows, as in the warehouse."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(DEMAND_START, periods=DEMAND_DAYS, freq="D")
    weekend = np.asarray(dates.day_of_week >= 5)
    step = np.arange(DEMAND_DAYS)
    frames = []
    for product in range(products):
        level = rng.uniform(5, 60)
        trend = rng.uniform(-0.02, 0.08) * level / 30
        peak = rng.uniform(0.3, 0.8)
        mean = (level + trend * step) * np.where(weekend, 1 + peak, 1.0)
        quantity = np.round(np.clip(rng.normal(mean, 0.15 * mean), 0, None))
        frames.append(
            pd.DataFrame({"product_id": f"p{product}", "date": dates.date, "quantity": quantity})
        )
    frames.append(pd.DataFrame({"product_id": "never", "date": dates.date[:1], "quantity": [0.0]}))
    daily = pd.concat(frames, ignore_index=True)
    return daily[(daily["quantity"] > 0) | (daily["product_id"] == "never")]


DEMAND_AS_OF = DEMAND_START + timedelta(days=DEMAND_DAYS - 8)  # 7 days of actuals after it


@pytest.fixture(scope="module")
def demand() -> tuple[pd.DataFrame, ml.DemandResult]:
    daily = demand_data()
    return daily, ml.forecast_demand(daily, DEMAND_AS_OF)


def test_demand_forecasts_each_product_for_the_next_seven_days(
    demand: tuple[pd.DataFrame, ml.DemandResult],
) -> None:
    daily, result = demand
    forecasts = result.forecasts
    assert list(forecasts.columns) == ["product_id", "date", "yhat", "lower", "upper"]
    expected_days = [DEMAND_AS_OF + timedelta(days=d) for d in range(1, 8)]
    assert set(forecasts["product_id"]) == set(daily["product_id"])
    for _, rows in forecasts.groupby("product_id"):
        assert list(rows["date"]) == expected_days
    assert (forecasts["lower"] >= 0).all()
    assert (forecasts["lower"] <= forecasts["yhat"]).all()
    assert (forecasts["yhat"] <= forecasts["upper"]).all()
    assert result.model_version.startswith(ml.DEMAND_MODEL)
    assert len(result.model_version) <= 64

    never = forecasts[forecasts["product_id"] == "never"]
    assert never["yhat"].max() < 0.05
    assert never["upper"].max() < 0.5


def test_demand_interval_covers_about_eighty_percent_of_a_holdout(
    demand: tuple[pd.DataFrame, ml.DemandResult],
) -> None:
    daily, result = demand
    actual = daily[daily["product_id"] != "never"]
    holdout = result.forecasts.merge(actual, on=["product_id", "date"], how="inner")
    assert len(holdout) == 16 * 7
    inside = (holdout["quantity"] >= holdout["lower"]) & (holdout["quantity"] <= holdout["upper"])
    coverage = float(inside.mean())
    error = float((holdout["quantity"] - holdout["yhat"]).abs().mean() / holdout["quantity"].mean())
    print(
        f"\ndemand holdout (7 days after as_of): 80% interval coverage {coverage:.2f}, "
        f"MAE / mean {error:.3f}; "
        f"backtest interval coverage {result.backtest.interval_coverage:.2f}"
    )
    record_figure("demand: holdout coverage of the 80% interval", coverage)
    assert 0.6 <= coverage <= 0.95
    assert 0.6 <= result.backtest.interval_coverage <= 0.95


def test_demand_beats_the_seasonal_naive_in_the_backtest(
    demand: tuple[pd.DataFrame, ml.DemandResult],
) -> None:
    _, result = demand
    backtest = result.backtest
    print(
        f"\ndemand backtest ({backtest.weeks} weekly origins): MASE model "
        f"{backtest.mase_model:.3f}, seasonal naive {backtest.mase_seasonal_naive:.3f}"
    )
    record_figure("demand: backtest MASE, model", backtest.mase_model)
    record_figure("demand: backtest MASE, seasonal naive", backtest.mase_seasonal_naive)
    assert backtest.weeks == 4
    assert backtest.mase_model < backtest.mase_seasonal_naive
    assert 0 < backtest.mase_model < 1.0


def test_demand_ignores_data_after_as_of(demand: tuple[pd.DataFrame, ml.DemandResult]) -> None:
    daily, result = demand
    known = daily[pd.to_datetime(daily["date"]) <= pd.Timestamp(DEMAND_AS_OF)]
    again = ml.forecast_demand(known, DEMAND_AS_OF)
    pd.testing.assert_frame_equal(again.forecasts, result.forecasts)
    assert again.backtest == result.backtest


def test_demand_needs_some_history() -> None:
    daily = demand_data(products=2)
    recent = daily[pd.to_datetime(daily["date"]) <= pd.Timestamp(DEMAND_START + timedelta(days=9))]
    with pytest.raises(ml.NotEnoughData):
        ml.forecast_demand(recent, DEMAND_START + timedelta(days=9))
    with pytest.raises(ml.NotEnoughData, match="no sales"):
        ml.forecast_demand(daily, DEMAND_START - timedelta(days=1))

    # Six weeks of sales: the earliest backtest origins lack history and are skipped.
    young = ml.forecast_demand(daily, DEMAND_START + timedelta(days=44))
    assert 0 < young.backtest.weeks < 4
    assert len(young.forecasts) == 3 * 7
