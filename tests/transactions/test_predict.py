"""The trained delay model: it does at least as well as the baseline on deals it never saw, its
probabilities mean what they say, it survives storage, the tenant's own model wins over the
global one, outcomes are scored, and `doorstep train delay` reports both models."""

from __future__ import annotations

import pickle
import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from doorstep.cli import app, run_migrations
from doorstep.config import get_settings
from doorstep.platform.auth import Tenant
from doorstep.platform.db import make_engine, make_sessionmaker, transaction
from doorstep.transactions import predict, rules, simulator
from doorstep.transactions.models import DelayModel, EscrowStatus, Prediction, Transaction
from tests.conftest import Brokerage
from tests.databases import fresh_database


@pytest.fixture(scope="module")
def model() -> predict.TrainedDelayModel:
    rows, _ = predict.simulated_rows(1500, seed=21, last_contract=date(2026, 6, 30))
    return predict.train(rows, seed=21)


def test_trained_model_beats_the_baseline_on_held_out_deals(
    model: predict.TrainedDelayModel,
) -> None:
    m = model.metrics
    base, trained = m["baseline"], m["trained"]
    assert 350 <= m["held_out"]["deals"] <= 375
    assert m["held_out"]["snapshots"] > 1000
    assert trained["brier"] < base["brier"]
    assert trained["roc_auc"] >= base["roc_auc"]
    assert trained["closing_mae_days"] <= base["closing_mae_days"]
    # Signal, not a giveaway: the simulator's outcomes stay uncertain to the model.
    assert 0.7 < trained["roc_auc"] < 0.97
    assert trained["brier"] > 0.05
    for side in (base, trained):
        assert set(side) >= {"accuracy", "roc_auc", "brier", "closing_mae_days"}


def test_probabilities_are_calibrated(model: predict.TrainedDelayModel) -> None:
    rows, _ = predict.simulated_rows(600, seed=99, last_contract=date(2026, 6, 30))
    probability, _ = model.predict([r.facts for r in rows], [None] * len(rows))
    truth = [r.delayed for r in rows]
    assert all(0 <= p <= 1 for p in probability)
    # On fresh deals the average forecast matches the share that went wrong...
    assert abs(float(probability.mean()) - sum(truth) / len(truth)) < 0.04
    # ...and so does each band of forecasts with enough deals in it.
    for band in predict.calibration_table(truth, [float(p) for p in probability]):
        if band["n"] >= 150:
            assert abs(band["predicted"] - band["observed"]) < 0.1, band
    # Deals that went wrong were forecast higher than the ones that did not.
    late = [p for p, t in zip(probability, truth, strict=True) if t]
    fine = [p for p, t in zip(probability, truth, strict=True) if not t]
    assert sum(late) / len(late) > 2 * sum(fine) / len(fine)


def _facts(model_day: date) -> rules.TransactionFacts:
    deal = simulator.simulate_deal(random.Random(4), contract_date=model_day, loan_type="fha")
    return simulator.facts_at(deal, model_day + timedelta(days=20))


