"""The trained delay model: features of a deal, a calibrated classifier for P(late or cancelled),
quantile regressors for the closing date, a held-out comparison with the transparent baseline,
storage per tenant, and the live score of every prediction once its deal ends."""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
import pickle
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cache
from typing import Any

import numpy as np
from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from doorstep.platform.db import utcnow
from doorstep.transactions import rules, simulator
from doorstep.transactions.models import (
    DelayModel,
    EscrowStatus,
    Milestone,
    Prediction,
    Transaction,
    TransactionEvent,
)

log = logging.getLogger(__name__)

QUANTILES = (0.1, 0.5, 0.9)
# A tenant trains its own model once it has this many ended deals; before, the simulator's.
MIN_TENANT_DEALS = 200
MARKET_WINDOW_DAYS = 90
MARKET_MIN_DEALS = 10
FACTOR_NAMES = tuple(rules.DELAY_WEIGHTS)
FEATURE_NAMES: tuple[str, ...] = (
    *FACTOR_NAMES,
    *(f"loan_{t}" for t in rules.LOAN_TYPES),
    "term_days",
    "days_elapsed",
    "days_remaining",
    "elapsed_share",
    "progress",
    "behind_plan",
    "overdue_count",
    "worst_overdue_days",
    "delay_count",
    "delayed_now",
    "in_progress_count",
    "completed_lateness_days",
    "days_since_contact",
    "stakeholders_waiting",
    "stakeholders_waiting_share",
    "loan_approved",
)

Progress = Callable[[str], None]


@cache
def _threadpools() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_thread() -> Any:
    """Run scikit-learn's OpenMP code on one thread: on a small machine shared with a web server
    (or with other jobs), its thread pool spins against them and runs many times slower."""
    return _threadpools().limit(limits=1, user_api="openmp")


def _quiet(_step: str) -> None:
    return None


# --- features ----------------------------------------------------------------------------------


def features(
    facts: rules.TransactionFacts,
    *,
    market_delay_rate: float | None = None,
    ignore_stakeholders: bool = False,
) -> list[float]:
    """The numbers the model sees: the baseline's six factor scores and the raw state."""
    if ignore_stakeholders:
        facts = replace(facts, stakeholders={})
    factors = rules.delay_factors(facts, market_delay_rate=market_delay_rate)
    term = max(1, (facts.target_closing_date - facts.contract_date).days)
    elapsed = (facts.today - facts.contract_date).days
    total = sum(float(m.weight) for m in facts.milestones) or 1.0
    planned = sum(float(m.weight) for m in facts.milestones if m.target_date <= facts.today)
    progress = float(rules.progress(facts.milestones)) / 100
    overdue = facts.overdue
    completed = [
        (m.actual_date - m.target_date).days
        for m in facts.milestones
        if m.status == "completed"
        and m.actual_date is not None
        and m.milestone_type != "contract_signed"
    ]
    waiting = sum(1 for ready in facts.stakeholders.values() if not ready)
    approval = next((m for m in facts.milestones if m.milestone_type == "loan_approval"), None)
    return [
        *(factors[name] for name in FACTOR_NAMES),
        *(1.0 if facts.loan_type == t else 0.0 for t in rules.LOAN_TYPES),
        float(term),
        float(elapsed),
        float(facts.days_to_closing),
        elapsed / term,
        progress,
        planned / total - progress,
        float(len(overdue)),
        float(max((d for _, d in overdue), default=0)),
        float(facts.delay_count),
        float(sum(1 for m in facts.milestones if m.status == "delayed")),
        float(sum(1 for m in facts.milestones if m.status == "in_progress")),
        sum(completed) / len(completed) if completed else 0.0,
        float(facts.days_since_contact),
        float(waiting),
        waiting / len(facts.stakeholders) if facts.stakeholders else 0.0,
        1.0 if approval is None or approval.status in rules.DONE else 0.0,
    ]


# --- training rows -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """One deal looked at on one day, with how it ended."""

    deal: str  # rows of one deal stay on one side of the held-out split
    facts: rules.TransactionFacts
    delayed: bool  # closed after the target, or cancelled
    actual_closing_date: date | None  # None: cancelled
    market_delay_rate: float | None = None
    has_stakeholders: bool = True


