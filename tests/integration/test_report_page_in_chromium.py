"""The retention page renders in the system's headless Chromium (Playwright) without problems."""

from __future__ import annotations

import pytest

from churn.report.page import SECTIONS, render_html
from support.browser import visit
from support.report_data import drift_report, make_report
from support.services import require

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _chromium():
    require("chromium")


@pytest.fixture(scope="module")
def full_page(dev_data):
    # with a feature outside the training range: its part of the page must render too
    return render_html(make_report(dev_data, drift=drift_report(tenure_days=0.101)))


PAGE_STATE = {
    "sections": """[...document.querySelectorAll('section')].map(s => ({
        id: s.id, heading: s.querySelector('h2').textContent, height: s.offsetHeight}))""",
    "images": "[...document.images].map(i => ({alt: i.alt, loaded: i.complete, "
    "width: i.naturalWidth, shown: i.offsetWidth}))",
    "overflowing": "document.documentElement.scrollWidth > window.innerWidth",
}


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
    assert "Customers beyond what the model has seen" in full_page
    assert screenshot.stat().st_size > 50_000


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
