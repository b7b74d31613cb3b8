"""The retention page names the features whose scored values lie outside the training range
(from `churn drift`), in plain words, and says nothing when there are none."""

from __future__ import annotations

import pytest

from churn.errors import ChurnError
from churn.report.page import render_html
from churn.report.training_range import summarize_out_of_range
from support.report_data import drift_report, make_report

HEADING = "Customers beyond what the model has seen"


def _at_risk(page: str) -> str:
    return page[page.index('<section id="at-risk">') : page.index('<section id="how-to-read">')]


def _both_ways() -> dict:
    report = drift_report(tenure_days=0.101, spend_90d=0.02)
    report["outside_training_range"]["aov"] = {
        "training_min": 2.5,
        "training_max": 410.0,
        "current_min": 0.35,
        "current_max": 512.0,
        "share_below_min": 0.03,
        "share_above_max": 0.01,
        "named": True,
    }
    report["features_outside_training_range"].append("aov")
    # measured but under drift.out_of_range_share: not named, so not shown
    report["outside_training_range"]["purchases_30d"] = {
        **report["outside_training_range"]["spend_90d"],
        "share_above_max": 0.001,
        "named": False,
    }
    return report


def test_page_names_each_feature_with_its_share_direction_and_what_it_means(dev_data):
    section = _at_risk(render_html(make_report(dev_data, drift=_both_ways())))
    assert HEADING in section
    assert (
        "<code>tenure_days</code>: 10.1% of the scored customers lie outside the training range "
        "— 10.1% above the highest value the model learnt from (1,004; today up to 1,200), "
        "scored as if they had 1,004." in section
    )
    assert (
        "<code>aov</code>: 4.0% of the scored customers lie outside the training range — 1.0% "
        "above the highest value the model learnt from (410; today up to 512), scored as if "
        "they had 410; 3.0% below the lowest value the model learnt from (2.5; today down to "
        "0.35), scored as if they had 2.5." in section
    )
    assert "differences beyond that edge do not change their churn probability" in section
    # largest share first; a feature under the naming share is left out
    assert section.index("tenure_days") < section.index("<code>aov") < section.index("spend_90d")
    assert "purchases_30d" not in section


def test_page_has_no_out_of_range_part_when_no_feature_is_outside(dev_data):
    nothing = drift_report()
    nothing["outside_training_range"]["recency_days"] = {
        **_both_ways()["outside_training_range"]["purchases_30d"]
    }
    report = make_report(dev_data, drift=nothing)
    assert report.out_of_range == ()
    assert HEADING not in render_html(report)


def test_page_has_no_out_of_range_part_without_a_drift_report(dev_data):
    report = make_report(dev_data)
    assert report.out_of_range is None
    assert HEADING not in render_html(report)


def test_directions_are_read_from_the_shares_above_and_below():
    found = {f.feature: f for f in summarize_out_of_range(_both_ways(), "drift.json")}
    assert found["tenure_days"].direction == "above"
    assert found["aov"].direction == "both"
    assert found["aov"].share_outside == pytest.approx(0.04)


def test_a_drift_report_without_the_out_of_range_measure_says_to_rerun_drift():
    with pytest.raises(
        ChurnError, match=r"reports/drift.json: no out-of-range measure.*dvc repro drift"
    ):
        summarize_out_of_range({"passed": True}, "reports/drift.json")