def rows_from_simulation(
    deals: Sequence[simulator.SimulatedDeal],
    *,
    shares: Sequence[float] = simulator.SNAPSHOT_SHARES,
    prefix: str = "sim",
) -> list[TrainingRow]:
    rows = []
    for i, deal in enumerate(deals):
        for day in simulator.snapshot_days(
            deal.contract_date, deal.target_closing_date, deal.ended_on, shares
        ):
            rows.append(
                TrainingRow(
                    deal=f"{prefix}-{i}",
                    facts=simulator.facts_at(deal, day),
                    delayed=deal.delayed,
                    actual_closing_date=deal.actual_closing_date,
                )
            )
    return rows


def simulated_rows(
    count: int, *, seed: int, last_contract: date | None = None
) -> tuple[list[TrainingRow], list[simulator.SimulatedDeal]]:
    """`count` simulated deals signed over the three years before `last_contract`, as rows."""
    rng = random.Random(seed)
    end = last_contract or date.today()
    deals = simulator.simulate_book(
        rng, count=count, first_contract=end - timedelta(days=3 * 365), last_contract=end
    )
    return rows_from_simulation(deals), deals


def rows_from_tenant(
    session: Session, *, tenant_id: int, progress: Progress = _quiet
) -> tuple[list[TrainingRow], int]:
    """Training rows from a tenant's ended deals (closed or cancelled), replayed from their
    milestone rows and activity feed as they looked on each snapshot day. Returns the rows and
    the number of ended deals."""
    ended = (EscrowStatus.closed, EscrowStatus.cancelled)
    deals = list(
        session.scalars(
            select(Transaction)
            .where(Transaction.tenant_id == tenant_id, Transaction.escrow_status.in_(ended))
            .order_by(Transaction.id)
        )
    )
    progress(f"loaded {len(deals)} ended deals")
    milestones: dict[int, list[Milestone]] = {}
    for m in session.scalars(
        select(Milestone)
        .join(Transaction, Transaction.id == Milestone.transaction_id)
        .where(Transaction.tenant_id == tenant_id, Transaction.escrow_status.in_(ended))
    ):
        milestones.setdefault(m.transaction_id, []).append(m)
    events: dict[int, list[TransactionEvent]] = {}
    for e in session.scalars(
        select(TransactionEvent)
        .join(Transaction, Transaction.id == TransactionEvent.transaction_id)
        .where(Transaction.tenant_id == tenant_id, Transaction.escrow_status.in_(ended))
        .order_by(TransactionEvent.id)
    ):
        events.setdefault(e.transaction_id, []).append(e)
    progress("loaded milestones and activity")
    closings = sorted(
        (tx.actual_closing_date, tx.actual_closing_date > tx.target_closing_date)
        for tx in deals
        if tx.actual_closing_date is not None
    )
    closing_days = [d for d, _ in closings]
    late_sum = [0]
    for _, late in closings:
        late_sum.append(late_sum[-1] + int(late))

    def market_rate(day: date) -> float | None:
        # As the service computes it live: closings in the 90 days up to that day.
        lo = bisect.bisect_left(closing_days, day - timedelta(days=MARKET_WINDOW_DAYS))
        hi = bisect.bisect_right(closing_days, day)
        if hi - lo < MARKET_MIN_DEALS:
            return None
        return (late_sum[hi] - late_sum[lo]) / (hi - lo)

    rows = []
    for tx in deals:
        own = events.get(tx.id, [])
        end = simulator.ended_on(tx, own)
        if end is None or not milestones.get(tx.id):
            continue
        history = simulator.history_from_rows(tx, milestones[tx.id], own)
        cancelled = tx.escrow_status == EscrowStatus.cancelled
        delayed = cancelled or (
            tx.actual_closing_date is not None and tx.actual_closing_date > tx.target_closing_date
        )
        for day in simulator.snapshot_days(tx.contract_date, tx.target_closing_date, end):
            rows.append(
                TrainingRow(
                    deal=f"tx-{tx.id}",
                    facts=simulator.facts_on(history, day),
                    delayed=delayed,
                    actual_closing_date=None if cancelled else tx.actual_closing_date,
                    market_delay_rate=market_rate(day),
                    has_stakeholders=history.stakeholder_changes is not None,
                )
            )
    progress(f"built {len(rows)} snapshots")
    return rows, len(deals)