def test_storage_round_trip_and_tenant_model_first(
    db: Session, brokerage: Brokerage, rival: Brokerage, model: predict.TrainedDelayModel
) -> None:
    facts = _facts(date(2026, 3, 2))
    # No model stored: the baseline answers.
    assert predict.forecast(db, tenant_id=brokerage.tenant.id, facts=facts).model_version == (
        rules.BASELINE_VERSION
    )
    global_model = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own object
    global_model.version = "gbm-sim-test-global"
    own = pickle.loads(pickle.dumps(model))  # noqa: S301
    own.version, own.trained_on = "gbm-alpha-test-own", "tenant"
    predict.store(db, global_model, tenant_id=None)
    predict.store(db, own, tenant_id=brokerage.tenant.id)
    predict._cache.clear()  # read the blobs back, as a fresh process would

    mine = predict.load_active(db, brokerage.tenant.id)
    theirs = predict.load_active(db, rival.tenant.id)
    assert mine is not None
    assert mine.version == "gbm-alpha-test-own"
    assert theirs is not None
    assert theirs.version == "gbm-sim-test-global"
    before, _ = model.predict([facts], [None])
    after, _ = mine.predict([facts], [None])
    assert float(after[0]) == pytest.approx(float(before[0]))

    answer = predict.forecast(db, tenant_id=brokerage.tenant.id, facts=facts)
    assert answer.model_version == "gbm-alpha-test-own"
    assert answer.closing_date_low <= answer.predicted_closing_date <= answer.closing_date_high
    assert answer.predicted_closing_date > facts.today
    assert answer.confidence == pytest.approx(
        max(answer.delay_probability, 1 - answer.delay_probability), abs=1e-3
    )
    assert set(answer.factors) == set(rules.DELAY_WEIGHTS)

    # A newer global model replaces the old one; the tenant's own is untouched.
    newer = pickle.loads(pickle.dumps(model))  # noqa: S301
    newer.version = "gbm-sim-test-newer"
    predict.store(db, newer, tenant_id=None)
    versions = select(DelayModel.version, DelayModel.is_active)
    active: dict[str, bool] = dict(db.execute(versions).all())
    assert active["gbm-sim-test-global"] is False
    assert active["gbm-sim-test-newer"] is True
    assert active["gbm-alpha-test-own"] is True
    latest = predict.load_active(db, rival.tenant.id)
    assert latest is not None
    assert latest.version == "gbm-sim-test-newer"


def test_an_unreadable_model_falls_back_to_the_baseline(db: Session, brokerage: Brokerage) -> None:
    db.add(
        DelayModel(
            tenant_id=brokerage.tenant.id,
            version="gbm-broken-test",
            trained_on="tenant",
            samples=1,
            metrics={},
            blob=b"not a pickle",
        )
    )
    db.flush()
    facts = _facts(date(2026, 3, 2))
    answer = predict.forecast(db, tenant_id=brokerage.tenant.id, facts=facts)
    assert answer.model_version == rules.BASELINE_VERSION


def test_a_deal_past_its_target_is_certainly_late(model: predict.TrainedDelayModel) -> None:
    deal = simulator.simulate_deal(
        random.Random(8), contract_date=date(2026, 1, 5), loan_type="conventional"
    )
    facts = simulator.facts_at(deal, deal.contract_date + timedelta(days=10))
    overdue = rules.TransactionFacts(
        milestones=facts.milestones,
        today=deal.target_closing_date + timedelta(days=3),
        contract_date=facts.contract_date,
        target_closing_date=facts.target_closing_date,
        loan_type=facts.loan_type,
        last_communication=facts.last_communication,
    )
    answer = model.forecast(overdue)
    assert answer.delay_probability == 1.0
    assert answer.predicted_closing_date > overdue.today


def _deal(db: Session, b: Brokerage, ref: str, target: date) -> Transaction:
    tx = Transaction(
        tenant_id=b.tenant.id,
        transaction_id=ref,
        agent_id=b.agent.id,
        property_address="1 Test Way",
        buyer_name="Pat Doe",
        purchase_price=Decimal(500_000),
        loan_type="conventional",
        contract_date=target - timedelta(days=44),
        target_closing_date=target,
    )
    db.add(tx)
    db.flush()
    return tx


def _predict(db: Session, tx: Transaction, version: str, probability: float, closing: date) -> None:
    db.add(
        Prediction(
            tenant_id=tx.tenant_id,
            transaction_id=tx.id,
            model_version=version,
            delay_probability=probability,
            predicted_closing_date=closing,
            closing_date_low=closing - timedelta(days=2),
            closing_date_high=closing + timedelta(days=2),
            confidence=max(probability, 1 - probability),
        )
    )


