"""The report page's campaigns section shows the uplift gate: the policy in use, why, and the
held-out comparison of both policies (Qini, uplift at k, incremental profit)."""

from __future__ import annotations

from datetime import date

import pytest

from churn.errors import ChurnError
from churn.report.campaigns import summarize_uplift_gate
from churn.report.page import render_html
from support.report_data import report_for

ROWS = [("a", date(2024, 1, 5), 10.0), ("b", date(2024, 2, 10), 5.0), ("a", date(2024, 4, 30), 8.0)]


def _policy(qini, at_k, estimate, low, high):
    return {
        "contacts": 100,
        "qini": qini,
        "uplift_at_k": at_k,
        "incremental_profit": {"estimate": estimate, "ci_low": low, "ci_high": high},
    }


GATE = {
    "policy_in_use": "risk_x_value",
    "reason": "the uplift policy is not shown to keep more margin than risk x value on 1 "
    "held-out campaign(s)",
    "data": {"holdout_campaigns": ["sim-2025-10-01"]},
    "comparison": {
        "list_size": 1926,
        "policies": {
            "uplift": _policy(0.0546, 0.1464, 81599.32, 56329.94, 107032.77),
            "risk_x_value": _policy(0.0503, 0.1336, 78625.48, 56037.91, 104677.95),
        },
        "difference": {"estimate": 2973.84, "ci_low": -24028.48, "ci_high": 27309.8},
        "false_switch_rate": 0.004,
    },
}


def test_page_shows_the_policy_in_use_why_and_both_policies_on_the_held_out_campaigns():
    page = render_html(report_for(ROWS, uplift=GATE))
    assert "<h3>Targeting policy</h3>" in page
    assert "In use: <strong>risk x value</strong>" in page
    assert "</strong>. The uplift policy is not shown to keep more margin" in page
    assert "sim-2025-10-01" in page and "1,926 contacts per policy" in page
    assert (
        "<td>uplift (incremental profit)</td><td>0.055</td><td>+14.6</td>"
        "<td>+81,599 [+56,330, +107,033]</td>" in page
    )
    assert "<td>risk x value</td><td>0.050</td><td>+13.4</td>" in page
    assert "Difference (uplift minus risk x value): +2,974 [-24,028, +27,310]" in page


def test_page_explains_the_gate_level_it_was_judged_at():
    page = render_html(report_for(ROWS, uplift=GATE))
    assert "with a 99.2% bootstrap interval" in page
    assert "The bound is one-sided at 99.6%" in page
    assert "kept at 0.4% (uplift.false_switch_rate), at most 5% over a year" in page
    looser = {**GATE, "comparison": {**GATE["comparison"], "false_switch_rate": 0.025}}
    page = render_html(report_for(ROWS, uplift=looser))
    assert "with a 95.0% bootstrap interval" in page and "one-sided at 97.5%" in page


def test_page_says_not_enough_campaign_data_yet_without_a_comparison():
    gate = {
        "policy_in_use": "risk_x_value",
        "reason": "not enough campaign data yet: 2 matured randomized campaign(s)",
        "comparison": None,
    }
    page = render_html(report_for(ROWS, uplift=gate))
    assert "In use: <strong>risk x value</strong>. Not enough campaign data yet: 2 matured" in page
    assert "<td>uplift (incremental profit)</td>" not in page


def test_page_without_a_gate_report_has_no_policy_section():
    assert "Targeting policy" not in render_html(report_for(ROWS))


def test_a_file_that_is_not_a_gate_report_names_the_fix():
    with pytest.raises(ChurnError, match="reports/uplift.json: not an uplift gate report"):
        summarize_uplift_gate({"lists": []}, "reports/uplift.json")


SCORE_REPORT = {
    "targeting": {
        "save_rates": {"high": 0.132447, "medium": 0.047788, "low": 0.1},
        "save_rate_sources": {
            "high": {
                "source": "measured",
                "campaigns": ["a", "b", "c", "d"],
                "save_rate_ci": [0.100291, 0.164603],
                "status": "separated",
            },
            "medium": {
                "source": "measured",
                "campaigns": ["a", "b"],
                "save_rate_ci": [-0.023697, 0.119274],
                "status": "inconclusive",
            },
            "low": {"source": "assumed", "reason": "no matured campaign measured the low tier"},
        },
    }
}


def test_page_shows_each_tiers_save_rate_with_its_source_and_interval():
    page = render_html(report_for(ROWS, score_report=SCORE_REPORT))
    assert "<h3>Save rates behind the list</h3>" in page
    assert (
        "<td>high</td><td>0.132</td><td>[0.10, 0.16]</td>"
        "<td>measured on 4 campaign(s) (separated)</td>" in page
    )
    assert "<td>medium</td><td>0.048</td><td>[-0.02, 0.12]</td>" in page
    assert (
        "<td>low</td><td>0.100</td><td>–</td><td>assumed (score.save_rate): no matured campaign "
        "measured the low tier</td>" in page
    )


def test_page_without_save_rates_has_no_save_rate_block():
    assert "Save rates behind the list" not in render_html(report_for(ROWS))
    old = {"targeting": {"rule": "net_benefit"}}  # a score report from before save rates
    assert "Save rates behind the list" not in render_html(report_for(ROWS, score_report=old))


def test_a_score_report_with_malformed_save_rates_names_the_fix():
    bad = {"targeting": {"save_rates": [0.1, 0.2]}}
    with pytest.raises(ChurnError, match="targeting.save_rates is not a table.*dvc repro score"):
        report_for(ROWS, score_report=bad)


def test_a_tier_whose_contacts_pushed_customers_away_is_said_to_be_left_out():
    pushed = {
        "targeting": {
            "save_rates": {"high": 0.12, "low": -0.91},
            "save_rate_sources": {
                "high": {"source": "measured", "campaigns": ["a"], "save_rate_ci": [0.09, 0.14]},
                "low": {"source": "measured", "campaigns": ["a"], "save_rate_ci": [-1.6, -0.23]},
            },
        }
    }
    page = render_html(report_for(ROWS, score_report=pushed))
    assert (
        "<td>low</td><td>-0.910</td><td>[-1.60, -0.23]</td><td>measured on 1 campaign(s) "
        "(pooled): contacts pushed these customers away" in page
    )
    assert page.count("contacts pushed these customers away") == 1  # not the high tier