# --- the model ---------------------------------------------------------------------------------


@dataclass
class TrainedDelayModel:
    version: str
    family: str  # "gbm" or "logit"
    classifier: Any
    regressors: dict[float, Any]  # quantile -> regressor of (actual - target closing) days
    trained_on: str  # "simulator" or "tenant"
    samples: int
    ignore_stakeholders: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    feature_names: tuple[str, ...] = FEATURE_NAMES
    sklearn_version: str = ""

    def matrix(self, facts: Sequence[rules.TransactionFacts], rates: Sequence[float | None]) -> Any:
        return np.array(
            [
                features(f, market_delay_rate=r, ignore_stakeholders=self.ignore_stakeholders)
                for f, r in zip(facts, rates, strict=True)
            ],
            dtype=float,
        )

    def predict(
        self, facts: Sequence[rules.TransactionFacts], rates: Sequence[float | None]
    ) -> tuple[Any, dict[float, Any]]:
        """Delay probabilities and the slip quantiles (days past target) for many deals."""
        return self.predict_matrix(self.matrix(facts, rates))

    def predict_matrix(self, x: Any) -> tuple[Any, dict[float, Any]]:
        with one_thread():
            probability = self.classifier.predict_proba(x)[:, 1]
            slips = {q: self.regressors[q].predict(x) for q in QUANTILES}
        return probability, slips

    def forecast(
        self, facts: rules.TransactionFacts, *, market_delay_rate: float | None = None
    ) -> rules.DelayForecast:
        """One deal's forecast; the explanations (factors, risks, actions) are the rules'."""
        probability, slips = self.predict([facts], [market_delay_rate])
        p = float(probability[0])
        closing = next((m for m in facts.milestones if m.milestone_type == "closing_day"), None)
        if facts.days_to_closing < 0 and (closing is None or closing.status not in rules.DONE):
            p = 1.0  # past its target and still open: it is late, by definition
        low, mid, high = _closing_dates(facts, [slips[q][0] for q in QUANTILES])
        factors = rules.delay_factors(facts, market_delay_rate=market_delay_rate)
        risks = rules.risk_factors(factors)
        return rules.DelayForecast(
            model_version=self.version,
            delay_probability=round(p, 3),
            predicted_closing_date=mid,
            closing_date_low=low,
            closing_date_high=high,
            confidence=round(max(p, 1 - p), 3),
            factors=factors,
            risk_factors=risks,
            recommended_actions=rules.recommended_actions(facts, risks),
        )


def _closing_dates(facts: rules.TransactionFacts, slips: Sequence[float]) -> tuple[date, ...]:
    """Quantiles of slip as dates, never before tomorrow (an open deal has not closed today).
    Most deals close on their target day, so the 10% and 90% quantiles often coincide with the
    median; the interval is kept at least a day either side, and measured as shown."""
    earliest = facts.today + timedelta(days=1)
    low, mid, high = sorted(
        max(earliest, facts.target_closing_date + timedelta(days=round(float(s)))) for s in slips
    )
    one = timedelta(days=1)
    return max(earliest, min(low, mid - one)), mid, max(high, mid + one)


def _classifiers(seed: int, groups: Any, y: Any) -> dict[str, Any]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Calibration folds split by deal too: snapshots of one deal are not independent.
    folds = list(GroupKFold(n_splits=3).split(np.zeros(len(y)), y, groups))
    gbm = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.08,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    logit = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    return {
        "gbm": CalibratedClassifierCV(gbm, method="isotonic", cv=folds),
        "logit": CalibratedClassifierCV(logit, method="sigmoid", cv=folds),
    }


def _regressor(quantile: float, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="quantile",
        quantile=quantile,
        max_iter=100,
        learning_rate=0.08,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        early_stopping=False,
        random_state=seed,
    )


def _split(keys: Sequence[str], share: float, seed: int) -> set[str]:
    unique = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(unique))
    count = max(1, round(len(unique) * share))
    return {unique[i] for i in order[:count]}


