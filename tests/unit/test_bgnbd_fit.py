"""BG/NBD reproduces the published CDNOW estimates and its expectation matches simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.bgnbd import BGNBDParams, bgnbd_log_likelihood, expected_purchases, fit_bgnbd
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
