"""Drift: reference bins, exact PSI on hand-built examples, PSI warns (blocking only opted in),
the newest labelled reference and the features outside the training range."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from churn.config import DriftParams
from churn.drift import (
    MISSING,
    OTHER,
    SCORE,
    bin_labels,
    build_reference,
    current_shares,
    measure_drift,
    numeric_edges,
    outside_training_range,
    population_stability,
    reference_categorical,
    reference_from_training,
    reference_numeric,
    select_newest_labelled,
)
from churn.errors import ChurnError, DataCheckFailed
from churn.publish.gates import check_drift_gate, enforce_gates


def test_numeric_edges_are_the_reference_quantiles():
    assert numeric_edges(np.arange(1, 11, dtype=float), 4) == [3.25, 5.5, 7.75]


def test_tied_quantile_edges_are_merged_into_one():
    values = np.array([0.0] * 8 + [5.0, 9.0])
    assert numeric_edges(values, 4) == [0.0]
    entry = reference_numeric(values, 4)
    assert entry["shares"] == [0.8, 0.2]
    assert entry["missing_share"] == 0.0


def test_bins_the_reference_leaves_empty_are_merged_away():
    # quantiles of five 0s and five 1s give edges 0, 0.5 and 1: (0, 0.5] and (1, inf) hold nothing
    values = np.array([0.0] * 5 + [1.0] * 5)
    assert numeric_edges(values, 10) == [0.0]
    assert reference_numeric(values, 10)["shares"] == [0.5, 0.5]


def test_missing_values_get_their_own_bin():
    values = np.array([1.0, 2.0, np.nan, 4.0])
    entry = reference_numeric(values, 2)
    assert entry["missing_share"] == 0.25
    assert sum(entry["shares"]) == pytest.approx(0.75)
    assert bin_labels(entry)[-1] == MISSING


def test_psi_of_a_hand_built_shift_is_exact():
    expected = np.array([0.5, 0.3, 0.2])
    actual = np.array([0.3, 0.3, 0.4])
    want = -0.2 * math.log(0.3 / 0.5) + 0.2 * math.log(0.4 / 0.2)
    assert population_stability(expected, actual) == pytest.approx(want, abs=1e-12)
    assert population_stability(expected, actual) == pytest.approx(0.2407945609, abs=1e-9)


def test_psi_is_zero_for_identical_shares_and_symmetric():
    shares = np.array([0.1, 0.2, 0.7])
    other = np.array([0.2, 0.2, 0.6])
    assert population_stability(shares, shares) == 0.0
    assert population_stability(shares, other) == pytest.approx(population_stability(other, shares))


def test_empty_bins_are_floored_at_epsilon_inside_the_log():
    expected = np.array([0.5, 0.5, 0.0])
    actual = np.array([0.45, 0.45, 0.1])
    want = 2 * (-0.05 * math.log(0.45 / 0.5)) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert population_stability(expected, actual, epsilon=1e-4) == pytest.approx(want, abs=1e-12)


def test_unseen_categories_and_rare_levels_fall_into_other():
    reference = pd.Series(["web"] * 5 + ["app"] * 3 + ["store"] * 2, dtype="string")
    entry = reference_categorical(reference, max_levels=2)
    assert entry["levels"] == ["web", "app"]
    assert entry["shares"] == [0.5, 0.3, 0.2]  # web, app, other/unseen
    assert bin_labels(entry) == ["web", "app", OTHER, MISSING]
    current = pd.Series(["web"] * 4 + ["app"] * 2 + ["phone"] * 2 + ["store", None], dtype="string")
    shares = current_shares(entry, current, "channel")
    np.testing.assert_allclose(shares, [0.4, 0.2, 0.3, 0.1])
    psi = population_stability(np.array([0.5, 0.3, 0.2, 0.0]), shares)
    want = (
        -0.1 * math.log(0.4 / 0.5)
        - 0.1 * math.log(0.2 / 0.3)
        + 0.1 * math.log(0.3 / 0.2)
        + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    )
    assert psi == pytest.approx(want, abs=1e-12)
    assert psi == pytest.approx(0.7934921, abs=1e-6)


def test_current_values_use_the_frozen_edges_right_closed():
    entry = reference_numeric(np.arange(1, 11, dtype=float), 4)  # edges 3.25, 5.5, 7.75
    current = pd.Series([3.25, 3.26, 100.0, -5.0, None], dtype="Float64")
    np.testing.assert_allclose(current_shares(entry, current, "x"), [0.4, 0.2, 0.0, 0.2, 0.2])


def _snapshot(
    rng: np.random.Generator, n: int, recency_shift: float = 0.0, tenure_shift: float = 0.0
):
    return pd.DataFrame(
        {
            "recency_days": rng.exponential(40, n) + recency_shift,
            "tenure_days": rng.uniform(0, 700, n) + tenure_shift,
            "channel": pd.array(rng.choice(["web", "app", "store"], n), dtype="string"),
        }
    )


@pytest.fixture
def reference():
    rng = np.random.default_rng(7)
    rows = _snapshot(rng, 5000)
    scores = rng.beta(2, 5, 5000)
    params = DriftParams(blocking_features=("recency_days",))
    return build_reference(rows, ["recency_days", "tenure_days"], ["channel"], scores, params)


def test_the_same_population_does_not_drift(reference):
    rng = np.random.default_rng(8)
    params = DriftParams(blocking_features=("recency_days",))
    report = measure_drift(reference, _snapshot(rng, 3000), rng.beta(2, 5, 3000), params)
    assert report["status"] == "ok"
    assert report["publish_blocked"] is False
    assert check_drift_gate(report).passed is True
    assert all(entry["psi"] < 0.1 for entry in report["features"].values())


def test_tenure_drifting_by_design_does_not_block_publishing(reference):
    rng = np.random.default_rng(9)
    params = DriftParams(blocking_features=("recency_days",))
    snapshot = _snapshot(rng, 3000, tenure_shift=365)
    report = measure_drift(reference, snapshot, rng.beta(2, 5, 3000), params)
    assert report["features"]["tenure_days"]["status"] == "fail"
    assert report["features"]["tenure_days"]["blocking"] is False
    assert report["failures"] == ["tenure_days"]
    assert report["publish_blocked"] is False
    assert check_drift_gate(report).passed is True


def test_a_blocking_feature_that_moved_stops_publishing_and_is_named(reference):
    rng = np.random.default_rng(10)
    params = DriftParams(blocking_features=("recency_days",))
    snapshot = _snapshot(rng, 3000, recency_shift=60)
    report = measure_drift(reference, snapshot, rng.beta(2, 5, 3000), params)
    assert report["blocking_failures"] == ["recency_days"]
    gate = check_drift_gate(report)
    assert gate.passed is False
    assert gate.detail.count("PSI") == 1 and "recency_days: PSI" in gate.detail
    with pytest.raises(DataCheckFailed, match="recency_days: PSI.*--accept-drift"):
        enforce_gates([gate])
    assert enforce_gates([gate], accept_drift=True) == [gate]


def test_a_shifted_score_only_warns_by_default_and_blocks_when_opted_in(reference):
    rng = np.random.default_rng(11)
    snapshot = _snapshot(rng, 3000)
    shifted = rng.beta(5, 2, 3000)
    default = measure_drift(reference, snapshot, shifted, DriftParams())
    assert default["score"]["status"] == "fail"
    assert default["publish_blocked"] is False and default["blocking_failures"] == []
    gate = check_drift_gate(default)
    assert gate.passed is True and "warning" in gate.detail
    opted_in = measure_drift(reference, snapshot, shifted, DriftParams(score_blocks=True))
    assert opted_in["blocking_failures"] == [SCORE]


def test_missing_shares_are_reported_for_reference_and_current(reference):
    rng = np.random.default_rng(12)
    snapshot = _snapshot(rng, 1000)
    snapshot.loc[:99, "recency_days"] = np.nan
    report = measure_drift(reference, snapshot, rng.beta(2, 5, 1000), DriftParams())
    entry = report["features"]["recency_days"]
    assert entry["missing_share_reference"] == 0.0
    assert entry["missing_share_current"] == 0.1
    assert MISSING in entry["largest_shift"]


def test_a_snapshot_without_a_reference_feature_is_a_clear_error(reference):
    rng = np.random.default_rng(13)
    snapshot = _snapshot(rng, 100).drop(columns=["channel"])
    with pytest.raises(ChurnError, match="missing feature column"):
        measure_drift(reference, snapshot, rng.beta(2, 5, 100), DriftParams())


def test_without_a_drift_report_the_publish_gate_says_it_did_not_check():
    # check_drift (which refused a missing report) was dead code: the publish gate decides
    gate = check_drift_gate(None)
    assert gate.passed is True and "no drift report; not checked" in gate.detail


def test_warn_must_be_below_fail():
    with pytest.raises(ValueError, match="warn"):
        DriftParams(warn=0.3, fail=0.25)


def test_publish_gate_refuses_a_real_drift_report_naming_the_feature_unless_accepted(reference):
    rng = np.random.default_rng(14)
    params = DriftParams(blocking_features=("recency_days",))
    moved = measure_drift(
        reference, _snapshot(rng, 2000, recency_shift=60), rng.beta(2, 5, 2000), params
    )
    gate = check_drift_gate(moved)
    assert gate.passed is False
    with pytest.raises(DataCheckFailed, match=r"drift: recency_days: PSI \d\.\d+ >= fail 0.25"):
        enforce_gates([gate])
    assert enforce_gates([gate], accept_drift=True) == [gate]
    steady = measure_drift(
        reference, _snapshot(rng, 2000, tenure_shift=365), rng.beta(2, 5, 2000), params
    )
    assert check_drift_gate(steady).passed is True


def test_season_features_are_not_drift_checked():
    # one value per snapshot: against the training cutoffs' spread they would always "drift"
    rng = np.random.default_rng(3)
    rows = _snapshot(rng, 2000).assign(season_sin=rng.choice([-0.5, 0.0, 0.5], 2000))
    params = DriftParams(blocking_features=("recency_days",))
    reference = build_reference(
        rows, ["recency_days", "season_sin"], [], rng.beta(2, 5, 2000), params
    )
    assert set(reference["features"]) == {"recency_days"}
    current = _snapshot(rng, 2000).assign(season_sin=0.99)
    report = measure_drift(reference, current, rng.beta(2, 5, 2000), params)
    assert "season_sin" not in json.dumps(report)


# --------------------------------------------------------------------------- newest labelled reference
def _training(rng: np.random.Generator) -> pd.DataFrame:
    parts = []
    for cutoff, role, age in (
        ("2024-01-01", "fit", 0),
        ("2024-04-01", "calibration", 90),
        ("2024-07-01", "test", 180),
    ):
        rows = _snapshot(rng, 400, tenure_shift=age)
        parts.append(
            rows.assign(
                customer_id=[f"{i:04d}" for i in range(400)],
                cutoff=pd.Timestamp(cutoff).date(),
                role=role,
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_the_reference_is_the_newest_labelled_cutoff_and_ranges_cover_all_training_rows():
    rng = np.random.default_rng(20)
    training = _training(rng)
    rows = select_newest_labelled(training, "test")
    assert set(rows["role"]) == {"test"} and str(rows["cutoff"].iloc[0]) == "2024-07-01"
    assert list(rows["customer_id"]) == sorted(rows["customer_id"])
    # short histories may have no test role: the newest cutoff is still the closest in time
    assert str(select_newest_labelled(training, "holdout")["cutoff"].iloc[0]) == "2024-07-01"
    reference, ranges = reference_from_training(
        training,
        ["recency_days", "tenure_days"],
        ["channel"],
        lambda frame: np.full(len(frame), 0.3),
        DriftParams(),
    )
    assert reference["cutoff"] == "2024-07-01" and reference["roles"] == ["test"]
    assert reference["rows"] == 400
    assert ranges["tenure_days"][0] == pytest.approx(training["tenure_days"].min())
    assert ranges["tenure_days"][1] == pytest.approx(training["tenure_days"].max())


def test_outside_training_range_gives_exact_shares_above_max_and_below_min():
    snapshot = pd.DataFrame({"x": [0.0, 5.0, 10.0, 11.0, 12.0, None, -1.0, 3.0], "y": [1.0] * 8})
    found = outside_training_range({"x": [0.0, 10.0], "y": [0.0, 2.0]}, snapshot, 0.01)
    assert list(found) == ["x"]  # y lies inside: not listed
    assert found["x"]["share_above_max"] == 0.25 and found["x"]["share_below_min"] == 0.125
    assert found["x"]["training_max"] == 10.0 and found["x"]["current_max"] == 12.0
    assert found["x"]["named"] is True
    assert outside_training_range({"x": [0.0, 10.0]}, snapshot, 0.5)["x"]["named"] is False


@pytest.mark.parametrize("grown_months", [3, 6, 12])
def test_a_closed_base_grown_by_months_warns_names_out_of_range_features_and_publishes(
    grown_months,
):
    # nobody new arrives: every customer is older and longer idle at as_of than at the newest
    # labelled cutoff, and the model scores them higher. That is ageing, not broken data.
    rng = np.random.default_rng(30 + grown_months)
    training = _training(rng)
    reference, ranges = reference_from_training(
        training,
        ["recency_days", "tenure_days"],
        ["channel"],
        lambda frame: rng.beta(2, 5, len(frame)),
        DriftParams(),
    )
    days = grown_months * 30
    aged = _snapshot(rng, 400, recency_shift=days, tenure_shift=180 + days)
    report = measure_drift(reference, aged, rng.beta(5, 2, 400), DriftParams(), ranges)
    assert report["failures"]  # PSI sees the ageing ...
    assert report["passed"] is True and report["publish_blocked"] is False  # ... and only warns
    gate = check_drift_gate(report)
    assert gate.passed is True and enforce_gates([gate]) == [gate]
    assert "tenure_days" in report["features_outside_training_range"]
    entry = report["outside_training_range"]["tenure_days"]
    assert entry["share_above_max"] > 0 and entry["share_below_min"] == 0
    assert "outside the training range" in report["detail"] and "tenure_days" in gate.detail


def test_drift_counts_of_parts_add_up_to_the_whole_report(reference):
    # the Spark drift stage counts each partition on its own and adds the counts: the report is
    # the same, bit for bit, whichever way the rows are split (a part may hold nothing)
    from functools import reduce

    from churn.drift import add_drift_counts, count_drift, count_score, report_drift

    rng = np.random.default_rng(12)
    snapshot = _snapshot(rng, 900, recency_shift=25.0)
    snapshot.loc[::7, "recency_days"] = np.nan
    snapshot.loc[::5, "channel"] = pd.NA
    snapshot.loc[::9, "channel"] = "kiosk"
    snapshot.loc[3, "tenure_days"] = 5000.0
    scores = rng.beta(2, 4, 900)
    ranges = {"recency_days": [0.0, 150.0], "tenure_days": [1.0, 690.0], "gone": [0.0, 1.0]}
    params = DriftParams(blocking_features=("recency_days",))
    whole = measure_drift(reference, snapshot, scores, params, ranges)
    cuts = [0, 0, 301, 302, 900]  # an empty part, a one-row part
    parts = [snapshot.iloc[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    counts = reduce(add_drift_counts, [count_drift(reference, part, ranges) for part in parts])
    score_parts = [count_score(reference, scores[:450]), count_score(reference, scores[450:])]
    score_counts = [a + b for a, b in zip(*score_parts, strict=True)]
    assert report_drift(reference, counts, score_counts, params, ranges) == whole
    assert whole["outside_training_range"]["tenure_days"]["current_max"] == 5000.0
    empty = count_drift(reference, snapshot.iloc[:0], ranges)
    assert empty["ranges"]["tenure_days"] == [0, 0, None, None]
    with pytest.raises(ChurnError, match="no rows to measure drift on"):
        report_drift(reference, empty, score_counts, params, ranges)
