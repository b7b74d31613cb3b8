"""NPS survey answers: validation, NPS per period, and churn rate by promoter/passive/detractor."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from churn.columns import ANSWERED_AT, CUSTOMER_ID, NPS_SCORE
from churn.errors import ChurnError
from churn.report.periods import Period, period_index

NPS_GROUPS = ("promoter", "passive", "detractor")
NO_ANSWER = "no answer yet"


def nps_answers_by_day(nps: pd.DataFrame, as_of: date, source: str = "nps") -> pd.DataFrame:
    """Return one answer per customer and day on or before as_of (the lowest score that day).

    Two answers on one day cannot be ordered, so the more cautious (lower) one is kept.
    """
    for column in (CUSTOMER_ID, ANSWERED_AT, NPS_SCORE):
        if column not in nps.columns:
            raise ChurnError(
                f"{source}: column '{column}' is missing; the report reads the NPS answers "
                "written by `churn ingest`"
            )
    answered = pd.to_datetime(nps[ANSWERED_AT], errors="coerce")
    score = pd.to_numeric(nps[NPS_SCORE], errors="coerce")
    bad = answered.isna() | score.isna() | ~score.between(0, 10) | (score % 1 != 0)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ChurnError(
            f"{source}: {int(bad.sum())} answers without a date or with a score outside 0-10 "
            f"(first at row {first + 1}: {ANSWERED_AT} '{nps[ANSWERED_AT].iloc[first]}', "
            f"{NPS_SCORE} '{nps[NPS_SCORE].iloc[first]}'); fix the survey export"
        )
    answers = pd.DataFrame(
        {
            CUSTOMER_ID: nps[CUSTOMER_ID].astype("string"),
            ANSWERED_AT: answered.dt.normalize(),
            NPS_SCORE: score.astype("int64"),
        }
    )
    answers = answers[answers[ANSWERED_AT] <= pd.Timestamp(as_of)]
    return (
        answers.groupby([CUSTOMER_ID, ANSWERED_AT], as_index=False)[NPS_SCORE]
        .min()
        .sort_values([CUSTOMER_ID, ANSWERED_AT], ignore_index=True)
    )


def nps_group(score: pd.Series) -> pd.Series:
    """Return promoter (9-10), passive (7-8) or detractor (0-6) for each score."""
    return pd.Series(
        np.select([score >= 9, score >= 7], ["promoter", "passive"], "detractor"),
        index=score.index,
        dtype="string",
    )


def summarize_nps(answers: pd.DataFrame, period: Period, period_indices: pd.Index) -> pd.DataFrame:
    """Return per period index: answers, promoters, passives, detractors and NPS (-100..100).

    NPS = % promoters - % detractors among the answers given in the period; empty when none.
    """
    index = answers[ANSWERED_AT].map(lambda day: period_index(period, day.date()))
    counts = (
        pd.crosstab(index, nps_group(answers[NPS_SCORE]))
        .reindex(columns=list(NPS_GROUPS), fill_value=0)
        .reindex(period_indices, fill_value=0)
    )
    total = counts.sum(axis=1)
    summary = pd.DataFrame(
        {
            "nps_answers": total,
            "promoters": counts["promoter"],
            "passives": counts["passive"],
            "detractors": counts["detractor"],
        },
        index=period_indices,
    ).astype("int64")
    share = 100.0 / total.where(total > 0)
    summary["nps"] = ((counts["promoter"] - counts["detractor"]) * share).round(1)
    summary.index.name = "period_index"
    return summary.reset_index()


def pool_churn_by_nps(by_period: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """Return churn rate per NPS group pooled over the given periods, plus a 'no answer' row.

    `by_period` comes from count_churn_by_nps; `periods` holds period_index, customers_start and
    customers_lost of the same periods (customers without an answer are the remainder).
    """
    chosen = by_period[by_period["period_index"].isin(periods["period_index"])]
    groups = (
        chosen.groupby("nps_group")[["customers_start", "customers_lost"]]
        .sum()
        .reindex(list(NPS_GROUPS), fill_value=0)
    )
    answered = groups.sum()
    groups.loc[NO_ANSWER] = [
        int(periods["customers_start"].sum()) - int(answered["customers_start"]),
        int(periods["customers_lost"].sum()) - int(answered["customers_lost"]),
    ]
    groups = groups.astype("int64")
    groups["churn_rate_pct"] = (
        100.0 * groups["customers_lost"] / groups["customers_start"].where(lambda s: s > 0)
    ).round(2)
    groups.index.name = "nps_group"
    return groups.reset_index()
