"""`churn at-risk`: filter a published at-risk list for a campaign and summarise it."""

from __future__ import annotations

import pandas as pd

from churn.columns import EXPECTED_VALUE, PRIORITY, RISK_TIER, VALUE_AT_RISK
from churn.errors import ChurnError
from churn.score.targeting import TIERS


def parse_where(conditions: list[str]) -> dict[str, str]:
    """Return {column: value} from `column=value` strings (ChurnError on a malformed one)."""
    parsed: dict[str, str] = {}
    for condition in conditions:
        column, sep, value = condition.partition("=")
        if not sep or not column.strip():
            raise ChurnError(f"--where {condition!r}: write it as column=value, e.g. channel=app")
        parsed[column.strip()] = value.strip()
    return parsed


def filter_list(
    frame: pd.DataFrame,
    *,
    tiers: list[str] | None = None,
    top: int | None = None,
    min_value: float | None = None,
    where: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Return the rows matching every filter, in priority order; `top` applies last.

    min_value is a floor on expected_value (what the customer is worth if kept).
    """
    mask = pd.Series(True, index=frame.index)
    if tiers:
        unknown = sorted(set(tiers) - set(TIERS))
        if unknown:
            raise ChurnError(f"--tier {unknown}: unknown tier; use {', '.join(TIERS)}")
        mask &= frame[RISK_TIER].isin(tiers).to_numpy(dtype=bool)
    if min_value is not None:
        mask &= (frame[EXPECTED_VALUE] >= min_value).to_numpy(dtype=bool)
    for column, value in (where or {}).items():
        if column not in frame.columns:
            raise ChurnError(
                f"--where {column}={value}: the list has no column {column!r}; "
                f"columns: {', '.join(frame.columns)}"
            )
        mask &= (frame[column].astype("string") == value).fillna(False).to_numpy(dtype=bool)
    selected = frame.loc[mask.to_numpy(dtype=bool)].sort_values(PRIORITY, kind="stable")
    if top is not None:
        if top < 1:
            raise ChurnError(f"--top {top}: give a positive number of customers")
        selected = selected.head(top)
    return selected.reset_index(drop=True)


def summarise_list(frame: pd.DataFrame) -> str:
    """Return a few lines for the terminal: customers and value at risk, overall and per tier."""
    lines = [
        f"{len(frame):,} customers, value at risk {frame[VALUE_AT_RISK].sum():,.2f}",
    ]
    for tier in TIERS:
        part = frame.loc[(frame[RISK_TIER] == tier).to_numpy(dtype=bool)]
        if len(part):
            lines.append(
                f"  {tier:<6} {len(part):>9,} customers, value at risk {part[VALUE_AT_RISK].sum():,.2f}"
            )
    return "\n".join(lines)