def scores(
    y: Sequence[bool],
    probability: Sequence[float],
    predicted: Sequence[date],
    low: Sequence[date],
    high: Sequence[date],
    actual: Sequence[date | None],
) -> dict[str, float | None]:
    """Accuracy at 0.5, ROC AUC, Brier, and on deals that closed: the closing date's mean
    absolute error in days and how often the interval held the real date."""
    from sklearn.metrics import roc_auc_score

    truth = np.array(y, dtype=float)
    p = np.array(probability, dtype=float)
    closed = [i for i, a in enumerate(actual) if a is not None]
    errors = [abs((predicted[i] - actual[i]).days) for i in closed]  # type: ignore[operator]
    inside = [low[i] <= actual[i] <= high[i] for i in closed]  # type: ignore[operator]
    both = 0 < truth.sum() < len(truth)
    return {
        "accuracy": round(float(((p >= 0.5) == (truth == 1)).mean()), 4),
        "roc_auc": round(float(roc_auc_score(truth, p)), 4) if both else None,
        "brier": round(float(((p - truth) ** 2).mean()), 4),
        "closing_mae_days": round(float(np.mean(errors)), 2) if errors else None,
        "interval_coverage": round(float(np.mean(inside)), 4) if inside else None,
    }


def calibration_table(
    y: Sequence[bool], probability: Sequence[float], bins: int = 5
) -> list[dict[str, Any]]:
    """Predicted against observed share of late-or-cancelled, by band of predicted probability."""
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, p in enumerate(probability) if lo <= p < hi or (b == bins - 1 and p == 1)]
        if not idx:
            continue
        out.append(
            {
                "band": f"{lo:.1f}-{hi:.1f}",
                "n": len(idx),
                "predicted": round(float(np.mean([probability[i] for i in idx])), 3),
                "observed": round(float(np.mean([float(y[i]) for i in idx])), 3),
            }
        )
    return out


def train(
    rows: Sequence[TrainingRow],
    *,
    seed: int = 7,
    trained_on: str = "simulator",
    label: str = "sim",
    test_share: float = 0.25,
    progress: Progress = _quiet,
) -> TrainedDelayModel:
    """Fit the classifier (the better-calibrated of boosted trees and logistic regression, chosen
    on a validation split of the training deals) and the closing-date quantile regressors, then
    score both it and the baseline on held-out deals it never saw."""
    import sklearn

    if len({r.deal for r in rows}) < 20:
        raise ValueError("Too few deals to train and hold some out (need at least 20)")
    ignore_stakeholders = sum(r.has_stakeholders for r in rows) < len(rows) / 2
    held_out = _split([r.deal for r in rows], test_share, seed)
    fit_rows = [r for r in rows if r.deal not in held_out]
    test_rows = [r for r in rows if r.deal in held_out]
    if not any(r.delayed for r in fit_rows) or all(r.delayed for r in fit_rows):
        raise ValueError("Training deals need both outcomes: some late or cancelled, some not")

    shell = TrainedDelayModel(
        version="",
        family="",
        classifier=None,
        regressors={},
        trained_on=trained_on,
        samples=len(fit_rows),
        ignore_stakeholders=ignore_stakeholders,
    )

    progress("features")
    x_all = shell.matrix([r.facts for r in rows], [r.market_delay_rate for r in rows])
    y_all = np.array([r.delayed for r in rows], dtype=int)
    deal_of = np.array([r.deal for r in rows])
    fit_idx = np.array([i for i, r in enumerate(rows) if r.deal not in held_out])
    test_idx = np.array([i for i, r in enumerate(rows) if r.deal in held_out])
    validation = _split([r.deal for r in fit_rows], 0.2, seed + 1)
    in_idx = np.array([i for i in fit_idx if rows[i].deal not in validation])
    check_idx = np.array([i for i in fit_idx if rows[i].deal in validation])
    selection: dict[str, float] = {}
    with one_thread():
        for name, candidate in _classifiers(seed, deal_of[in_idx], y_all[in_idx]).items():
            progress(f"trying {name}")
            candidate.fit(x_all[in_idx], y_all[in_idx])
            p = candidate.predict_proba(x_all[check_idx])[:, 1]
            selection[name] = round(float(((p - y_all[check_idx]) ** 2).mean()), 4)
        family = min(selection, key=lambda k: selection[k])

        progress(f"fitting {family}")
        classifier = _classifiers(seed, deal_of[fit_idx], y_all[fit_idx])[family]
        classifier.fit(x_all[fit_idx], y_all[fit_idx])
        closed = np.array([i for i in fit_idx if rows[i].actual_closing_date is not None])
        slip = np.array(
            [
                (rows[i].actual_closing_date - rows[i].facts.target_closing_date).days
                for i in closed
            ],
            dtype=float,
        )
        regressors = {}
        for q in QUANTILES:
            progress(f"closing date, quantile {q:.0%}")
            regressors[q] = _regressor(q, seed).fit(x_all[closed], slip)
    shell.classifier, shell.regressors, shell.family = classifier, regressors, family

    progress("held-out evaluation")
    facts = [r.facts for r in test_rows]
    truth = [r.delayed for r in test_rows]
    actual = [r.actual_closing_date for r in test_rows]
    base = [rules.baseline_delay(r.facts, market_delay_rate=r.market_delay_rate) for r in test_rows]
    probability, slips = shell.predict_matrix(x_all[test_idx])
    dates = [_closing_dates(f, [slips[q][i] for q in QUANTILES]) for i, f in enumerate(facts)]
    digest = hashlib.sha256(
        f"{seed}:{len(rows)}:{sum(r.delayed for r in rows)}:{utcnow().isoformat()}".encode()
    ).hexdigest()[:6]
    shell.version = f"{family}-{label[:24]}-{utcnow():%Y%m%d%H%M%S}-{digest}"
    shell.sklearn_version = sklearn.__version__
    shell.metrics = {
        "held_out": {
            "deals": len(held_out),
            "snapshots": len(test_rows),
            "late_or_cancelled_share": round(sum(truth) / max(1, len(truth)), 4),
            "closed_snapshots": sum(1 for a in actual if a is not None),
        },
        "train": {"deals": len({r.deal for r in fit_rows}), "snapshots": len(fit_rows)},
        "baseline": scores(
            truth,
            [b.delay_probability for b in base],
            [b.predicted_closing_date for b in base],
            [b.closing_date_low for b in base],
            [b.closing_date_high for b in base],
            actual,
        ),
        "trained": scores(
            truth,
            [float(p) for p in probability],
            [d[1] for d in dates],
            [d[0] for d in dates],
            [d[2] for d in dates],
            actual,
        ),
        "calibration": calibration_table(truth, [float(p) for p in probability]),
        "selection_brier": selection,
        "family": family,
        "seed": seed,
        "ignore_stakeholders": ignore_stakeholders,
        "sklearn": sklearn.__version__,
    }
    return shell


