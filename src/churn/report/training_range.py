"""Features whose scored values lie outside the training range, read from the drift report
(reports/drift.json), in the words the retention page shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from churn.errors import ChurnError


@dataclass(frozen=True)
class OutOfRangeFeature:
    """One model feature with scored customers beyond the values the model learnt from."""

    feature: str
    share_outside: float  # share of scored customers below the training minimum or above the max
    share_above: float
    share_below: float
    training_min: float
    training_max: float
    current_min: float
    current_max: float

    @property
    def direction(self) -> str:
        """Return 'above', 'below' or 'both': where the scored values left the training range."""
        if self.share_above and self.share_below:
            return "both"
        return "above" if self.share_above else "below"


def summarize_out_of_range(drift: Mapping[str, Any], source: str) -> list[OutOfRangeFeature]:
    """Return the features the drift report names as outside the training range (at least
    drift.out_of_range_share of scored customers), largest share first; [] when there are none.

    Raises a ChurnError naming the fix when the report predates the out-of-range measure."""
    if "outside_training_range" not in drift or "features_outside_training_range" not in drift:
        raise ChurnError(
            f"{source}: no out-of-range measure (written by an older `churn drift`); "
            "rerun `dvc repro drift`"
        )
    entries = drift["outside_training_range"]
    found = []
    for name in drift["features_outside_training_range"]:
        if name not in entries:
            raise ChurnError(
                f"{source}: feature {name!r} is named outside the training range but has no "
                "entry in 'outside_training_range'; rerun `dvc repro drift`"
            )
        entry = entries[name]
        above, below = float(entry["share_above_max"]), float(entry["share_below_min"])
        found.append(
            OutOfRangeFeature(
                feature=str(name),
                share_outside=above + below,
                share_above=above,
                share_below=below,
                training_min=float(entry["training_min"]),
                training_max=float(entry["training_max"]),
                current_min=float(entry["current_min"]),
                current_max=float(entry["current_max"]),
            )
        )
    return sorted(found, key=lambda f: (-f.share_outside, f.feature))
