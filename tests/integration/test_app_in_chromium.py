"""`churn app` in the system's headless Chromium: filter, plan, download, compare with the list."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.publish import record
from support.app_data import app_config, publish_example, running_app
from support.browser import FLAGS
from support.services import CHROMIUM, require

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _chromium():
    require("chromium")


def test_marketing_filters_plans_and_downloads_the_published_rows(tmp_path):
    from playwright.sync_api import sync_playwright

    exports = tmp_path / "exports"
    manifest = publish_example(exports, customers=1500, seed=4)
    published = record.read_list(exports, manifest)
    control = record.read_list(exports, manifest, "control")
    problems: list[str] = []
    with running_app(app_config(exports)) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            context = browser.new_context(
                accept_downloads=True, viewport={"width": 1280, "height": 900}
            )
            tab = context.new_page()
            tab.set_default_timeout(30_000)
            tab.on("console", lambda m: m.type in ("error", "assert") and problems.append(m.text))
            tab.on("pageerror", lambda error: problems.append(str(error)))
            tab.goto(base + "/", wait_until="load")
            assert tab.inner_text("#count") == f"{len(published):,}"
            assert tab.inner_text("#control-count") == f"{len(control):,}"

            # ticking a box shows the new selection at once (the page's script submits the form)
            with tab.expect_navigation():
                tab.check("input[name=tier][value=high]")
            with tab.expect_navigation():
                tab.check("input[name=seg_region][value=north]")
            chosen = published.loc[
                (published["risk_tier"] == "high") & (published["region"] == "north")
            ]
            assert len(chosen) > 8
            assert tab.inner_text("#count") == f"{len(chosen):,}"
            shown_value = float(tab.inner_text("#value-at-risk").replace(",", "").lstrip("¤"))
            assert shown_value == pytest.approx(chosen["value_at_risk"].sum(), abs=0.5)
            first_row = tab.inner_text("#rows tbody tr:first-child td.id")
            assert first_row == chosen["customer_id"].iloc[0]
            # ranks count the customers to contact in this selection: 1, 2, 3, ... (no gaps)
            shown_ranks = tab.locator("#rows tbody tr td:first-child").all_inner_texts()
            assert shown_ranks == [str(n) for n in range(1, min(len(chosen), 50) + 1)]
            reasons = tab.locator("#rows tbody tr:first-child td.why li").all_inner_texts()
            assert reasons == chosen["reasons"].iloc[0].split(" | ")

            # the what-if: the first 7 customers at a cost of 4 per contact
            tab.fill("#size", "7")
            tab.fill("#cost", "4")
            with tab.expect_navigation():
                tab.click("#apply")
            assert tab.is_checked("input[name=how][value=size]")
            assert tab.inner_text("#plan-contacts") == "7"
            assert tab.inner_text("#plan-cost") == "¤28"
            first = chosen.head(7)
            expected_net = (first["churn_probability"] * 0.1 * first["expected_value"] - 4).sum()
            assert float(
                tab.inner_text("#plan-net").replace(",", "").replace("¤", "")
            ) == pytest.approx(expected_net, abs=0.5)

            with tab.expect_download() as waiting:
                tab.click("#download-csv")
            download = waiting.value
            name = download.suggested_filename
            stem = f"at_risk_{manifest['as_of']}_model-7_list-{manifest['sha256'][:12]}_sel-"
            assert name.startswith(stem) and name.endswith(".csv"), name
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            tab.screenshot(path=tmp_path / "app.png")

            # the history shows the list and the download; a mistyped address is a page
            tab.click("text=Earlier lists and results")
            assert tab.inner_text(f"#list-{manifest['as_of']} td.num >> nth=2").startswith("1")
            assert problems == []
            response = tab.goto(base + "/lists", wait_until="load")
            assert response.status == 404
            assert "There is no such page here" in tab.inner_text("#problem")
            # the browser logs the 404 status itself; nothing else may go wrong on that page
            assert all("status of 404" in problem for problem in problems), problems
            problems.clear()
        finally:
            browser.close()
    assert problems == []
    got = pd.read_csv(saved, dtype={"customer_id": "string", "model_version": "string"})
    expected = first.reset_index(drop=True)
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    assert not set(got["customer_id"]) & set(control["customer_id"])
    assert got["rank"].tolist() == list(range(1, 8))  # the page's rank leads the file
    pd.testing.assert_frame_equal(
        got.drop(columns=["rank", "as_of"]),
        expected.drop(columns=["as_of"]),
        check_dtype=False,
    )
    (event,) = record.read_downloads(exports)
    assert event["rows"] == 7 and event["list_sha256"] == manifest["sha256"]
    assert event["filters"]["risk_tier"] == ["high"]
    assert event["filters"]["segments"] == {"region": ["north"]}
    assert (tmp_path / "app.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
