"""Batch scoring: probabilities, tiers, value, targeting, control group, reasons and actions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from churn.columns import (
    AT_RISK,
    CUSTOMER_ID,
    EXPECTED_VALUE,
    REASON_FAMILY,
    REASONS,
    SUGGESTED_ACTION,
)
from churn.config import ScoreParams
from churn.logs import get_logger
from churn.score.targeting import (
    SaveRates,
    UpliftTargeting,
    build_profit_curve,
    score_customers,
    summarise_scores,
)

if TYPE_CHECKING:  # LightGBM is slow to import; publish and the app only need targeting
    from churn.model import ChurnModel

log = get_logger("score")

__all__ = ["build_profit_curve", "build_scores", "score_customers", "summarise_scores"]


def build_scores(
    snapshot: pd.DataFrame,
    model: ChurnModel,
    params: ScoreParams,
    suppressed_ids: Iterable[str] = (),
    save_rates: SaveRates | None = None,
    uplift: UpliftTargeting | None = None,
) -> pd.DataFrame:
    """Return the full scores table: every customer scored; reasons and actions for flagged ones.

    `save_rates` and `uplift` are score_customers' (measured save rates; the uplift policy).

    Reasons cost a TreeSHAP pass per row, so they are computed only for flagged customers
    (treatment and control alike, so the two groups stay comparable).
    """
    from churn.score.phrasing import build_references
    from churn.score.reasons import choose_method, explain_customers, suggest_actions

    probability = model.predict_proba(snapshot)
    scores = score_customers(
        snapshot,
        probability,
        params,
        model_version=model.version,
        suppressed_ids=suppressed_ids,
        save_rates=save_rates,
        uplift=uplift,
    )
    flagged = scores[AT_RISK].to_numpy(dtype=bool)
    reasons = pd.Series(pd.NA, index=scores.index, dtype="string")
    families = pd.Series(pd.NA, index=scores.index, dtype="string")
    actions = pd.Series(pd.NA, index=scores.index, dtype="string")
    if flagged.any():
        by_id = snapshot.set_index(snapshot[CUSTOMER_ID].astype("string"))
        rows = by_id.loc[scores.loc[flagged, CUSTOMER_ID].to_numpy()].reset_index(drop=True)
        log.info(
            "reasons for %d flagged customers by %s, against the %s reference",
            len(rows),
            choose_method(params.reasons, len(rows)),
            params.reasons.contribution_reference,
        )
        # "customers like them" are read from every scored customer, not only the flagged ones
        references = build_references(snapshot, params.reasons.peer_tenure_bands_days, probability)
        # and so is the average customer whose risk a reason raises
        texts, main = explain_customers(model, rows, params.reasons, references, snapshot)
        value = scores[EXPECTED_VALUE].to_numpy(dtype="float64")
        threshold = float(np.quantile(value, params.actions.high_value_quantile))
        reasons[flagged] = texts
        families[flagged] = pd.array(main, dtype="string")
        actions[flagged] = suggest_actions(main, value[flagged], threshold, params.actions)
    return scores.assign(**{REASONS: reasons, REASON_FAMILY: families, SUGGESTED_ACTION: actions})
