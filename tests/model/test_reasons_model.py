"""On the default generated data, every reason the score stage shows raises that customer's risk
above the average scored customer's, and every flagged customer gets one."""

from __future__ import annotations

import numpy as np
import pytest

from churn.columns import AT_RISK, CUSTOMER_ID, REASON_FAMILY, REASONS, SUGGESTED_ACTION
from churn.config import ChurnParams, CutoffsParams, EngineParams, FeaturesParams, ScoreParams
from churn.features import build_snapshots
from churn.score import build_scores
from churn.score.phrasing import build_references
from churn.score.reasons import NO_REASON_TEXTS, explain_reasons, relative_contributions
from churn.train import fit_model
from support.snapshot_helper import FAST

BEHAVIOURAL = {"recency", "frequency", "spend_trend", "refunds", "nps"}


@pytest.fixture(scope="module")
def scored_snapshot(generated_tables):
    tables = generated_tables(customers=2500, seed=7)
    snapshots = build_snapshots(
        *tables,
        ChurnParams(horizon_days=90),
        FeaturesParams(cutoffs=CutoffsParams(count=10)),
        EngineParams(threads=1),
    )
    model = fit_model(snapshots.train, FAST, horizon_days=90).production_model
    return snapshots.score, model


def _flagged_rows(snapshot, scores):
    flagged = scores[AT_RISK].to_numpy(dtype=bool)
    by_id = snapshot.set_index(snapshot[CUSTOMER_ID].astype("string"))
    return flagged, by_id.loc[scores.loc[flagged, CUSTOMER_ID].to_numpy()].reset_index(drop=True)


@pytest.mark.parametrize("method", ["treeshap", "path"])
def test_no_shown_reason_has_a_risk_lowering_contribution(scored_snapshot, method):
    snapshot, model = scored_snapshot
    params = ScoreParams().model_copy(
        update={"reasons": ScoreParams().reasons.model_copy(update={"method": method})}
    )
    scores = build_scores(snapshot, model, params)
    flagged, rows = _flagged_rows(snapshot, scores)
    assert flagged.sum() >= 200

    # what a reason raises the risk above: the average scored customer (the stage's default)
    contributions = relative_contributions(model, rows, params.reasons, snapshot)
    references = build_references(
        snapshot, params.reasons.peer_tenure_bands_days, model.predict_proba(snapshot)
    )
    reasons = explain_reasons(contributions, model.spec.names, rows, params.reasons, references)
    # what the stage wrote is what these structured reasons say
    texts = [" | ".join(r.text for r in shown) for shown in reasons]
    written = scores.loc[flagged, REASONS].tolist()
    assert all(
        text == stage or (not text and stage in NO_REASON_TEXTS)
        for text, stage in zip(texts, written, strict=True)
    )

    column = {name: i for i, name in enumerate(model.spec.names)}
    shown = [(row, reason) for row, row_reasons in enumerate(reasons) for reason in row_reasons]
    # every flagged customer gets a reason that raises their risk above the average scored one
    assert all(reasons)
    assert all(reason.contribution > 0 for _, reason in shown)
    assert all(contributions[row, column[reason.feature]] > 0 for row, reason in shown)
    plain = set(params.reasons.descriptive_families)
    assert all(
        reason.contribution >= params.reasons.descriptive_min_contribution
        for _, reason in shown
        if reason.family in plain
    )
    # the customers behind the risk are mostly explained by what they do, not who they are
    first = [row_reasons[0].family for row_reasons in reasons if row_reasons]
    assert np.mean([family in BEHAVIOURAL for family in first]) > 0.9


def test_the_action_follows_the_first_reason_or_is_the_default(scored_snapshot):
    snapshot, model = scored_snapshot
    params = ScoreParams()
    scores = build_scores(snapshot, model, params)
    flagged = scores[scores[AT_RISK]]
    first = flagged[REASONS].str.split(" | ", regex=False).str[0]
    assert first.isin(NO_REASON_TEXTS).eq(flagged[REASON_FAMILY].isna()).all()
    no_reason = flagged[REASON_FAMILY].isna()
    assert (flagged.loc[no_reason, SUGGESTED_ACTION] == params.actions.default).all()
    keep = flagged[REASON_FAMILY].isin(params.actions.keep_family_action)
    expected = flagged.loc[keep, REASON_FAMILY].map(params.actions.by_family)
    assert (flagged.loc[keep, SUGGESTED_ACTION] == expected).all()
