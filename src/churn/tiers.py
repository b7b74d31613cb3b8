"""Risk tiers: score.tiers' thresholds on a calibrated churn probability (one home for the rule
that the score stage, the Spark score and the simulated past lists all apply)."""

from __future__ import annotations

import numpy as np

from churn.config import TiersParams


def assign_tiers(probability: np.ndarray, tiers: TiersParams) -> np.ndarray:
    """Return 'high' / 'medium' / 'low' for each probability (thresholds are inclusive)."""
    probability = np.asarray(probability, dtype="float64")
    return np.where(
        probability >= tiers.high, "high", np.where(probability >= tiers.medium, "medium", "low")
    ).astype(object)