# --- storage -------------------------------------------------------------------------------------

_cache: dict[str, TrainedDelayModel | None] = {}
_cache_lock = threading.Lock()


def store(session: Session, model: TrainedDelayModel, *, tenant_id: int | None) -> DelayModel:
    """Keep the model and make it the active one of its scope (the tenant, or the global one)."""
    scope = DelayModel.tenant_id.is_(None) if tenant_id is None else (
        DelayModel.tenant_id == tenant_id
    )  # fmt: skip
    session.execute(
        update(DelayModel).where(scope, DelayModel.is_active).values(is_active=False),
        execution_options={"synchronize_session": "fetch"},
    )
    row = DelayModel(
        tenant_id=tenant_id,
        version=model.version,
        trained_on=model.trained_on,
        samples=model.samples,
        metrics=model.metrics,
        blob=pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
        is_active=True,
    )
    session.add(row)
    session.flush()
    with _cache_lock:
        _cache[model.version] = model
    return row


def load_active(session: Session, tenant_id: int) -> TrainedDelayModel | None:
    """The tenant's active model, else the global simulator-trained one, else None (baseline).
    Models are read once per process and version."""
    found = session.execute(
        select(DelayModel.id, DelayModel.version)
        .where(
            DelayModel.is_active,
            or_(DelayModel.tenant_id == tenant_id, DelayModel.tenant_id.is_(None)),
        )
        .order_by(case((DelayModel.tenant_id.is_(None), 1), else_=0), DelayModel.id.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    model_id, version = found
    with _cache_lock:
        if version in _cache:
            return _cache[version]
    blob = session.scalar(select(DelayModel.blob).where(DelayModel.id == model_id)) or b""
    loaded: TrainedDelayModel | None
    try:
        # Only this module writes these blobs, into the platform's own database.
        loaded = pickle.loads(blob)  # noqa: S301
        if not isinstance(loaded, TrainedDelayModel):
            raise TypeError(type(loaded).__name__)
    except Exception:  # an unreadable model (e.g. another scikit-learn) must not stop predictions
        log.exception("delay model %s cannot be loaded; predicting with the baseline", version)
        loaded = None
    with _cache_lock:
        _cache[version] = loaded
    return loaded


def forecast(
    session: Session,
    *,
    tenant_id: int,
    facts: rules.TransactionFacts,
    market_delay_rate: float | None = None,
) -> rules.DelayForecast:
    """The delay forecast for one deal: the active trained model's, or the baseline's."""
    model = load_active(session, tenant_id)
    if model is None:
        return rules.baseline_delay(facts, market_delay_rate=market_delay_rate)
    try:
        return model.forecast(facts, market_delay_rate=market_delay_rate)
    except Exception:  # a model that fails on some input falls back, it never breaks a page
        log.exception("delay model %s failed; predicting with the baseline", model.version)
        return rules.baseline_delay(facts, market_delay_rate=market_delay_rate)


# --- outcomes and live accuracy -----------------------------------------------------------------


def outcome_of(transaction: Transaction) -> tuple[bool, date | None] | None:
    """(late or cancelled, closing day) once the deal has ended; None while it is open."""
    if transaction.escrow_status == EscrowStatus.cancelled:
        return True, None
    if transaction.escrow_status == EscrowStatus.closed and transaction.actual_closing_date:
        return transaction.actual_closing_date > transaction.target_closing_date, (
            transaction.actual_closing_date
        )
    return None


def record_outcome(session: Session, *, transaction: Transaction) -> int:
    """Score every prediction made for the deal against how it ended (late = after the target
    it had when it ended). Returns how many predictions were scored."""
    outcome = outcome_of(transaction)
    if outcome is None:
        return 0
    delayed, closed_on = outcome
    result = session.execute(
        update(Prediction)
        .where(Prediction.transaction_id == transaction.id)
        .values(
            outcome_delayed=delayed, outcome_closing_date=closed_on, outcome_recorded_at=utcnow()
        ),
        execution_options={"synchronize_session": "fetch"},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def live_accuracy(session: Session, *, tenant_id: int) -> list[dict[str, Any]]:
    """Per model version, how its predictions for this tenant's ended deals turned out."""
    rows = session.execute(
        select(
            Prediction.model_version,
            Prediction.transaction_id,
            Prediction.delay_probability,
            Prediction.predicted_closing_date,
            Prediction.closing_date_low,
            Prediction.closing_date_high,
            Prediction.outcome_delayed,
            Prediction.outcome_closing_date,
        ).where(Prediction.tenant_id == tenant_id)
    ).all()
    active = set(
        session.scalars(
            select(DelayModel.version).where(
                DelayModel.is_active,
                or_(DelayModel.tenant_id == tenant_id, DelayModel.tenant_id.is_(None)),
            )
        )
    )
    by_version: dict[str, list[Any]] = {}
    for row in rows:
        by_version.setdefault(row.model_version, []).append(row)
    out = []
    for version in sorted(by_version):
        group = by_version[version]
        scored = [r for r in group if r.outcome_delayed is not None]
        errors = [
            abs((r.predicted_closing_date - r.outcome_closing_date).days)
            for r in scored
            if r.outcome_closing_date is not None
        ]
        inside = [
            r.closing_date_low <= r.outcome_closing_date <= r.closing_date_high
            for r in scored
            if r.outcome_closing_date is not None
        ]
        hits = [(r.delay_probability >= 0.5) == bool(r.outcome_delayed) for r in scored]
        squared = [(r.delay_probability - float(bool(r.outcome_delayed))) ** 2 for r in scored]
        out.append(
            {
                "model_version": version,
                "predictions": len(group),
                "scored": len(scored),
                "deals": len({r.transaction_id for r in scored}),
                "accuracy": _mean(hits),
                "brier": _mean(squared),
                "closing_mae_days": _mean(errors, 2),
                "interval_coverage": _mean(inside),
                "active": version in active,
            }
        )
    return out


def _mean(values: Iterable[float | bool], digits: int = 4) -> float | None:
    items = [float(v) for v in values]
    if not items:
        return None
    value = sum(items) / len(items)
    return round(value, digits) if math.isfinite(value) else None
