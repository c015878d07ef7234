"""Customer lifetime value: BG/NBD purchase counts times Gamma-Gamma spend.

Two models fitted by maximum likelihood on a customer base summarised per customer
(``rfm_summary``), with numpy and scipy only. Gamma(shape, rate) below; Γ is the gamma function,
B the beta function, ₂F₁ Gauss's hypergeometric function.

**BG/NBD** (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way: An Alternative to
the Pareto/NBD Model", *Marketing Science* 24(2):275-284). While alive, a customer buys as a
Poisson process of rate λ ~ Gamma(r, alpha); after each purchase they drop out with probability
p ~ Beta(a, b). For a customer with ``x`` repeat purchases, the last at ``t_x``, observed for
``T`` units since their first purchase, the likelihood (eq. 6) is::

    L = B(a, b+x)/B(a, b) · Γ(r+x) alpha^r / (Γ(r) (alpha+T)^(r+x))
      + [x > 0] · B(a+1, b+x-1)/B(a, b) · Γ(r+x) alpha^r / (Γ(r) (alpha+t_x)^(r+x))

summed in log space (``gammaln``, ``betaln``, ``logaddexp`` of the two terms). The probability
that the customer is still alive at ``T`` is::

    P(alive) = 1 / (1 + [x > 0] · a/(b+x-1) · ((alpha+T)/(alpha+t_x))^(r+x))

and the expected number of purchases in the next ``t`` units (eq. 10), with
``z = t/(alpha+T+t)``, is::

    E[Y(t) | x, t_x, T] = P(alive) · (a+b+x-1)/(a-1)
                          · [1 - (1-z)^(r+x) ₂F₁(r+x, b+x; a+b+x-1; z)]

computed as ``1 - (1-z)^(a-1) ₂F₁(a+b-1-r, a-1; a+b+x-1; z)`` (Euler's transformation: the same
value, free of the overflow of the first ₂F₁ for large ``x`` and ``t``). It is undefined at
exactly a = 1.

**Gamma-Gamma** spend model (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis", *Journal of Marketing Research* 42(4):415-430; Fader & Hardie 2013,
"The Gamma-Gamma Model of Monetary Value"). Each repeat transaction of a customer is
Gamma(p, nu), with nu ~ Gamma(q, gamma) across customers (``lifetimes`` calls gamma ``v``),
independent of the purchase process. The mean ``m`` of a customer's ``x`` repeat transactions
has the density::

    f(m | x) = Γ(px+q) / (Γ(px) Γ(q)) · gamma^q (m x)^(px-1) x / (gamma + m x)^(px+q)

fitted on repeat buyers only (x > 0). The expected value of their future transactions is::

    E[M | m, x] = p (gamma + m x) / (p x + q - 1)

which for a customer with no repeat purchase (x = 0) is the population mean p gamma / (q - 1).

**LTV** over a horizon of ``H`` units, discounted at ``d`` per unit, is
``E[M] · Σ_{k=1..H} (E[Y(k)] - E[Y(k-1)]) / (1+d)^k``: expected purchases period by period,
discounted, times expected spend per purchase.

Parameters are fitted on their logarithms with ``scipy.optimize.minimize`` (BFGS, then a
Nelder-Mead polish), so they stay positive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import OptimizeResult, minimize
from scipy.special import betaln, expit, gammaln, hyp2f1

FloatArray = NDArray[np.float64]

__all__ = [
    "BGNBDParams",
    "GammaGammaParams",
    "customer_ltv",
    "expected_average_spend",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "probability_alive",
    "rfm_summary",
]


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters: purchase rate λ ~ Gamma(r, alpha), dropout p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters: transaction value ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float


# --- Summary -------------------------------------------------------------------------------


def rfm_summary(
    customer_ids: ArrayLike,
    dates: ArrayLike,
    values: ArrayLike,
    *,
    calibration_end: date,
    observation_end: date | None = None,
    unit_days: int = 7,
) -> pd.DataFrame:
    """Summarise a transaction log per customer for the BG/NBD and Gamma-Gamma models.

    One row per customer whose first purchase is on or before ``calibration_end`` (indexed by
    customer id, sorted), with, over purchases up to and including ``calibration_end``:

    - ``frequency``: repeat purchases, i.e. distinct purchase days minus one;
    - ``recency``: time from the first to the last purchase day, in units of ``unit_days``;
    - ``T``: time from the first purchase day to ``calibration_end``, in units;
    - ``monetary_value``: mean value of the repeat purchase days, each day's transactions summed
      (the first purchase day is left out); 0 when there is no repeat purchase.

    With ``observation_end``: ``frequency_holdout``, the number of distinct purchase days after
    ``calibration_end`` up to and including ``observation_end``, and ``duration_holdout``, the
    length of that period in units. Times of day are ignored (timezone-aware dates are taken on
    their local calendar day).
    """
    if unit_days <= 0:
        raise ValueError("unit_days must be positive")
    ids = np.asarray(customer_ids)
    days = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    if days.tz is not None:  # keep each purchase on its local calendar day
        days = days.tz_localize(None)
    days = days.normalize()
    amounts = np.asarray(values, dtype=np.float64)
    if not (len(ids) == len(days) == len(amounts)):
        raise ValueError("customer_ids, dates and values must have the same length")
    cal_end = pd.Timestamp(calibration_end).normalize()
    obs_end = None if observation_end is None else pd.Timestamp(observation_end).normalize()
    if obs_end is not None and obs_end <= cal_end:
        raise ValueError("observation_end must be after calibration_end")

    log = pd.DataFrame({"customer": ids, "day": days, "value": amounts})
    daily = log.groupby(["customer", "day"], sort=True, as_index=False)["value"].sum()
    calibration = daily[daily["day"] <= cal_end]
    by_customer = calibration.groupby("customer", sort=True)["day"]
    first = by_customer.min()
    last = by_customer.max()
    unit = float(unit_days)

    summary = pd.DataFrame(index=first.index)
    summary.index.name = "customer"
    summary["frequency"] = (by_customer.size() - 1).astype(np.int64)
    summary["recency"] = (last - first).dt.days / unit
    summary["T"] = (cal_end - first).dt.days / unit
    is_repeat = calibration["day"].to_numpy() > first.reindex(calibration["customer"]).to_numpy()
    repeat_mean = calibration[is_repeat].groupby("customer")["value"].mean()
    summary["monetary_value"] = repeat_mean.reindex(summary.index, fill_value=0.0).astype(
        np.float64
    )

    if obs_end is not None:
        holdout = daily[(daily["day"] > cal_end) & (daily["day"] <= obs_end)]
        counts = holdout.groupby("customer").size()
        summary["frequency_holdout"] = counts.reindex(summary.index, fill_value=0).astype(np.int64)
        summary["duration_holdout"] = (obs_end - cal_end).days / unit
    return summary


# --- Helpers -------------------------------------------------------------------------------


def _floats(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def _customer_arrays(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x, t_x, age = np.broadcast_arrays(
        _floats(frequency, "frequency"), _floats(recency, "recency"), _floats(T, "T")
    )
    if np.any(x < 0) or np.any(t_x < 0):
        raise ValueError("frequency and recency must be non-negative")
    if np.any(t_x > age):
        raise ValueError("recency cannot exceed T")
    return x, t_x, age


def _minimize(objective: Callable[[FloatArray], float], start: FloatArray) -> FloatArray:
    """Minimise over log-parameters: BFGS to get close, then Nelder-Mead to settle precisely.

    BFGS on finite-difference gradients stops a few 1e-5 short of the optimum (or with a
    "precision loss" warning); the simplex polish settles them to about 1e-6, relative.
    """
    rough: OptimizeResult = minimize(objective, start, method="BFGS", options={"gtol": 1e-6})
    near = rough.x if np.all(np.isfinite(rough.x)) else start
    result: OptimizeResult = minimize(
        objective,
        near,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 40_000},
    )
    if not result.success:
        raise RuntimeError(f"maximum likelihood fit did not converge: {result.message}")
    return np.asarray(result.x, dtype=np.float64)


# --- BG/NBD --------------------------------------------------------------------------------


def _bgnbd_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """Per-customer log-likelihood of FHL 2005 eq. 6."""
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    still_alive = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    dropped = np.full_like(still_alive, -np.inf)
    repeat = x > 0
    xr = x[repeat]
    dropped[repeat] = betaln(a + 1, b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    return np.asarray(common + np.logaddexp(still_alive, dropped), dtype=np.float64)


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> BGNBDParams:
    """Fit the BG/NBD model by maximum likelihood; one value per customer in each argument."""
    x, t_x, age = _customer_arrays(frequency, recency, T)
    x, t_x, age = x.ravel(), t_x.ravel(), age.ravel()
    if x.size == 0:
        raise ValueError("no customers to fit")
    # Customers with the same (x, t_x, T) contribute the same term: count them once.
    rows, weights = np.unique(np.column_stack([x, t_x, age]), axis=0, return_counts=True)
    ux, ut_x, uT = rows[:, 0], rows[:, 1], rows[:, 2]
    n = float(x.size)

    def objective(log_params: FloatArray) -> float:
        r, alpha, a, b = np.exp(log_params)
        value = -float(weights @ _bgnbd_log_likelihood(r, alpha, a, b, ux, ut_x, uT)) / n
        return value if np.isfinite(value) else 1e100

    scale = max(float(np.mean(age)), 1e-9)
    start = np.log(np.array([1.0, scale, 1.0, 1.0]))
    r, alpha, a, b = np.exp(_minimize(objective, start))
    log_likelihood = float(np.sum(_bgnbd_log_likelihood(r, alpha, a, b, x, t_x, age)))
    return BGNBDParams(float(r), float(alpha), float(a), float(b), log_likelihood)


def probability_alive(
    params: BGNBDParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(customer still alive at T | x, t_x, T); 1 for a customer with no repeat purchase."""
    x, t_x, age = _customer_arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = (
            np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
        )
    return np.asarray(np.where(x > 0, expit(-log_odds_dead), 1.0), dtype=np.float64)


