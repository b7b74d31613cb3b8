"""BG/NBD reproduces the published CDNOW estimates and its expectation matches simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.bgnbd import (
    BGNBDParams,
    bgnbd_log_likelihood,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
    probability_no_purchase,
)
from churn.errors import ChurnError
from support.paths import DATA

FIXTURE = DATA / "cdnow_sample_summary.csv"


@pytest.fixture(scope="module")
def cdnow():
    summary = pd.read_csv(FIXTURE, dtype={"customer": str})
    x = summary["x"].to_numpy(float)
    return x, summary["t_x_days"].to_numpy(float) / 7, summary["T_days"].to_numpy(float) / 7


def test_fit_reproduces_published_cdnow_parameters(cdnow):
    fitted = fit_bgnbd(*cdnow)
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    assert fitted.customers == 2357
    assert fitted.r == pytest.approx(0.243, abs=0.01)
    assert fitted.alpha == pytest.approx(4.414, abs=0.02)
    assert fitted.a == pytest.approx(0.793, abs=0.01)
    assert fitted.b == pytest.approx(2.426, abs=0.02)
    assert fitted.log_likelihood == pytest.approx(-9582.4, abs=0.5)


def test_fit_does_not_depend_on_the_time_unit_except_alpha(cdnow):
    x, t_x, T = cdnow
    weeks = fit_bgnbd(x, t_x, T)
    days = fit_bgnbd(x, t_x * 7, T * 7)
    assert days.r == pytest.approx(weeks.r, rel=1e-3)
    assert days.a == pytest.approx(weeks.a, rel=1e-3)
    assert days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-3)


def test_published_example_customer_expects_about_1_2_purchases_in_39_weeks():
    published = BGNBDParams(0.243, 4.414, 0.793, 2.426, -9582.4, 2357, True)
    # customer 1 of the sample: 2 repeat purchases, last at week 30.43, observed for 38.86 weeks
    value = expected_purchases(
        published, 39.0, np.array([2.0]), np.array([30.43]), np.array([38.86])
    )
    assert value[0] == pytest.approx(1.226, abs=0.01)


def test_expected_purchases_of_a_new_customer_match_simulation():
    params = BGNBDParams(0.8, 6.0, 1.6, 3.0, 0.0, 0, True)
    rng = np.random.default_rng(11)
    n, horizon = 400_000, 20.0
    rate = rng.gamma(params.r, 1 / params.alpha, n)
    p_drop = rng.beta(params.a, params.b, n)
    # after every repeat purchase the customer drops out with probability p: the j-th repeat
    # purchase is their last with probability p (1 - p)^(j - 1), j >= 1
    purchases_before_dropout = rng.geometric(p_drop)
    simulated = np.minimum(rng.poisson(rate * horizon), purchases_before_dropout).mean()
    formula = expected_purchases(params, horizon, np.zeros(1), np.zeros(1), np.zeros(1))[0]
    assert formula == pytest.approx(simulated, rel=0.02)


def test_long_silence_lowers_expected_purchases():
    params = BGNBDParams(0.243, 4.414, 0.793, 2.426, 0.0, 0, True)
    x = np.array([5.0, 5.0, 5.0])
    t_x = np.array([38.0, 20.0, 5.0])  # last purchase 1, 19 and 34 weeks before the cutoff
    values = expected_purchases(params, 13.0, x, t_x, np.full(3, 39.0))
    assert values[0] > values[1] > values[2] > 0


def test_log_likelihood_is_finite_for_one_time_and_repeat_buyers():
    ll = bgnbd_log_likelihood(
        0.5, 3.0, 0.8, 2.0, np.array([0, 3]), np.array([0, 10]), np.array([20, 20])
    )
    assert np.isfinite(ll).all()


def test_impossible_summaries_are_rejected_with_the_reason():
    with pytest.raises(ChurnError, match="t_x > T"):
        fit_bgnbd(np.array([1.0]), np.array([5.0]), np.array([3.0]))
    with pytest.raises(ChurnError, match="negative or missing"):
        fit_bgnbd(np.array([-1.0]), np.array([0.0]), np.array([3.0]))
    with pytest.raises(ChurnError, match="no customers"):
        fit_bgnbd(np.array([]), np.array([]), np.array([]))


def simulate_bgnbd(params: BGNBDParams, T: np.ndarray, horizon: float, seed: int):
    """Return (x, t_x, bought in (T, T + horizon]) for customers following the BG/NBD story."""
    rng = np.random.default_rng(seed)
    n = T.size
    rate = rng.gamma(params.r, 1 / params.alpha, n)
    p_drop = rng.beta(params.a, params.b, n)
    x, t_x = np.zeros(n), np.zeros(n)
    bought_after = np.zeros(n, dtype=bool)
    now = np.zeros(n)
    running = np.ones(n, dtype=bool)  # alive and not yet past the end of the horizon
    while running.any():
        idx = np.flatnonzero(running)
        now[idx] += rng.exponential(1 / rate[idx])
        inside = now[idx] <= T[idx]
        seen = idx[inside]
        x[seen] += 1
        t_x[seen] = now[seen]
        # a death right after each repeat purchase; purchases after T end the walk either way
        running[seen] = rng.random(seen.size) >= p_drop[seen]
        later = idx[~inside]
        bought_after[later] = now[later] <= T[later] + horizon
        running[later] = False
    return x, t_x, bought_after


def test_probability_of_no_purchase_matches_simulated_bgnbd_customers():
    params = BGNBDParams(0.8, 6.0, 0.9, 2.5, 0.0, 0, True)
    rng = np.random.default_rng(3)
    T = rng.uniform(10.0, 70.0, 300_000)
    horizon = 13.0
    x, t_x, bought = simulate_bgnbd(params, T, horizon, seed=4)
    p_none = probability_no_purchase(params, horizon, x, t_x, T)
    assert p_none.mean() == pytest.approx(1 - bought.mean(), abs=0.004)
    # calibrated within groups the formula sees: repeat purchases and silence since the last one
    silence = np.digitize(T - t_x, [5.0, 15.0, 30.0])
    for group in (np.minimum(x, 4), silence, np.minimum(x, 2) * 4 + silence):
        for value in np.unique(group):
            inside = group == value
            if inside.sum() < 3000:
                continue
            assert p_none[inside].mean() == pytest.approx(1 - bought[inside].mean(), abs=0.012)


def test_probability_of_no_purchase_limits():
    params = BGNBDParams(0.243, 4.414, 0.793, 2.426, 0.0, 0, True)
    x = np.array([0.0, 2.0, 5.0, 5.0])
    t_x = np.array([0.0, 30.43, 38.0, 5.0])
    T = np.array([20.0, 38.86, 39.0, 39.0])
    alive = probability_alive(params, x, t_x, T)
    assert probability_no_purchase(params, 0.0, x, t_x, T) == pytest.approx(np.ones(4))
    # forever: only the dead never buy again
    assert probability_no_purchase(params, 1e60, x, t_x, T) == pytest.approx(1 - alive, abs=1e-6)
    # one-time buyers are alive by convention: the Gamma-Poisson (NBD) zero class
    none = probability_no_purchase(params, 13.0, x[:1], t_x[:1], T[:1])[0]
    assert none == pytest.approx((24.414 / 37.414) ** 0.243)
    # longer horizons, and longer silence, can only make a purchase-free window likelier
    spans = [probability_no_purchase(params, t, x, t_x, T) for t in (1.0, 13.0, 52.0)]
    assert np.all(spans[0] > spans[1]) and np.all(spans[1] > spans[2])
    assert spans[1][3] > spans[1][2]
    assert np.all((spans[1] >= 1 - alive) & (spans[1] <= 1))


def test_probability_of_no_purchase_refuses_a_negative_horizon():
    params = BGNBDParams(0.243, 4.414, 0.793, 2.426, 0.0, 0, True)
    with pytest.raises(ChurnError, match="horizon t"):
        probability_no_purchase(params, -1.0, np.zeros(1), np.zeros(1), np.ones(1))
