"""Uplift metrics: the Qini curve and coefficient, uplift at k, and IPW incremental profit.

The Qini coefficient follows Radcliffe (2007) as scikit-uplift computes it (`qini_auc_score`,
negative_effect=True): the area between the model's Qini curve and the random line, divided by
the same area for the perfect ordering (responders among the treated first, responders among the
control last). tests/model/test_uplift_hillstrom.py checks both give the same number.
"""

from __future__ import annotations

import numpy as np


def _arrays(*columns: np.ndarray) -> list[np.ndarray]:
    arrays = [np.asarray(column) for column in columns]
    if len({len(array) for array in arrays}) != 1:
        raise ValueError(f"uplift metrics: arrays of different lengths {[len(a) for a in arrays]}")
    return arrays


def qini_curve(
    outcome: np.ndarray, score: np.ndarray, treated: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (customers targeted, incremental responders) at each distinct score, best first.

    Incremental responders at n = treated responders - control responders x (treated / control)
    among the n highest-scored customers; the curve starts at (0, 0).
    """
    outcome, score, treated = _arrays(outcome, score, treated)
    order = np.argsort(score, kind="mergesort")[::-1]
    outcome = outcome[order].astype("float64")
    treated = treated[order].astype("float64")
    score = score[order]
    # evaluate only where the score changes, so the order inside ties does not matter
    ends = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    n_treated = np.cumsum(treated)[ends]
    responders_treated = np.cumsum(outcome * treated)[ends]
    responders_control = np.cumsum(outcome * (1 - treated))[ends]
    n_all = (ends + 1).astype("float64")
    n_control = n_all - n_treated
    ratio = np.divide(n_treated, n_control, out=np.zeros_like(n_treated), where=n_control != 0)
    values = responders_treated - responders_control * ratio
    return np.r_[0.0, n_all], np.r_[0.0, values]


def qini_coefficient(outcome: np.ndarray, score: np.ndarray, treated: np.ndarray) -> float | None:
    """Return the normalised area under the Qini curve (1 = perfect, 0 = random); None when the
    perfect ordering gains nothing over random (no measurable effect to order by)."""
    outcome, score, treated = _arrays(outcome, score, treated)
    if len(outcome) == 0 or treated.all() or not treated.any():
        return None
    x_model, y_model = qini_curve(outcome, score, treated)
    perfect_score = outcome * treated - outcome * (1 - treated)
    x_perfect, y_perfect = qini_curve(outcome, perfect_score, treated)
    random_area = x_perfect[-1] * y_perfect[-1] / 2.0
    perfect_area = np.trapezoid(y_perfect, x_perfect) - random_area
    if perfect_area == 0:
        return None
    return float((np.trapezoid(y_model, x_model) - random_area) / perfect_area)


def uplift_at_k(
    outcome: np.ndarray, score: np.ndarray, treated: np.ndarray, share: float
) -> float | None:
    """Return treated minus control response rate among the top `share` of customers by score
    (scikit-uplift's uplift_at_k, strategy "overall"); None when an arm is empty there."""
    outcome, score, treated = _arrays(outcome, score, treated)
    size = int(len(outcome) * share)
    top = np.argsort(score, kind="mergesort")[::-1][:size]
    in_treated, in_control = treated[top] == 1, treated[top] == 0
    if not in_treated.any() or not in_control.any():
        return None
    return float(outcome[top][in_treated].mean() - outcome[top][in_control].mean())


def ipw_incremental_profit(
    retained: np.ndarray,
    treated: np.ndarray,
    control_share: np.ndarray,
    value: np.ndarray,
    contact_cost: float,
    retention_control: np.ndarray | None = None,
    retention_treated: np.ndarray | None = None,
) -> np.ndarray:
    """Return each customer's inverse-propensity-weighted incremental profit of a contact.

    Plain IPW: (treated / P(treated) - control / P(control)) x retained x value - contact cost.
    Its sum over the customers a policy contacts estimates, without bias on a randomized
    campaign, the margin that policy's contacts keep minus what they cost. With outcome models
    fitted on other data (retention without / with a contact), the augmented form (AIPW)
    m1 - m0 + treated (retained - m1) / P(treated) - control (retained - m0) / P(control)
    replaces the weighted outcome: still unbiased under the random split whatever the models
    are, and far less noisy, since the weights then multiply residuals instead of retention.
    """
    retained, treated, control_share, value = _arrays(retained, treated, control_share, value)
    retained = retained.astype("float64")
    p_treated, p_control = 1.0 - control_share, control_share
    if retention_control is None or retention_treated is None:
        effect = (treated / p_treated - (1 - treated) / p_control) * retained
    else:
        m0, m1 = _arrays(retention_control, retention_treated)
        effect = (
            m1
            - m0
            + treated * (retained - m1) / p_treated
            - (1 - treated) * (retained - m0) / p_control
        )
    return effect * value - contact_cost