def test_outcomes_are_recorded_and_scored_per_model_version(
    db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    target = date(2026, 5, 1)
    late = _deal(db, brokerage, "T-LATE", target)
    on_time = _deal(db, brokerage, "T-ONTIME", target)
    dropped = _deal(db, brokerage, "T-DROP", target)
    still_open = _deal(db, brokerage, "T-OPEN", target)
    elsewhere = _deal(db, rival, "T-RIVAL", target)
    _predict(db, late, "v1", 0.8, target + timedelta(days=4))  # right, 1 day off
    _predict(db, late, "v2", 0.3, target)  # wrong, 5 days off
    _predict(db, on_time, "v1", 0.6, target + timedelta(days=3))  # wrong, 3 days off
    _predict(db, on_time, "v2", 0.1, target)  # right, exact
    _predict(db, dropped, "v1", 0.4, target)  # wrong; no closing date to score
    _predict(db, still_open, "v1", 0.9, target)  # not scored yet
    _predict(db, elsewhere, "v1", 0.0, target)  # another tenant's
    db.flush()

    late.escrow_status, late.actual_closing_date = EscrowStatus.closed, target + timedelta(days=5)
    on_time.escrow_status, on_time.actual_closing_date = EscrowStatus.closed, target
    dropped.escrow_status = EscrowStatus.cancelled
    for tx in (late, on_time, dropped, still_open):
        predict.record_outcome(db, transaction=tx)
    db.flush()

    outcomes = {
        (p.transaction_id, p.model_version): (p.outcome_delayed, p.outcome_closing_date)
        for p in db.scalars(select(Prediction).where(Prediction.tenant_id == brokerage.tenant.id))
    }
    assert outcomes[(late.id, "v1")] == (True, target + timedelta(days=5))
    assert outcomes[(on_time.id, "v2")] == (False, target)
    assert outcomes[(dropped.id, "v1")] == (True, None)
    assert outcomes[(still_open.id, "v1")] == (None, None)

    live = {r["model_version"]: r for r in predict.live_accuracy(db, tenant_id=brokerage.tenant.id)}
    v1, v2 = live["v1"], live["v2"]
    assert (v1["predictions"], v1["scored"], v1["deals"]) == (4, 3, 3)
    assert v1["accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert v1["brier"] == pytest.approx((0.2**2 + 0.6**2 + 0.6**2) / 3, abs=1e-4)
    assert v1["closing_mae_days"] == pytest.approx((1 + 3) / 2)
    assert (v2["scored"], v2["accuracy"]) == (2, 0.5)
    assert v2["brier"] == pytest.approx((0.7**2 + 0.1**2) / 2, abs=1e-4)
    assert v2["closing_mae_days"] == pytest.approx(2.5)
    assert v2["interval_coverage"] == pytest.approx(0.5)
    assert v1["active"] is False
    assert set(live) == {"v1", "v2"}


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with fresh_database(tmp_path, "train") as url:
        run_migrations(url)
        monkeypatch.setenv("DOORSTEP_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
        get_settings.cache_clear()


def test_train_delay_command_reports_both_models(cli_database: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", "delay", "--simulated", "300", "--seed", "3"])
    assert result.exit_code == 0, result.output
    for label in ("Accuracy", "ROC AUC", "Brier score", "Closing-date MAE (days)"):
        line = next(line for line in result.output.splitlines() if label in line)
        numbers = [w for w in line.replace("│", " ").split() if w.replace(".", "").isdigit()]
        assert len(numbers) == 2, line  # baseline and trained
    assert "baseline" in result.output
    assert "trained" in result.output
    engine = make_engine(cli_database)
    with make_sessionmaker(engine)() as session:
        row = session.scalar(select(DelayModel))
        assert row is not None
        assert row.is_active
        assert row.tenant_id is None
        assert row.trained_on == "simulator"
        assert row.version in result.output.replace("\n", "")
        assert set(row.metrics["trained"]) >= {"accuracy", "roc_auc", "brier", "closing_mae_days"}

    # A tenant with too few closed deals is told so and gets the simulator's model.
    with transaction(make_sessionmaker(engine)) as session:
        session.add(Tenant(slug="tiny", name="Tiny Homes"))
    small = runner.invoke(app, ["train", "delay", "--tenant", "tiny", "--simulated", "200"])
    assert small.exit_code == 0, small.output
    assert "fewer than 200" in small.output
    assert runner.invoke(app, ["train", "delay", "--tenant", "nope"]).exit_code == 2
    engine.dispose()
