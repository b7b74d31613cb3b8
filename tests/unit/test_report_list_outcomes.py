"""The retention report's view of earlier published lists: flagged vs rest vs predicted, warnings."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from churn.backtest import run_backtest
from churn.config import BacktestParams
from churn.errors import ChurnError
from churn.report import headline_figures
from churn.report.page import render_html
from support.report_data import report_for

AS_OF = date(2024, 1, 31)
D = date
ROWS = [("a", D(2024, 1, 5), 10.0), ("b", D(2024, 2, 10), 5.0), ("a", D(2024, 4, 30), 8.0)]


def _published(predicted: float, n_flagged: int = 100, churners: int = 50, n_rest: int = 20):
    """Return ({as_of: (30, scores)}, transactions): `churners` flagged customers do not buy."""
    n = n_flagged + n_rest
    scores = pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:04d}" for i in range(n)], dtype="string"),
            "churn_probability": [predicted] * n_flagged + [0.1] * n_rest,
            "at_risk": [True] * n_flagged + [False] * n_rest,
            "group": ["treatment", "control"] * (n // 2),
        }
    )
    buyers = scores["customer_id"].iloc[churners:n_flagged].tolist()
    buyers += scores["customer_id"].iloc[n_flagged : n_flagged + n_rest // 2].tolist()
    transactions = pd.DataFrame(
        {
            "customer_id": pd.array([*buyers, "0000"], dtype="string"),
            "date": [date(2024, 2, 10)] * len(buyers) + [date(2024, 3, 5)],
            "amount": 5.0,
        }
    )
    return {AS_OF: (30, scores)}, transactions


def _backtest(predicted: float, **options):
    published, transactions = _published(predicted)
    return run_backtest(published, transactions, BacktestParams(), **options)


def test_the_page_shows_flagged_against_rest_and_predicted_and_warns_on_a_shortfall():
    report = report_for(ROWS, backtest=_backtest(0.8))
    page = render_html(report)
    assert "Earlier lists against what happened" in page
    # flagged: 50% churned [40.4%, 59.6%], 80% predicted; the rest: 50% churned, 10% predicted
    assert "50.0% [40.4%, 59.6%]" in page and "80.0%" in page and "10.0%" in page
    assert 'class="warning">Warning: list of 2024-01-31: flagged customers churned 50.0%' in page
    assert '<tr class="warning"><td>2024-01-31</td>' in page
    figures = headline_figures(report)["latest_backtested_list"]
    assert figures["churn_flagged_pct"] == 50.0 and figures["predicted_flagged_pct"] == 80.0
    assert figures["below_predicted"] is True


def test_the_page_prints_no_effect_when_no_campaign_is_known():
    page = render_html(report_for(ROWS, backtest=_backtest(0.55)))
    assert "no campaign known" in page
    assert "points retention" not in page
    assert "Warning:" not in page  # 55% predicted lies inside the interval of the observed 50%


def test_the_page_prints_the_effect_when_the_record_says_the_list_was_used():
    page = render_html(report_for(ROWS, backtest=_backtest(0.55, used={AS_OF})))
    assert "no campaign known" not in page
    assert "points retention [" in page


def test_the_page_says_when_no_list_has_matured_yet():
    published, transactions = _published(0.5)
    backtest = run_backtest({date(2024, 3, 1): published[AS_OF]}, transactions, BacktestParams())
    page = render_html(report_for(ROWS, backtest=backtest))
    assert "No published list has reached its horizon yet: 2024-03-01 (on 2024-03-31)" in page


def test_without_a_backtest_the_page_has_no_list_outcomes():
    assert "Earlier lists" not in render_html(report_for(ROWS))


def test_a_backtest_from_an_older_version_names_the_fix():
    old = _backtest(0.5)
    del old["runs"][0]["flagged_vs_rest"]
    with pytest.raises(ChurnError, match="rerun `churn backtest`"):
        report_for(ROWS, backtest=old, sources={"backtest": "reports/backtest.json"})
