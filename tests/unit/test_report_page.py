"""The retention page: self-contained, states its definitions, and renders in a real browser."""

from __future__ import annotations

import re

import duckdb
import pytest

from chromium import chromium_available, visit
from churn.config import ReportParams
from churn.report import build_report
from churn.report.page import SECTIONS, render_html
from report_data import dev_data, fake_scores

METRICS = {"model": {"roc_auc": 0.78, "lift_top10": 2.9, "recall_top10": 0.29}}
HOSTILE = "<b>partner</b>"  # a segment name that must show as text, not markup


def make_report(settings=None, with_extras=True):
    """Return a report on the dev data, with scores, metrics and NPS or with none of them."""
    transactions, customers, nps = dev_data()
    con = duckdb.connect()
    if not with_extras:
        return build_report(con, con.from_arrow(transactions), settings or ReportParams())
    segments = customers.assign(channel=customers["channel"].replace("marketplace", HOSTILE))
    return build_report(
        con,
        con.from_arrow(transactions),
        settings or ReportParams(),
        nps=nps,
        customers=segments,
        scores=fake_scores(customers, "2025-12-30"),
        metrics=METRICS,
    )


@pytest.fixture(scope="module")
def full_page():
    return render_html(make_report())


@pytest.fixture(scope="module")
def bare_page():
    """No scores, no metrics, no NPS, and a non-default churn definition."""
    settings = ReportParams(active_within_days=200, horizon_days=60)
    return render_html(make_report(settings, with_extras=False))


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


# --------------------------------------------------------------------------- browser
needs_chromium = pytest.mark.skipif(
    not chromium_available(), reason="needs /usr/bin/chromium (installed by .ci/run)"
)
PAGE_STATE = {
    "sections": """[...document.querySelectorAll('section')].map(s => ({
        id: s.id, heading: s.querySelector('h2').textContent, height: s.offsetHeight}))""",
    "images": "[...document.images].map(i => ({alt: i.alt, loaded: i.complete, "
    "width: i.naturalWidth, shown: i.offsetWidth}))",
    "overflowing": "document.documentElement.scrollWidth > window.innerWidth",
}


@pytest.mark.integration
@needs_chromium
def test_page_renders_in_headless_chromium_without_console_errors(full_page, tmp_path):
    page = tmp_path / "retention.html"
    page.write_text(full_page, encoding="utf-8")
    screenshot = tmp_path / "retention.png"
    seen = visit(page, screenshot=screenshot, evaluate=PAGE_STATE)
    assert seen.problems == []
    sections = seen.values["sections"]
    assert [s["id"] for s in sections] == list(SECTIONS)
    assert all(s["height"] > 80 for s in sections), sections
    assert sections[0]["heading"].startswith("At a glance")
    images = seen.values["images"]
    assert len(images) == 6
    assert all(i["loaded"] and i["width"] > 100 and i["shown"] > 500 for i in images), images
    assert seen.values["overflowing"] is False  # nothing wider than the window
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 50_000


@pytest.mark.integration
@needs_chromium
def test_the_browser_check_catches_console_errors_and_broken_resources(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!doctype html><title>x</title><img src='missing.png'>"
        "<script>console.error('boom'); undefined_function();</script>",
        encoding="utf-8",
    )
    problems = visit(page).problems
    assert any("console.error: boom" in p for p in problems)
    assert any("undefined_function" in p for p in problems)
    assert any("missing.png" in p for p in problems)
