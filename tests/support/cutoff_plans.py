"""Cutoff-planning test helpers: a fixed as-of date and features params for a cutoff plan."""

from __future__ import annotations

from datetime import date

from churn.config import CutoffsParams, FeaturesParams, RolesParams

AS_OF = date(2025, 12, 31)


def params(horizon=90, count=12, step=30, history=90, calibration=1) -> FeaturesParams:
    """Return features params with this horizon, cutoff count, spacing, history and calibration."""
    return FeaturesParams(
        horizon_days=horizon,
        cutoffs=CutoffsParams(count=count, step_days=step, min_history_days=history),
        roles=RolesParams(calibration_cutoffs=calibration),
    )
