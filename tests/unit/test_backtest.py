"""Backtest: archived lists against what happened, on a hand-built example and published intervals."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from churn.backtest import (
    backtest_run,
    check_contacts,
    newcombe_interval,
    purchase_dates,
    run_backtest,
    summary_rows,
    wilson_interval,
)
from churn.config import BacktestParams
from churn.errors import ChurnError

AS_OF = date(2024, 1, 31)
PARAMS = BacktestParams()


def test_wilson_interval_reproduces_the_textbook_example():
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize(
    "counts, expected",
    [((56, 70, 48, 80), (0.0524, 0.3339)), ((9, 10, 3, 10), (0.1705, 0.8090))],
)
def test_newcombe_interval_reproduces_the_published_values(counts, expected):
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
    low, high = newcombe_interval(*counts)
    assert (round(low, 4), round(high, 4)) == expected


def test_an_empty_group_gives_no_interval():
    assert all(np.isnan(newcombe_interval(0, 0, 3, 10)))


def _scores():
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i}" for i in range(1, 9)], dtype="string"),
            "as_of": AS_OF,
            "churn_probability": [0.9, 0.8, 0.85, 0.7, 0.2, 0.1, 0.15, 0.05],
            "at_risk": [True, True, True, True, False, False, False, False],
            "group": ["treatment", "treatment", "control", "control"]
            + ["treatment"] * 2
            + ["control", "treatment"],
            "model_version": "3",
        }
    )


def _transactions():
    rows = [
        ("c2", "2024-02-10", 20.0),
        ("c4", "2024-03-01", 15.0),  # the last day of the window counts
        ("c5", "2024-02-05", 30.0),
        ("c6", "2024-01-31", 30.0),  # on the as-of date: before the window
        ("c7", "2024-03-02", 30.0),  # the day after the window
        ("c8", "2024-02-15", -10.0),  # a refund is not a purchase
    ]
    return pd.DataFrame(
        {
            "customer_id": pd.array([r[0] for r in rows], dtype="string"),
            "date": pd.to_datetime([r[1] for r in rows]).date,
            "amount": [r[2] for r in rows],
        }
    )


def test_a_hand_built_list_is_scored_against_what_happened():
    result = backtest_run(_scores(), purchase_dates(_transactions()), AS_OF, 30, PARAMS)
    assert result["outcome_window"] == ["2024-02-01", "2024-03-01"]
    assert result["model_version"] == "3"
    assert result["churn_rate"] == 5 / 8
    assert result["flagged"] == 4
    assert result["churn_rate_flagged"] == 0.5
    assert result["churn_rate_not_flagged"] == 0.75
    assert result["precision"] == 0.5
    assert result["recall"] == 0.4
    assert result["precision_control"] == 0.5
    # calibration on the untreated (c3..c8): |.05-1| + 2|.125-1| + |.2-0| + |.7-0| + |.85-1|, / 6
    assert result["calibration_ece_untreated"] == pytest.approx(3.75 / 6, abs=1e-6)
    assert [row["customers"] for row in result["calibration"]] == [1, 2, 1, 1, 1]


def test_flagged_customers_are_compared_with_the_rest_and_with_their_prediction():
    result = backtest_run(_scores(), purchase_dates(_transactions()), AS_OF, 30, PARAMS)
    comparison = result["flagged_vs_rest"]
    assert comparison["judged_on"] == "every scored customer"  # no campaign is known
    flagged, rest = comparison["flagged"], comparison["rest"]
    # flagged c1..c4: c1, c3 churned; predicted (0.9 + 0.8 + 0.85 + 0.7) / 4
    assert (flagged["customers"], flagged["churn_rate"]) == (4, 0.5)
    assert flagged["predicted"] == pytest.approx(0.8125)
    assert (flagged["ci_low"], flagged["ci_high"]) == pytest.approx(wilson_interval(2, 4), abs=1e-6)
    # rest c5..c8: c5 bought; predicted (0.2 + 0.1 + 0.15 + 0.05) / 4
    assert (rest["customers"], rest["churn_rate"]) == (4, 0.75)
    assert rest["predicted"] == pytest.approx(0.125)
    # 0.8125 lies inside the wide interval of 4 customers: no shortfall, so no warning; churning
    # less than the rest is shown, not warned about (a value-weighted list picks loyal customers)
    assert comparison["flagged_below_predicted"] is False
    assert comparison["flagged_below_rest"] is True
    assert result["warnings"] == []


def _list_of(n_flagged: int, predicted: float, churners: int, n_rest: int = 20) -> tuple:
    """Return (scores, transactions): `churners` of the flagged customers make no purchase."""
    n = n_flagged + n_rest
    scores = pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:04d}" for i in range(n)], dtype="string"),
            "churn_probability": [predicted] * n_flagged + [0.1] * n_rest,
            "at_risk": [True] * n_flagged + [False] * n_rest,
            "group": ["treatment", "control"] * (n // 2) + ["treatment"] * (n % 2),
        }
    )
    buyers = scores["customer_id"].iloc[churners:n_flagged].tolist()
    buyers += scores["customer_id"].iloc[n_flagged : n_flagged + n_rest // 2].tolist()
    # one purchase after the window (outside it) shows the data reaches past the horizon
    transactions = pd.DataFrame(
        {
            "customer_id": pd.array([*buyers, "0000"], dtype="string"),
            "date": [date(2024, 2, 10)] * len(buyers) + [date(2024, 3, 5)],
            "amount": 5.0,
        }
    )
    return scores, transactions


def test_flagged_churn_short_of_the_prediction_beyond_its_interval_warns():
    # 100 flagged at 0.8 predicted, 50 churned: Wilson 95% [0.40, 0.60] lies below 0.8
    scores, transactions = _list_of(100, 0.8, 50)
    result = backtest_run(scores, purchase_dates(transactions), AS_OF, 30, PARAMS)
    flagged = result["flagged_vs_rest"]["flagged"]
    assert flagged["churn_rate"] == 0.5 and flagged["ci_high"] < 0.8
    assert result["flagged_vs_rest"]["flagged_below_predicted"] is True
    assert result["flagged_vs_rest"]["flagged_below_rest"] is False  # the rest churned 50% too
    assert len(result["warnings"]) == 1
    assert result["warnings"][0].startswith(
        "list of 2024-01-31: flagged customers churned 50.0% [40.4%, 59.6%], below the 80.0% "
        "predicted for them by more than the tolerated 5% (backtest.shortfall_tolerance) "
        "(if the list was used in a campaign, give its contact log"
    )
    assert result["flagged_vs_rest"]["shortfall_beyond_interval"] == pytest.approx(
        0.8 - flagged["ci_high"], abs=1e-6
    )
    report = run_backtest({AS_OF: (30, scores)}, transactions, PARAMS)
    assert report["warnings"] == result["warnings"]
    assert summary_rows(report)[0]["check"] == "WARN"


def test_flagged_churn_within_the_interval_of_the_prediction_does_not_warn():
    scores, transactions = _list_of(100, 0.55, 50)  # 0.55 lies inside [0.40, 0.60]
    result = backtest_run(scores, purchase_dates(transactions), AS_OF, 30, PARAMS)
    assert result["flagged_vs_rest"]["flagged_below_predicted"] is False
    assert result["warnings"] == []
    assert (
        summary_rows(run_backtest({AS_OF: (30, scores)}, transactions, PARAMS))[0]["check"] == "ok"
    )


def test_a_shortfall_within_the_tolerance_is_recorded_but_does_not_warn():
    # predicted 0.63 lies 3.4 points above the interval [0.40, 0.596]: tolerated by default
    scores, transactions = _list_of(100, 0.63, 50)
    result = backtest_run(scores, purchase_dates(transactions), AS_OF, 30, PARAMS)
    comparison = result["flagged_vs_rest"]
    assert comparison["shortfall_beyond_interval"] == pytest.approx(0.034, abs=0.001)
    assert comparison["flagged_below_predicted"] is False and result["warnings"] == []
    strict = BacktestParams(shortfall_tolerance=0.0)
    result = backtest_run(scores, purchase_dates(transactions), AS_OF, 30, strict)
    assert result["flagged_vs_rest"]["flagged_below_predicted"] is True
    assert len(result["warnings"]) == 1


def test_no_effect_is_reported_when_no_campaign_is_known():
    result = backtest_run(_scores(), purchase_dates(_transactions()), AS_OF, 30, PARAMS)
    campaign = result["campaign"]
    assert campaign["known"] is False
    assert "not an effect" in campaign["note"]
    assert "retention_difference" not in campaign and "significant" not in campaign
    # the groups are still compared, labelled as what they are
    assert campaign["control_comparison"]["treated_retention"] == 0.5
    assert campaign["control_comparison"]["control_retention"] == 0.5
    report = run_backtest({AS_OF: (30, _scores())}, _transactions(), PARAMS)
    assert summary_rows(report)[0]["effect [CI]"] == "no campaign known"


def test_the_effect_is_reported_when_the_record_says_the_list_was_used():
    result = backtest_run(
        _scores(), purchase_dates(_transactions()), AS_OF, 30, PARAMS, campaign_known=True
    )
    campaign = result["campaign"]
    assert campaign["known"] is True
    assert campaign["treated_retention"] == 0.5
    assert campaign["control_retention"] == 0.5
    assert campaign["retention_difference"] == 0.0
    assert campaign["ci_low"] < 0 < campaign["ci_high"]
    assert campaign["significant"] is False
    # the treated customers' outcome is the campaign's: judged are the untreated only
    assert result["flagged_vs_rest"]["judged_on"] == "customers the campaign did not treat"
    assert result["flagged_vs_rest"]["flagged"]["customers"] == 2  # c3, c4 (control)
    report = run_backtest({AS_OF: (30, _scores())}, _transactions(), PARAMS, used={AS_OF})
    assert summary_rows(report)[0]["effect [CI]"].startswith("+0.0% [")


def test_the_contact_log_refines_who_was_treated():
    contacts = check_contacts(
        pd.DataFrame(
            {
                "customer_id": ["c1", "c3", "c5"],
                "contacted_at": ["2024-02-01", "2024-02-03", "2024-01-01"],
            }
        ),
        "contacts.csv",
    )
    result = backtest_run(_scores(), purchase_dates(_transactions()), AS_OF, 30, PARAMS, contacts)
    campaign = result["campaign"]
    assert campaign["known"] is True  # a contact log says a campaign ran
    assert campaign["treated_customers"] == 1  # c1 only: c2 was assigned but never reached
    assert campaign["treated_retention"] == 0.0
    assert campaign["retention_difference"] == -0.5
    assert campaign["control_contacted"] == 1  # c3 was contacted although held out
    assert campaign["assigned_not_contacted"] == 1
    assert campaign["intention_to_treat"]["assigned_retention"] == 0.5


def test_a_real_campaign_effect_is_found_with_an_interval_around_it():
    rng = np.random.default_rng(5)
    n = 6000
    group = np.where(rng.random(n) < 0.5, "treatment", "control")
    retained = rng.random(n) < np.where(group == "treatment", 0.60, 0.50)
    scores = pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:06d}" for i in range(n)], dtype="string"),
            "churn_probability": rng.uniform(0.5, 0.9, n),
            "at_risk": True,
            "group": group,
        }
    )
    buyers = scores.loc[retained, "customer_id"]
    transactions = pd.DataFrame(
        {"customer_id": buyers, "date": date(2024, 2, 10), "amount": 10.0}
    ).reset_index(drop=True)
    campaign = backtest_run(
        scores, purchase_dates(transactions), AS_OF, 30, PARAMS, campaign_known=True
    )["campaign"]
    assert campaign["significant"] is True
    assert campaign["ci_low"] < 0.10 < campaign["ci_high"]
    assert campaign["ci_low"] > 0


def test_only_runs_whose_horizon_has_passed_are_backtested():
    # as_of -> (the horizon the list was scored under, every scored customer), from the record
    published = {AS_OF: (30, _scores()), date(2024, 2, 20): (30, _scores())}
    report = run_backtest(published, _transactions(), PARAMS)
    assert report["newest_data_date"] == "2024-03-02"
    assert [run["as_of"] for run in report["runs"]] == ["2024-01-31"]
    assert [run["horizon_days"] for run in report["runs"]] == [30]
    assert report["pending"] == [{"as_of": "2024-02-20", "matures_on": "2024-03-21"}]


def test_an_archive_without_the_flag_column_names_the_fix():
    with pytest.raises(ChurnError, match="missing column"):
        backtest_run(
            _scores().drop(columns=["at_risk"]), purchase_dates(_transactions()), AS_OF, 30, PARAMS
        )


def test_an_unreadable_contact_date_is_reported_with_its_row():
    with pytest.raises(ChurnError, match="first at data row 2: 'yesterday'"):
        check_contacts(
            pd.DataFrame({"customer_id": ["a", "b"], "contacted_at": ["2024-01-01", "yesterday"]}),
            "contacts.csv",
        )


def test_outcome_windows_count_calendar_dates_of_dates_timestamps_and_zoned_times():
    from datetime import timedelta

    from churn.backtest import churned_after, contacted_within, within_days

    days = [AS_OF, AS_OF + timedelta(days=1), AS_OF + timedelta(days=30), AS_OF + timedelta(31)]
    stamps = pd.Series(pd.to_datetime(days)) + pd.Timedelta(hours=23, minutes=59)
    zoned = stamps.dt.tz_localize("Europe/Berlin")
    for values in (pd.Series(days, dtype="object"), stamps, zoned):
        expected = [(d > AS_OF) and (d <= AS_OF + timedelta(days=30)) for d in days]
        got = within_days(values, AS_OF + timedelta(days=1), AS_OF + timedelta(days=30))
        assert got.tolist() == expected
        # the slow form these replace: one Python date per row
        old = pd.to_datetime(values).dt.date
        assert got.tolist() == ((old > AS_OF) & (old <= AS_OF + timedelta(days=30))).tolist()
    purchases = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "date": days})
    customers = pd.Series(["a", "b", "c", "d", "e"], dtype="string")
    assert churned_after(customers, purchases, AS_OF, 30).tolist() == [1, 0, 0, 1, 1]
    contacts = pd.DataFrame({"customer_id": ["a", "e"], "contacted_at": [days[0], days[3]]})
    assert contacted_within(customers, contacts, AS_OF, 30).tolist() == [
        True, False, False, False, False,
    ]  # fmt: skip


def test_ids_in_matches_pandas_isin_missing_ids_included():
    from churn.ids import ids_in

    ids = pd.Series(["007", "7", None, "x"], dtype="string")
    for values in (["7", None], ["007"], [], pd.Series(["x", "x"], dtype="string")):
        assert ids_in(ids, values).tolist() == ids.isin(set(values)).tolist()
