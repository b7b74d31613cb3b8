"""The uplift learner: each customer's incremental retention from a contact (X-learner, LightGBM).

Why the X-learner (Künzel et al. 2019) over a T- or DR-learner here: a list's control group is
small (score.control_share, 10% by default), so the arms are unbalanced about 9:1. A T-learner's
effect is the difference of two separately fitted models, and the control model, fitted on a tenth
of the rows, carries its noise and its different regularisation straight into every estimate. A
DR-learner's pseudo-outcome divides by the control share, so each control row weighs ten times
as much and the second-stage fit is noisy. The X-learner imputes each control customer's effect
with the model of the large treated arm (and each treated customer's with the control model),
then weighs the two effect models by the propensity, which puts most weight on the effect imputed
with the precise treated-arm model: the case it was designed for. Every model is LightGBM with
one thread and a fixed seed, so the same rows give the same estimates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.columns import RETAINED, TREATED
from churn.errors import ChurnError
from churn.uplift.data import feature_frame


@dataclass(frozen=True)
class LearnerSettings:
    """LightGBM settings of the four X-learner models (small, strongly regularised trees: the
    effect is a small difference of noisy outcomes)."""

    seed: int = 0
    rounds: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 8
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.9
    lambda_l2: float = 10.0


def _lgb_params(settings: LearnerSettings, objective: str, offset: int) -> dict[str, object]:
    return {
        "objective": objective,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "min_data_in_leaf": settings.min_data_in_leaf,
        "feature_fraction": settings.feature_fraction,
        "lambda_l2": settings.lambda_l2,
        "num_threads": 1,  # fixed: deterministic, and no OpenMP spin-waits on a shared machine
        "seed": settings.seed + offset,
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
    }


def _fit(
    features: pd.DataFrame,
    target: np.ndarray,
    settings: LearnerSettings,
    objective: str,
    offset: int,
) -> lgb.Booster:
    data = lgb.Dataset(features, label=target, free_raw_data=True)
    return lgb.train(_lgb_params(settings, objective, offset), data, settings.rounds)


@dataclass
class XLearner:
    """A fitted X-learner: `predict` returns the incremental retention probability of a contact."""

    features: list[str]
    categories: dict[str, list[str]]
    treated_share: float  # g in tau = g * tau0 + (1 - g) * tau1 (the training propensity)
    models: dict[str, lgb.Booster] = field(repr=False)

    def predict(self, frame: pd.DataFrame, source: str = "candidates") -> np.ndarray:
        """Return each row's estimated uplift (retention probability with contact minus without)."""
        encoded, _ = feature_frame(frame, self.features, self.categories, source)
        tau0 = self.models["tau0"].predict(encoded)
        tau1 = self.models["tau1"].predict(encoded)
        return np.clip(self.treated_share * tau0 + (1 - self.treated_share) * tau1, -1.0, 1.0)

    def predict_retention(
        self, frame: pd.DataFrame, source: str = "candidates"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return each row's retention probability without and with a contact (stage 1 models)."""
        encoded, _ = feature_frame(frame, self.features, self.categories, source)
        return self.models["mu0"].predict(encoded), self.models["mu1"].predict(encoded)


def fit_uplift(
    rows: pd.DataFrame, features: list[str], settings: LearnerSettings = LearnerSettings()
) -> XLearner:
    """Return an X-learner fitted on checked campaign rows (churn.uplift.data.check_campaign_rows)."""
    treated = rows[TREATED].to_numpy() == 1
    if treated.all() or not treated.any():
        raise ChurnError(
            "uplift learner: the campaign rows need both treated and control customers "
            f"(treated: {int(treated.sum())}, control: {int((~treated).sum())})"
        )
    if not features:
        raise ChurnError("uplift learner: the campaign rows hold no feature column")
    encoded, categories = feature_frame(rows, features)
    retained = rows[RETAINED].to_numpy(dtype="float64")
    # stage 1: retention without and with a contact
    mu0 = _fit(encoded[~treated], retained[~treated], settings, "binary", 0)
    mu1 = _fit(encoded[treated], retained[treated], settings, "binary", 1)
    # stage 2: imputed individual effects, each from the other arm's model
    imputed_treated = retained[treated] - mu0.predict(encoded[treated])
    imputed_control = mu1.predict(encoded[~treated]) - retained[~treated]
    tau1 = _fit(encoded[treated], imputed_treated, settings, "regression", 2)
    tau0 = _fit(encoded[~treated], imputed_control, settings, "regression", 3)
    # the rows' own treated share: equal to 1 - control_share on whole lists, and still right when
    # the rows are one action's arm against the control group (random_actions)
    treated_share = float(treated.mean())
    return XLearner(
        features=list(features),
        categories=categories,
        treated_share=treated_share,
        models={"mu0": mu0, "mu1": mu1, "tau0": tau0, "tau1": tau1},
    )
