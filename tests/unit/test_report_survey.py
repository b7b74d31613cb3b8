"""NPS answers: validated, one per customer and day, grouped as promoter/passive/detractor."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.report.survey import nps_answers_by_day, nps_group, pool_churn_by_nps


def answers(rows):
    return pd.DataFrame(rows, columns=["customer_id", "answered_at", "nps_score"])


def test_two_answers_on_one_day_keep_the_lower_score():
    kept = nps_answers_by_day(
        answers(
            [("1", date(2024, 1, 5), 9), ("1", date(2024, 1, 5), 4), ("1", date(2024, 2, 1), 10)]
        ),
        as_of=date(2024, 3, 1),
    )
    assert kept["nps_score"].tolist() == [4, 10]


def test_answers_after_as_of_are_ignored():
    kept = nps_answers_by_day(
        answers([("1", date(2024, 1, 5), 9), ("2", date(2024, 3, 2), 1)]), as_of=date(2024, 3, 1)
    )
    assert kept["customer_id"].tolist() == ["1"]


def test_scores_outside_zero_to_ten_are_an_error_naming_the_row():
    with pytest.raises(
        ChurnError,
        match=r"nps.parquet: 1 answers .*\(first at row 2: answered_at '2024-01-06', nps_score '11'\)",
    ):
        nps_answers_by_day(
            answers([("1", date(2024, 1, 5), 9), ("2", date(2024, 1, 6), 11)]),
            as_of=date(2024, 3, 1),
            source="nps.parquet",
        )


def test_missing_score_column_is_an_error():
    with pytest.raises(ChurnError, match="column 'nps_score' is missing"):
        nps_answers_by_day(answers([]).drop(columns="nps_score"), as_of=date(2024, 3, 1))


def test_groups_follow_the_nps_bands():
    groups = nps_group(pd.Series([0, 6, 7, 8, 9, 10]))
    assert groups.tolist() == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
    ]


def test_customers_without_an_answer_are_the_rest_of_customers_at_start():
    by_period = pd.DataFrame(
        {
            "period_index": [1, 1, 2],
            "nps_group": ["promoter", "detractor", "promoter"],
            "customers_start": [4, 2, 5],
            "customers_lost": [0, 1, 1],
        }
    )
    periods = pd.DataFrame(
        {"period_index": [1, 2], "customers_start": [10, 12], "customers_lost": [2, 3]}
    )
    pooled = pool_churn_by_nps(by_period, periods).set_index("nps_group")
    assert pooled["customers_start"].to_dict() == {
        "promoter": 9,
        "passive": 0,
        "detractor": 2,
        "no answer yet": 11,
    }
    assert pooled["customers_lost"].to_dict() == {
        "promoter": 1,
        "passive": 0,
        "detractor": 1,
        "no answer yet": 3,
    }
    assert pooled.loc["detractor", "churn_rate_pct"] == 50.0
    assert pd.isna(pooled.loc["passive", "churn_rate_pct"])  # nobody: undefined, not 0
