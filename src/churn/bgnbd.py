"""BG/NBD (Fader, Hardie & Lee 2005): maximum-likelihood fit, expected purchases, P(alive) and
P(no purchase in the next t), in scipy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from churn.errors import ChurnError

DAYS_PER_WEEK = 7.0
# OpenBLAS computes a dot product of more than this many terms in one part per thread
_BLAS_ONE_PART = 10_000


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD parameters (time unit: whatever t_x and T were given in) and the fit's quality."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool


def summarize_histories(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return BG/NBD (x, t_x, T) in weeks from snapshot rows' core features at their cutoff:
    x = repeat purchase days, t_x = age of the last purchase, T = age of the first."""
    x = (frame["purchase_days"].astype("float64") - 1).clip(lower=0).to_numpy()
    tenure = frame["tenure_days"].astype("float64").to_numpy()
    t_x = np.where(x > 0, tenure - frame["recency_days"].astype("float64").to_numpy(), 0.0)
    return x, np.clip(t_x, 0.0, tenure) / DAYS_PER_WEEK, tenure / DAYS_PER_WEEK


def _summary_arrays(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (x, t_x, T) as float arrays after checking they can come from purchase histories."""
    arrays = tuple(np.asarray(values, dtype="float64") for values in (x, t_x, T))
    _check_summary(*arrays)
    return arrays  # type: ignore[return-value]


def _check_summary(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    """Raise ChurnError when the (x, t_x, T) summary cannot come from purchase histories."""
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise ChurnError("BG/NBD: x, t_x and T must be 1-d arrays of the same length")
    if x.size == 0:
        raise ChurnError("BG/NBD: no customers to fit; the snapshot is empty")
    for name, values in (("x", x), ("t_x", t_x), ("T", T)):
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            raise ChurnError(
                f"BG/NBD: {name} has {int(bad.sum())} negative or missing value(s) "
                f"(first: {values[bad][0]!r}); repeat purchases and times must be >= 0"
            )
    if np.any(x != np.floor(x)):
        raise ChurnError("BG/NBD: x (repeat purchase count) must be whole numbers")
    late = t_x > T + 1e-9
    if late.any():
        raise ChurnError(
            f"BG/NBD: {int(late.sum())} customer(s) have t_x > T (last purchase after the cutoff); "
            "recency must not exceed tenure"
        )
    if np.any((x == 0) & (t_x > 0)):
        raise ChurnError("BG/NBD: customers with x = 0 repeat purchases must have t_x = 0")


def bgnbd_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Return each customer's BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    x = np.asarray(x, dtype="float64")
    t_x = np.asarray(t_x, dtype="float64")
    T = np.asarray(T, dtype="float64")
    beta_ab = special.betaln(a, b)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    alive = special.betaln(a, b + x) - beta_ab - (r + x) * np.log(alpha + T)
    # the second term exists only for repeat buyers: they may have died right after t_x
    with np.errstate(divide="ignore", invalid="ignore"):
        died = np.where(
            x > 0,
            special.betaln(a + 1, np.maximum(b + x - 1, 1e-300))
            - beta_ab
            - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return common + np.logaddexp(alive, died)


def _distinct_x_likelihood(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> Callable[[float, float, float, float], np.ndarray]:
    """Return `bgnbd_log_likelihood` for fixed summaries, with the special functions (the cost
    of a likelihood evaluation) computed once per distinct x instead of once per customer.

    Repeat-purchase counts take few distinct values, so a fit's hundreds of evaluations cost a
    fraction of the per-customer form; the terms are the same numbers, summed the same way.
    Ages are whole days in some unit, so log(alpha + T) and log(alpha + t_x) are likewise taken
    once per distinct age (the same log of the same sum, gathered: identical terms, ~30% less
    time per evaluation at 150k distinct summaries).
    """
    x = np.asarray(x, dtype="float64")
    t_x = np.asarray(t_x, dtype="float64")
    T = np.asarray(T, dtype="float64")
    xs, inverse = np.unique(x, return_inverse=True)
    ages, age_of_T = np.unique(T, return_inverse=True)
    last_ages, age_of_t_x = np.unique(t_x, return_inverse=True)
    repeat = x > 0

    def log_likelihood(r: float, alpha: float, a: float, b: float) -> np.ndarray:
        beta_ab = special.betaln(a, b)
        rx = r + x
        common = (special.gammaln(r + xs) - special.gammaln(r))[inverse] + r * np.log(alpha)
        log_T = np.log(alpha + ages)[age_of_T]
        alive = (special.betaln(a, b + xs) - beta_ab)[inverse] - rx * log_T
        with np.errstate(divide="ignore", invalid="ignore"):
            died_beta = special.betaln(a + 1, np.maximum(b + xs - 1, 1e-300)) - beta_ab
            log_t_x = np.log(alpha + last_ages)[age_of_t_x]
            died = np.where(repeat, died_beta[inverse] - rx * log_t_x, -np.inf)
        return common + np.logaddexp(alive, died)

    return log_likelihood


def _weighted_sum(weights: np.ndarray, values: np.ndarray) -> float:
    """Return the dot product of `weights` and `values` summed as two halves, in this thread.

    The fit stops where its optimizers' tolerances say, so the last bit of every likelihood sum
    moves the fitted parameters (by up to 1e-3 relative in a and b). OpenBLAS splits a long dot
    product into one part per thread: the sum, hence the features, depended on the core count,
    and on a loaded machine each call waited for the other thread (7 ms instead of 0.03 ms, a
    minute of the features stage at 10M transactions). This computes OpenBLAS's two-thread sum
    (halves of ceil(n / 2) and the rest, each its own dot, added) with BLAS limited to one
    thread by the caller: the sum the outputs were recorded with on a 2-core machine, now the
    same on any core count and load.
    """
    size = len(weights)
    if size <= _BLAS_ONE_PART:
        return float(np.dot(weights, values))
    half = (size + 1) // 2
    return float(np.dot(weights[:half], values[:half]) + np.dot(weights[half:], values[half:]))


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BGNBDParams:
    """Return maximum-likelihood BG/NBD parameters for per-customer (x, t_x, T) summaries."""
    x, t_x, T = _summary_arrays(x, t_x, T)
    # identical summaries share a likelihood term: fit on the distinct ones, weighted by count
    triples, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    ux, ut, uT = triples[:, 0], triples[:, 1], triples[:, 2]
    weights = counts.astype("float64")
    scale = max(float(np.mean(T)), 1e-9)

    likelihood = _distinct_x_likelihood(ux, ut, uT)

    def negative(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        ll = likelihood(r, alpha * scale, a, b)
        total = _weighted_sum(weights, ll)
        return -total / weights.sum() if np.isfinite(total) else 1e300

    # alpha is searched relative to the mean age so the starting point suits any time unit
    start = np.log([1.0, 1.0, 1.0, 1.0])
    with threadpool_limits(limits=1, user_api="blas"):  # see _weighted_sum
        result = optimize.minimize(negative, start, method="Nelder-Mead", options={"maxiter": 4000})
        polished = optimize.minimize(
            negative, result.x, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4
        )
    best = polished if polished.fun <= result.fun else result
    r, alpha, a, b = np.exp(best.x)
    log_likelihood = -float(best.fun) * float(weights.sum())
    if not np.isfinite(log_likelihood):
        raise ChurnError("BG/NBD: the fit did not reach a finite likelihood; check the summary")
    return BGNBDParams(
        r=float(r),
        alpha=float(alpha * scale),
        a=float(a),
        b=float(b),
        log_likelihood=log_likelihood,
        customers=int(x.size),
        converged=bool(result.success or polished.success),
    )


def expected_purchases(
    params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Return each customer's expected number of purchases in (T, T + t] (FHL 2005, eq. 10)."""
    x, t_x, T = _summary_arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    rx = r + x
    c = a + b + x - 1
    z = t / (alpha + T + t)
    log_ratio = rx * np.log((alpha + T) / (alpha + T + t))
    hyper = special.hyp2f1(rx, b + x, c, z)
    numerator = (c / (a - 1)) * (1.0 - np.exp(log_ratio) * hyper)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        # P(dead) odds; large when the customer has been silent for long relative to their history
        odds = np.where(
            x > 0,
            (a / np.maximum(b + x - 1, 1e-300))
            * np.exp(np.minimum(rx * np.log((alpha + T) / (alpha + t_x)), 700.0)),
            0.0,
        )
    expected = numerator / (1.0 + odds)
    bad = ~np.isfinite(expected)
    if bad.any():
        raise ChurnError(
            f"BG/NBD: expected purchases are not finite for {int(bad.sum())} customer(s) "
            f"(params r={r:.3g}, alpha={alpha:.3g}, a={a:.3g}, b={b:.3g}); the fit is degenerate"
        )
    return np.maximum(expected, 0.0)


def probability_alive(
    params: BGNBDParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Return each customer's probability of still being active at T (FHL 2005, eq. 11)."""
    x, t_x, T = _summary_arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1, 1e-300))
            + (r + x) * np.log((alpha + T) / (alpha + t_x))
        )
        # one-time buyers cannot have died after a repeat purchase: the model says alive
        odds = np.where(x > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)
    return 1.0 / (1.0 + odds)


def probability_no_purchase(
    params: BGNBDParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Return each customer's probability of no purchase in (T, T + t]: the churn label's quantity.

    Under BG/NBD a customer dies only right after a purchase, so one alive at T makes no purchase
    in (T, T + t] exactly when their Poisson process is silent there; given alive and the history,
    the purchase rate is Gamma(r + x, alpha + T) (FHL 2005, section 3), hence

        P(X(T, T + t) = 0 | x, t_x, T) = 1 - P(alive) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x)
    """
    if not np.isfinite(t) or t < 0:
        raise ChurnError(f"BG/NBD: the horizon t must be a finite time >= 0, got {t!r}")
    x, t_x, T = _summary_arrays(x, t_x, T)
    alive = probability_alive(params, x, t_x, T)
    silent = np.exp((params.r + x) * (np.log(params.alpha + T) - np.log(params.alpha + T + t)))
    # written as 1 - P(buys) so the result stays in [0, 1] to the last bit
    return np.clip(1.0 - alive * (1.0 - silent), 0.0, 1.0)
