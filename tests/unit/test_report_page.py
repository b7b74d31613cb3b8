"""The retention page: self-contained, states its definitions (the browser check is in integration)."""

from __future__ import annotations

import re

import pytest

from churn.config import ChurnParams
from churn.report.page import SECTIONS, render_html
from support.report_data import HOSTILE, make_report


@pytest.fixture(scope="module")
def full_page(dev_data):
    return render_html(make_report(dev_data))


@pytest.fixture(scope="module")
def bare_page(dev_data):
    """No scores, no metrics, no NPS, and a non-default churn definition."""
    definition = ChurnParams(active_within_days=200, horizon_days=60)
    return render_html(make_report(dev_data, definition, with_extras=False))


def test_page_has_every_section(full_page, bare_page):
    for key in SECTIONS:
        assert f'<section id="{key}">' in full_page
        assert f'<section id="{key}">' in bare_page


def test_page_needs_no_network_and_runs_no_script(full_page):
    assert "<script" not in full_page
    assert "<link" not in full_page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", full_page)
    images = re.findall(r'<img src="([^"]+)"', full_page)
    assert len(images) == 6
    assert all(uri.startswith("data:image/svg+xml;base64,") for uri in images)


def test_page_says_not_available_without_scores_or_metrics(bare_page):
    at_risk = bare_page[bare_page.index('<section id="at-risk">') :]
    assert "Not available yet: no scoring was found" in at_risk
    assert "Model quality: not available" in at_risk


def test_page_shows_the_model_quality_line_next_to_the_scores(full_page):
    at_risk = full_page[full_page.index('<section id="at-risk">') :]
    assert "ROC AUC 0.78" in at_risk
    assert "Value at risk per risk tier" in at_risk


def test_page_says_when_no_nps_answers_were_given(bare_page):
    assert "No NPS survey answers were given" in bare_page
    assert "<th>NPS</th>" not in bare_page


def test_page_states_the_definitions_with_the_configured_window(bare_page):
    assert "Made at least one purchase in the last 200 days" in bare_page
    assert "no purchase in the next 60 days" in bare_page
    assert "(CE − CN) ÷ CS × 100" in bare_page


def test_text_from_the_data_is_escaped(full_page):
    assert "&lt;b&gt;partner&lt;/b&gt;" in full_page
    assert HOSTILE not in full_page


def test_the_value_at_risk_card_pairs_the_flagged_customers_with_their_own_value(dev_data):
    report = make_report(dev_data)
    page = render_html(report)
    scoring = report.scoring
    card = page[page.index("Value at risk of the flagged customers") :][:600]
    flagged_value = f"{scoring['value_at_risk_of_at_risk']:,.0f}"
    assert flagged_value in card
    assert f"{scoring['at_risk_customers']:,} customers flagged" in card
