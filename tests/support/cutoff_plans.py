"""Cutoff-planning test helpers: a fixed as-of date and features params for a cutoff plan."""

from __future__ import annotations

from datetime import date

from churn.config import ChurnParams, CutoffsParams, FeaturesParams, RolesParams

AS_OF = date(2025, 12, 31)


def params(
    horizon=90, count=12, step=30, history=90, calibration=1
) -> tuple[ChurnParams, FeaturesParams]:
    """Return the (churn, features) sections plan_cutoffs reads: this horizon, cutoff count,
    spacing, history and calibration cutoffs."""
    return ChurnParams(horizon_days=horizon), FeaturesParams(
        cutoffs=CutoffsParams(count=count, step_days=step, min_history_days=history),
        roles=RolesParams(calibration_cutoffs=calibration),
    )
