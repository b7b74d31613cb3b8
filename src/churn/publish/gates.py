"""The checks a list must pass before it is published: schema, volume, freshness, quarantine
share, drift, and that it was scored by the current champion."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import (
    AS_OF,
    AT_RISK,
    CHURN_PROBABILITY,
    CUSTOMER_ID,
    EXPECTED_NET_BENEFIT,
    EXPECTED_VALUE,
    GROUP,
    MODEL_VERSION,
    PRIORITY,
    REASON_FAMILY,
    REASONS,
    RISK_TIER,
    SUGGESTED_ACTION,
    SUPPRESSED,
    UPLIFT,
    VALUE_AT_RISK,
)
from churn.config import PublishParams
from churn.errors import DataCheckFailed

# the scores table's schema (data/scores/scores.parquet); any other column is a segment attribute
SCORE_SCHEMA: dict[str, str] = {
    CUSTOMER_ID: "string",
    AS_OF: "date",
    CHURN_PROBABILITY: "float",
    RISK_TIER: "string",
    EXPECTED_VALUE: "float",
    VALUE_AT_RISK: "float",
    EXPECTED_NET_BENEFIT: "float",
    PRIORITY: "int",
    AT_RISK: "bool",
    SUPPRESSED: "bool",
    GROUP: "string",
    MODEL_VERSION: "string",
    REASONS: "string",
    REASON_FAMILY: "string",
    SUGGESTED_ACTION: "string",
}
# columns a scores table may hold that are the pipeline's own, not segments: the uplift policy's
# estimate (kept in scored.parquet, where the page's what-if reads it, not in the lists)
OPTIONAL_SCORE_COLUMNS: dict[str, str] = {UPLIFT: "float"}


# --------------------------------------------------------------------------- gates
@dataclass(frozen=True)
class Gate:
    """The outcome of one publishing check."""

    name: str
    passed: bool
    detail: str


def validate_scores(scores: pd.DataFrame, source: str = "scores") -> None:
    """Raise DataCheckFailed unless `scores` is a non-empty scores table of the expected schema."""
    problems = []
    for column, kind in SCORE_SCHEMA.items():
        if column not in scores.columns:
            problems.append(f"column '{column}' is missing")
            continue
        if not _has_kind(scores[column], kind):
            problems.append(f"column '{column}' should be {kind}, is {scores[column].dtype}")
    for column, kind in OPTIONAL_SCORE_COLUMNS.items():
        if column in scores.columns and not _has_kind(scores[column], kind):
            problems.append(f"column '{column}' should be {kind}, is {scores[column].dtype}")
    if problems:
        raise DataCheckFailed(
            f"{source}: not a scores table: {'; '.join(problems)}; rerun `churn score`"
        )
    if scores.empty:
        raise DataCheckFailed(f"{source}: no customers were scored; nothing to publish")
    if scores[AS_OF].nunique() != 1 or scores[MODEL_VERSION].nunique() != 1:
        raise DataCheckFailed(f"{source}: expected one as_of date and one model version per table")
    if scores[CUSTOMER_ID].isna().any() or scores[CUSTOMER_ID].duplicated().any():
        raise DataCheckFailed(f"{source}: customer_id must be present and unique")
    probability = scores[CHURN_PROBABILITY].to_numpy(dtype="float64")
    if not (np.isfinite(probability).all() and ((probability >= 0) & (probability <= 1)).all()):
        raise DataCheckFailed(f"{source}: churn_probability has values outside [0, 1]")
    flagged = scores[AT_RISK].to_numpy(dtype=bool)
    if (flagged & scores[SUPPRESSED].to_numpy(dtype=bool)).any():
        raise DataCheckFailed(f"{source}: suppressed customers are flagged; rerun `churn score`")
    if scores.loc[flagged, REASONS].isna().any():
        raise DataCheckFailed(f"{source}: flagged customers without reasons; rerun `churn score`")


def _has_kind(values: pd.Series, kind: str) -> bool:
    if kind == "string":
        return pd.api.types.is_string_dtype(values) or bool(values.isna().all())
    if kind == "date":
        return values.dtype == object and all(isinstance(v, dt.date) for v in values.dropna())
    if kind == "float":
        return pd.api.types.is_float_dtype(values)
    if kind == "int":
        return pd.api.types.is_integer_dtype(values)
    return pd.api.types.is_bool_dtype(values)


def check_ingest_report(report: dict[str, Any] | None, params: PublishParams) -> Gate:
    """Return the quarantine gate from reports/ingest.json (passes, noting it, when absent)."""
    if report is None:
        return Gate("quarantine", True, "no ingest report; not checked")
    share = report.get("quarantine_share")
    if share is None:
        rows_in = next(
            (
                report[k]
                for k in ("rows_read", "rows_in", "rows_source", "rows_total")
                if k in report
            ),
            None,
        )
        quarantined = report.get("rows_quarantined", report.get("quarantined"))
        if rows_in and quarantined is not None:
            share = quarantined / rows_in
    if share is None:
        return Gate("quarantine", True, "ingest report has no quarantine share; not checked")
    passed = float(share) <= params.max_quarantine_share
    return Gate(
        "quarantine",
        passed,
        f"{float(share):.2%} of source rows quarantined (limit {params.max_quarantine_share:.2%})",
    )


def check_scores_freshness(as_of: dt.date, today: dt.date, params: PublishParams) -> Gate:
    """Return the freshness gate: the as-of date must be at most publish.max_age_days old."""
    age = (today - as_of).days
    if params.max_age_days is None:
        return Gate("freshness", True, f"as_of {as_of} is {age} days old; no limit set")
    return Gate(
        "freshness",
        age <= params.max_age_days,
        f"as_of {as_of} is {age} days old (limit {params.max_age_days})",
    )


def check_scores_volume(scores: pd.DataFrame, params: PublishParams) -> Gate:
    """Return the volume gate: at least publish.min_customers customers were scored."""
    return Gate(
        "volume",
        len(scores) >= params.min_customers,
        f"{len(scores)} customers scored (minimum {params.min_customers})",
    )


def check_drift_gate(drift_report: dict[str, Any] | None) -> Gate:
    """Return the drift gate: passes unless reports/drift.json says `"passed": false`.

    Feature and score PSI only warn by default (a closed customer base ages, and PSI cannot tell
    ageing from broken data: the blocking checks are ingest.integrity); a report fails the gate only
    when drift.score_blocks or drift.blocking_features opted in. `--accept-drift` publishes anyway.
    """
    if drift_report is None:
        return Gate("drift", True, "no drift report; not checked")
    passed = bool(drift_report.get("passed", True))
    detail = str(drift_report.get("detail", drift_report.get("summary", "")))
    if passed and drift_report.get("status", "ok") != "ok":
        detail = f"passed with a warning (PSI warns, it does not block): {detail}"
    return Gate("drift", passed, detail or ("no drift" if passed else "drift detected"))


def enforce_gates(gates: list[Gate], accept_drift: bool = False) -> list[Gate]:
    """Raise DataCheckFailed naming every failed gate (drift is waived by accept_drift)."""
    failed = [g for g in gates if not g.passed and not (g.name == "drift" and accept_drift)]
    if failed:
        lines = "; ".join(f"{g.name}: {g.detail}" for g in failed)
        fix = (
            " (rerun with --accept-drift after review)"
            if any(g.name == "drift" for g in failed)
            else ""
        )
        raise DataCheckFailed(f"publish refused by gate(s): {lines}{fix}")
    return gates


def check_champion(
    scores: pd.DataFrame,
    champion_version: str | None,
    allow_other: bool = False,
    fallback_version: str | None = None,
) -> Gate:
    """Return the champion gate: the list was scored by the model the champion alias points to.

    A list scored by any other model (an experiment's challenger, a champion since rolled back)
    is refused unless `allow_other` (an explicit override the record keeps). With no champion
    yet, a list scored by the gate's fallback (`fallback_version`, the best simple baseline that
    promote wrote to models/champion/ because no model passed) passes, named as such.
    """
    version = str(scores[MODEL_VERSION].iloc[0])
    if champion_version is not None and version == str(champion_version):
        return Gate("champion", True, f"scored by the champion, version {version}")
    if champion_version is None and fallback_version is not None and version == fallback_version:
        return Gate(
            "champion",
            True,
            f"scored by the fallback {version} (a simple baseline, not a trained model): no "
            "model has passed the gate yet (reports/promotion.json says why)",
        )
    detail = (
        f"scored by model version {version}, but the champion is "
        f"{champion_version if champion_version is not None else 'not set'}; rerun `dvc repro` "
        "(score uses models/champion/, which the promote stage keeps equal to the champion)"
    )
    if allow_other:
        return Gate("champion", True, detail + "; published anyway with --allow-non-champion")
    return Gate("champion", False, detail + ", or publish it anyway with --allow-non-champion")