def expected_purchases(
    params: BGNBDParams,
    t: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> FloatArray:
    """Expected purchases in the next ``t`` units given (x, t_x, T) (FHL 2005 eq. 10).

    Arguments broadcast against each other; ``t`` may be a scalar.
    """
    x, t_x, age = _customer_arrays(frequency, recency, T)
    horizon = _floats(t, "t")
    if np.any(horizon < 0):
        raise ValueError("t must be non-negative")
    horizon, x, t_x, age = np.broadcast_arrays(horizon, x, t_x, age)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = horizon / (alpha + age + horizon)
    # Eq. 10's (1-z)^(r+x) ₂F₁(r+x, b+x; a+b+x-1; z), through Euler's transformation: the same
    # value, but the ₂F₁ left stays near 1 where the original one overflows (large x and t).
    tail = np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    alive = probability_alive(params, x, t_x, age)
    return np.asarray(alive * (a + b + x - 1) / (a - 1) * (1 - tail), dtype=np.float64)


# --- Gamma-Gamma ---------------------------------------------------------------------------


def _gamma_gamma_log_likelihood(
    p: float, q: float, gamma: float, x: FloatArray, m: FloatArray
) -> FloatArray:
    """Per-customer log density of the mean ``m`` of ``x`` repeat transactions."""
    px = p * x
    total = m * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(total)
        + np.log(x)
        - (px + q) * np.log(gamma + total),
        dtype=np.float64,
    )


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike) -> GammaGammaParams:
    """Fit the Gamma-Gamma spend model on the repeat buyers (frequency > 0) among the rows.

    ``monetary_value`` is the mean value of each customer's repeat purchases; repeat buyers
    must have a positive one. Rows with frequency 0 are ignored.
    """
    x, m = np.broadcast_arrays(
        _floats(frequency, "frequency"), _floats(monetary_value, "monetary_value")
    )
    repeat = x.ravel() > 0
    x, m = x.ravel()[repeat], m.ravel()[repeat]
    if x.size == 0:
        raise ValueError("no repeat buyers to fit")
    if np.any(m <= 0):
        raise ValueError("repeat buyers must have a positive monetary_value")
    n = float(x.size)

    def objective(log_params: FloatArray) -> float:
        p, q, gamma = np.exp(log_params)
        value = -float(np.sum(_gamma_gamma_log_likelihood(p, q, gamma, x, m))) / n
        return value if np.isfinite(value) else 1e100

    start = np.log(np.array([1.0, 1.0, float(np.mean(m))]))
    p, q, gamma = np.exp(_minimize(objective, start))
    log_likelihood = float(np.sum(_gamma_gamma_log_likelihood(p, q, gamma, x, m)))
    return GammaGammaParams(float(p), float(q), float(gamma), log_likelihood)


