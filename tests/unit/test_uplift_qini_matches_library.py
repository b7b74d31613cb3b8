"""Our Qini coefficient and uplift at k are scikit-uplift's definitions, number for number."""

from __future__ import annotations

import numpy as np
import pytest
from sklift.metrics import qini_auc_score
from sklift.metrics import uplift_at_k as sklift_uplift_at_k

from churn.uplift.qini import qini_coefficient, uplift_at_k

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # sklift uses a deprecated helper


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qini_and_uplift_at_k_equal_scikit_uplift_including_ties(seed):
    rng = np.random.default_rng(seed)
    treated = rng.integers(0, 2, 500)
    outcome = (rng.random(500) < 0.3 + 0.1 * treated).astype(int)
    score = np.round(rng.normal(size=500), 1)  # rounded: many ties
    assert qini_coefficient(outcome, score, treated) == pytest.approx(
        qini_auc_score(outcome, score, treated), abs=1e-12
    )
    assert uplift_at_k(outcome, score, treated, 0.3) == pytest.approx(
        sklift_uplift_at_k(outcome, score, treated, strategy="overall", k=0.3), abs=1e-12
    )
