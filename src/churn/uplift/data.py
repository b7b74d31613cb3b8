"""The uplift code's input: matured randomized campaign rows, checked, and the feature columns.

One row per customer and campaign (a published list whose horizon has passed):

| column | type | meaning |
| --- | --- | --- |
| customer_id | text | the customer |
| campaign_id | text | the campaign (one published list) |
| campaign_date | date | the list's as_of: features and risk are as of this day |
| label_end | date | last day of the label window (campaign_date + horizon); <= today |
| treated | 0/1 | 1 = assigned to be contacted, 0 = the list's random control group |
| control_share | float in (0, 1) | the list's control share; P(treated) = 1 - control_share |
| retained | 0/1 | 1 = bought again inside (campaign_date, label_end] |
| expected_value | float >= 0 | margin kept if the customer stays (score stage's expected_value) |
| churn_probability | float in [0, 1] | the risk the list was ranked by (the risk x value policy) |
| action | text, optional | the action assigned to a treated customer |
| anything else | numeric, bool or text | features as of campaign_date (the learner's inputs) |

Candidates (whom to contact now) carry the same features plus customer_id, expected_value,
churn_probability and `covered` (bool: in the population past lists flagged).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from churn.columns import (
    ASSIGNED_ACTION,
    CAMPAIGN_DATE,
    CAMPAIGN_ID,
    CHURN_PROBABILITY,
    CONTACT,
    CONTROL_SHARE,
    COVERED,
    CUSTOMER_ID,
    EXPECTED_INCREMENTAL_PROFIT,
    EXPECTED_VALUE,
    EXPLORE,
    LABEL_END,
    RETAINED,
    TREATED,
    UPLIFT,
)
from churn.errors import ChurnError

REQUIRED = (
    CUSTOMER_ID,
    CAMPAIGN_ID,
    CAMPAIGN_DATE,
    LABEL_END,
    TREATED,
    CONTROL_SHARE,
    RETAINED,
    EXPECTED_VALUE,
    CHURN_PROBABILITY,
)
# never features: identifiers, dates, the assignment, the outcome, and what the policies add
RESERVED = frozenset(
    REQUIRED + (ASSIGNED_ACTION, COVERED, UPLIFT, EXPECTED_INCREMENTAL_PROFIT, CONTACT, EXPLORE)
)


def _first_bad(frame: pd.DataFrame, mask: np.ndarray, column: str) -> str:
    index = int(np.flatnonzero(mask)[0])
    return f"{int(mask.sum())} row(s) (first: row {index + 1}, value {frame[column].iloc[index]!r})"


def _binary(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = ~values.isin([0, 1]).to_numpy()
    if bad.any():
        raise ChurnError(
            f"{source}: column '{column}' must be 0 or 1; {_first_bad(frame, bad, column)}; "
            "fix the campaign table"
        )
    return values.astype("int8")


def _numeric(
    frame: pd.DataFrame, column: str, source: str, low: float, high: float | None, rule: str
) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    array = values.to_numpy()
    bad = ~np.isfinite(array) | (array < low)
    if high is not None:
        bad |= array > high
    if rule == "open":  # (low, high): a control share of 0 or 1 is not a randomized list
        bad |= (array <= low) | (array >= (high if high is not None else np.inf))
    if bad.any():
        raise ChurnError(
            f"{source}: column '{column}' must be a number in "
            f"{'(' if rule == 'open' else '['}{low}, {high if high is not None else 'inf'}"
            f"{')' if rule == 'open' else ']'}; {_first_bad(frame, bad, column)}; fix the "
            "campaign table"
        )
    return values


def _dates(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = pd.to_datetime(frame[column], errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        raise ChurnError(
            f"{source}: column '{column}' must be a date; {_first_bad(frame, bad, column)}; "
            "fix the campaign table"
        )
    return values.dt.normalize()


def check_campaign_rows(rows: pd.DataFrame, source: str = "campaign rows") -> pd.DataFrame:
    """Return a typed copy of matured randomized campaign rows; raise ChurnError naming the
    column, the first bad value and the fix on any problem."""
    missing = [column for column in REQUIRED if column not in rows.columns]
    if missing:
        raise ChurnError(
            f"{source}: column(s) {missing} missing; the uplift code needs {list(REQUIRED)} "
            "(see churn.uplift.data)"
        )
    checked = rows.reset_index(drop=True).copy()
    checked[CUSTOMER_ID] = checked[CUSTOMER_ID].astype("string")
    checked[CAMPAIGN_ID] = checked[CAMPAIGN_ID].astype("string")
    for column in (CUSTOMER_ID, CAMPAIGN_ID):
        bad = checked[column].isna().to_numpy()
        if bad.any():
            raise ChurnError(f"{source}: column '{column}' is empty in {int(bad.sum())} row(s)")
    checked[TREATED] = _binary(checked, TREATED, source)
    checked[RETAINED] = _binary(checked, RETAINED, source)
    checked[CONTROL_SHARE] = _numeric(checked, CONTROL_SHARE, source, 0.0, 1.0, "open")
    checked[EXPECTED_VALUE] = _numeric(checked, EXPECTED_VALUE, source, 0.0, None, "closed")
    checked[CHURN_PROBABILITY] = _numeric(checked, CHURN_PROBABILITY, source, 0.0, 1.0, "closed")
    checked[CAMPAIGN_DATE] = _dates(checked, CAMPAIGN_DATE, source)
    checked[LABEL_END] = _dates(checked, LABEL_END, source)
    early = (checked[LABEL_END] <= checked[CAMPAIGN_DATE]).to_numpy()
    if early.any():
        raise ChurnError(
            f"{source}: column '{LABEL_END}' must be after '{CAMPAIGN_DATE}'; "
            f"{_first_bad(checked, early, LABEL_END)}; fix the campaign table"
        )
    duplicated = checked.duplicated([CAMPAIGN_ID, CUSTOMER_ID]).to_numpy()
    if duplicated.any():
        raise ChurnError(
            f"{source}: {int(duplicated.sum())} repeated ({CAMPAIGN_ID}, {CUSTOMER_ID}) pair(s) "
            f"(first: row {int(np.flatnonzero(duplicated)[0]) + 1}); one row per customer and "
            "campaign"
        )
    per_campaign = checked.groupby(CAMPAIGN_ID, observed=True).agg(
        dates=(CAMPAIGN_DATE, "nunique"),
        ends=(LABEL_END, "nunique"),
        shares=(CONTROL_SHARE, "nunique"),
    )
    mixed = per_campaign[(per_campaign > 1).any(axis=1)]
    if len(mixed):
        raise ChurnError(
            f"{source}: campaign {mixed.index[0]!r} has more than one {CAMPAIGN_DATE}, "
            f"{LABEL_END} or {CONTROL_SHARE}; a campaign is one list with one random split"
        )
    return checked


def campaign_feature_columns(rows: pd.DataFrame) -> list[str]:
    """Return the learner's feature columns: every column that is not a reserved one, in order."""
    return [column for column in rows.columns if column not in RESERVED]


def feature_frame(
    frame: pd.DataFrame,
    features: Iterable[str],
    categories: dict[str, list[str]] | None = None,
    source: str = "campaign rows",
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Return the features as LightGBM reads them (text as categories with fixed levels), and the
    levels used; pass the training levels back in to encode new rows the same way."""
    features = list(features)
    missing = [column for column in features if column not in frame.columns]
    if missing:
        raise ChurnError(
            f"{source}: feature column(s) {missing} missing; the learner was fitted on "
            f"{features} — give the candidates the same features"
        )
    levels = dict(categories or {})
    out = {}
    for column in features:
        values = frame[column]
        if column in levels or not (
            pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        ):
            known = levels.setdefault(column, sorted(values.dropna().astype(str).unique().tolist()))
            out[column] = pd.Categorical(
                values.astype("string").astype(object).where(values.notna(), None),
                categories=known,
            )
        else:
            out[column] = values.astype("float64").to_numpy()
    return pd.DataFrame(out, index=frame.index), levels