def expected_average_spend(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """Expected value of a customer's future transactions: p (gamma + m x) / (p x + q - 1).

    For frequency 0 this is the population mean p gamma / (q - 1), which is infinite if q <= 1.
    """
    x, m = np.broadcast_arrays(
        _floats(frequency, "frequency"), _floats(monetary_value, "monetary_value")
    )
    if np.any(x < 0) or np.any(m < 0):
        raise ValueError("frequency and monetary_value must be non-negative")
    p, q, gamma = params.p, params.q, params.gamma
    denominator = p * x + q - 1
    if np.any(denominator <= 0):
        raise ValueError("expected spend is infinite: q <= 1 and a customer has frequency 0")
    return np.asarray(p * (gamma + m * x) / denominator, dtype=np.float64)


# --- LTV -----------------------------------------------------------------------------------


def customer_ltv(
    bgnbd: BGNBDParams,
    gg: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    horizon_units: int,
    discount_rate_per_unit: float = 0.0,
) -> FloatArray:
    """Expected (discounted) value of each customer's purchases over the next ``horizon_units``.

    Σ_{k=1..H} (E[Y(k)] - E[Y(k-1)]) / (1 + d)^k, times the Gamma-Gamma expected spend.
    """
    if horizon_units < 0:
        raise ValueError("horizon_units must be non-negative")
    if discount_rate_per_unit <= -1:
        raise ValueError("discount_rate_per_unit must be greater than -1")
    x, t_x, age = _customer_arrays(frequency, recency, T)
    spend = expected_average_spend(gg, x, monetary_value)
    steps = np.arange(horizon_units + 1, dtype=np.float64).reshape((-1,) + (1,) * x.ndim)
    cumulative = expected_purchases(bgnbd, steps, x, t_x, age)
    per_period = np.diff(cumulative, axis=0)
    discount = (1.0 + discount_rate_per_unit) ** -steps[1:]
    purchases = np.sum(per_period * discount, axis=0)
    return np.asarray(purchases * spend, dtype=np.float64)
