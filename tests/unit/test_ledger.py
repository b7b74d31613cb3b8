"""The campaign ledger on hand-built lists, and on simulated campaigns with a known effect."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn.backtest import check_contacts, newcombe_interval, purchase_dates
from churn.errors import ChurnError
from churn.ledger import (
    COLLECTING,
    INCONCLUSIVE,
    SEPARATED,
    PublishedList,
    build_ledger,
    effect_among_reached,
    ledger_rows,
    measure_effect,
)

AS_OF = date(2024, 1, 31)
HORIZON = 30
INSIDE = AS_OF + timedelta(days=10)  # a purchase inside the outcome window: the customer stayed


def _scored() -> pd.DataFrame:
    """Six flagged treatment customers (t1-t6), four flagged control (k1-k4), two unflagged."""
    ids = [f"t{i}" for i in range(1, 7)] + [f"k{i}" for i in range(1, 5)] + ["u1", "u2"]
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "as_of": AS_OF,
            "churn_probability": [0.6] * 10 + [0.05, 0.05],
            "at_risk": [True] * 10 + [False] * 2,
            "group": ["treatment"] * 6 + ["control"] * 4 + ["treatment", "control"],
            "expected_value": [100.0, 200.0, 300.0, 100.0, 200.0, 300.0] + [50.0] * 6,
            "risk_tier": ["high", "high", "high", "medium", "medium", "medium"]
            + ["high", "high", "medium", "medium", "low", "low"],
            "suggested_action": pd.array(
                ["win-back offer"] * 3 + ["service call"] * 2 + [None] + ["win-back offer"] * 4,
                dtype="string",
            ).tolist()
            + [None, None],
            "model_version": "3",
        }
    )


def _transactions(buyers: list[str], newest: date = AS_OF + timedelta(days=40)) -> pd.DataFrame:
    ids = [*buyers, "someone-else"]
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "date": [INSIDE] * len(buyers) + [newest],
            "amount": 10.0,
        }
    )


def _published(scored=None, downloads=(), as_of=AS_OF) -> PublishedList:
    manifest = {"as_of": str(as_of), "model_version": "3", "sha256": "ab" * 32}
    return PublishedList(manifest, HORIZON, _scored() if scored is None else scored, downloads)


# t1 t2 t4 t5 stay (4 of 6 treated), k1 stays (1 of 4 control); both unflagged stay
BUYERS = ["t1", "t2", "t4", "t5", "k1", "u1", "u2"]


def test_a_hand_built_list_is_measured_by_its_random_assignment():
    ledger = build_ledger([_published()], _transactions(BUYERS), 0.95)
    entry = ledger["lists"][0]
    assert entry["treated"] == 6 and entry["control"] == 4 and entry["status"] == INCONCLUSIVE
    overall = entry["slices"][0]
    assert (overall["slice"], overall["value"]) == ("list", "all")
    assert overall["treated_retention"] == pytest.approx(4 / 6, abs=1e-6)
    assert overall["control_retention"] == 0.25
    difference = 4 / 6 - 1 / 4
    low, high = newcombe_interval(4, 6, 1, 4)
    assert overall["retention_difference"] == pytest.approx(difference, abs=1e-6)
    assert (overall["ci_low"], overall["ci_high"]) == (round(low, 6), round(high, 6))
    assert overall["incremental_customers"] == pytest.approx(difference * 6, abs=0.01)
    # the treated customers' expected values sum to 1,200: the margin is the difference of that
    assert overall["treated_expected_value"] == 1200.0
    assert overall["incremental_margin"] == pytest.approx(difference * 1200, abs=0.01)
    assert overall["incremental_margin_ci"] == [
        pytest.approx(round(low, 6) * 1200, abs=0.01),
        pytest.approx(round(high, 6) * 1200, abs=0.01),
    ]
    assert overall["contact_log"] is None and overall["return_on_cost"] is None
    # no download and no contact log: the split is measured, but no campaign is known to have run
    assert entry["campaign_known"] is False and "no campaign is known" in entry["note"]


def test_unflagged_customers_never_enter_the_effect():
    # the two unflagged customers churn now: nothing in the ledger moves
    before = build_ledger([_published()], _transactions(BUYERS), 0.95)
    after = build_ledger([_published()], _transactions(BUYERS[:-2]), 0.95)
    assert before["lists"] == after["lists"]


def test_the_flagged_customers_transactions_and_the_newest_date_give_the_same_ledger():
    # the ledger stage reads only the flagged customers' rows and passes the file's newest date
    everyone = _transactions(BUYERS)
    flagged = set(_scored().loc[lambda s: s["at_risk"], "customer_id"])
    listed = everyone[everyone["customer_id"].isin(flagged)]
    newest = everyone["date"].max()
    whole = build_ledger([_published()], everyone, 0.95)
    assert build_ledger([_published()], listed, 0.95, newest=newest) == whole
    # without the newest date, the listed rows alone would date the data too early
    assert build_ledger([_published()], listed, 0.95)["lists"][0]["status"] == "collecting"


def test_purchases_passed_instead_of_transactions_give_the_same_ledger():
    # the ledger stage passes the listed customers' purchase dates (datetime64), not their rows
    everyone = _transactions(BUYERS)
    newest = everyone["date"].max()
    purchases = purchase_dates(everyone)
    purchases = purchases.assign(date=pd.to_datetime(purchases["date"]))
    whole = build_ledger([_published()], everyone, 0.95)
    assert build_ledger([_published()], None, 0.95, newest=newest, purchases=purchases) == whole
    with pytest.raises(ValueError, match="newest"):
        build_ledger([_published()], None, 0.95, purchases=purchases)
    with pytest.raises(ValueError, match="transactions or their purchases"):
        build_ledger([_published()], None, 0.95, newest=newest)


def test_each_action_and_tier_is_measured_within_its_own_treated_and_control():
    slices = build_ledger([_published()], _transactions(BUYERS), 0.95)["lists"][0]["slices"]
    found = {(s["slice"], s["value"]): s for s in slices}
    assert set(found) == {
        ("list", "all"),
        ("action", "win-back offer"),
        ("action", "service call"),
        ("action", "(none)"),
        ("tier", "high"),
        ("tier", "medium"),
    }
    win_back = found[("action", "win-back offer")]
    assert (win_back["treated_customers"], win_back["control_customers"]) == (3, 4)
    assert win_back["treated_retention"] == pytest.approx(2 / 3, abs=1e-6)
    # a slice without control customers has no interval: never "separated"
    call = found[("action", "service call")]
    assert call["control_customers"] == 0 and call["ci_low"] is None
    assert call["status"] == INCONCLUSIVE
    high = found[("tier", "high")]
    assert (high["treated_customers"], high["control_customers"]) == (3, 2)
    assert high["control_retention"] == 0.5  # k1 stayed, k2 churned


def test_a_list_whose_horizon_has_not_passed_is_collecting():
    newest = AS_OF + timedelta(days=HORIZON - 1)
    entry = build_ledger([_published()], _transactions(BUYERS, newest), 0.95)["lists"][0]
    assert entry["status"] == COLLECTING and entry["slices"] == []
    assert entry["matures_on"] == str(AS_OF + timedelta(days=HORIZON))
    rows = ledger_rows({"lists": [entry]})
    assert rows[0]["status"] == f"collecting until {entry['matures_on']}"


def _contacts(rows: list[tuple]) -> pd.DataFrame:
    columns = ["customer_id", "contacted_at", "action", "channel", "cost"]
    raw = pd.DataFrame([r + (None,) * (5 - len(r)) for r in rows], columns=columns[:5])
    return check_contacts(raw.astype({"customer_id": "string"}), "contacts.csv")


def test_the_contact_log_gives_compliance_and_the_return_on_contact_cost():
    contacts = _contacts(
        [
            ("t1", "2024-02-01", "win-back offer", "email", 2.0),
            ("t2", "2024-02-02", "win-back offer", "email", 2.0),
            ("t2", "2024-02-20", "service call", "phone", 10.0),  # a second contact
            ("t4", "2024-03-01", "service call", "phone", 10.0),  # the window's last day
            ("t5", "2024-03-02", "service call", "phone", 10.0),  # after the window: not counted
            ("k3", "2024-02-05", "win-back offer", "email", 2.0),  # a control customer by mistake
        ]
    )
    ledger = build_ledger([_published()], _transactions(BUYERS), 0.95, contacts)
    assert ledger["contact_log"] is True and ledger["costs_logged"] is True
    overall = ledger["lists"][0]["slices"][0]
    log = overall["contact_log"]
    assert log["treated_contacted"] == 3 and log["compliance"] == 0.5
    assert log["control_contacted"] == 1 and log["contacts"] == 4
    assert log["contacts_by_action"] == {"service call": 2, "win-back offer": 2}
    assert log["by_channel"] == {"email": 2, "phone": 2}
    assert ledger["lists"][0]["campaign_known"] is True
    # among those reached: the difference over (3/6 treated - 1/4 control contacted) = / 0.25
    assert log["effect_among_reached"] == pytest.approx(
        overall["retention_difference"] / 0.25, abs=1e-5
    )
    assert log["effect_among_reached_ci"][0] == pytest.approx(overall["ci_low"] / 0.25, abs=1e-5)
    assert overall["contact_cost"] == 24.0
    margin = overall["incremental_margin"]
    assert overall["return_on_cost"] == pytest.approx((margin - 24.0) / 24.0, abs=1e-3)
    low, high = overall["incremental_margin_ci"]
    assert overall["return_on_cost_ci"] == [
        pytest.approx((low - 24) / 24, abs=1e-3),
        pytest.approx((high - 24) / 24, abs=1e-3),
    ]


def test_a_contact_without_a_cost_leaves_the_return_unknown_and_is_counted():
    contacts = _contacts([("t1", "2024-02-01", "offer", "email", 2.0), ("t2", "2024-02-01")])
    overall = build_ledger([_published()], _transactions(BUYERS), 0.95, contacts)["lists"][0][
        "slices"
    ][0]
    assert overall["contact_log"]["contacts_without_cost"] == 1
    assert overall["contact_cost"] is None and overall["return_on_cost"] is None


def test_the_contact_log_rejects_a_cost_that_is_not_a_number():
    raw = pd.DataFrame(
        {"customer_id": ["a", "b"], "contacted_at": ["2024-02-01"] * 2, "cost": ["2.5", "two"]}
    )
    with pytest.raises(ChurnError, match=r"contacts.csv: column 'cost'.*data row 2: 'two'"):
        check_contacts(raw, "contacts.csv")
    negative = raw.assign(cost=[2.5, -1.0])
    with pytest.raises(ChurnError, match="not a number >= 0"):
        check_contacts(negative, "contacts.csv")


def test_a_download_is_measured_against_the_control_members_of_its_filter():
    download = {
        "at": "2024-02-01T09:00:00Z",
        "file_name": "at_risk_high.csv",
        "customer_ids": ["t1", "t2", "t3"],
        "control_customer_ids": ["k1", "k2"],
    }
    entry = build_ledger([_published(downloads=[download])], _transactions(BUYERS), 0.95)
    assert entry["lists"][0]["downloads"] == 1
    assert entry["lists"][0]["campaign_known"] is True  # a download says the list was used
    part = entry["lists"][0]["slices"][-1]
    assert (part["slice"], part["value"]) == ("download", "2024-02-01T09:00:00Z at_risk_high.csv")
    assert (part["treated_customers"], part["control_customers"]) == (3, 2)
    assert part["treated_retention"] == pytest.approx(2 / 3, abs=1e-6)
    assert part["control_retention"] == 0.5


def test_measure_effect_scales_the_difference_and_its_interval():
    churned_treated = np.array([0] * 80 + [1] * 20)  # 80% kept
    churned_control = np.array([0] * 60 + [1] * 40)  # 60% kept
    result = measure_effect(churned_treated, churned_control, np.full(100, 50.0), 0.95, cost=500)
    low, high = newcombe_interval(80, 100, 60, 100)
    assert result["retention_difference"] == 0.2 and result["status"] == SEPARATED
    assert result["incremental_customers"] == 20.0
    assert result["incremental_customers_ci"] == [
        round(round(low, 6) * 100, 2),
        round(round(high, 6) * 100, 2),
    ]
    assert result["incremental_margin"] == 1000.0  # 20 customers x 50
    assert result["return_on_cost"] == 1.0  # (1,000 - 500) / 500
    # half the treated reached, no control customer: the effect among the reached doubles
    reached = effect_among_reached(result, {"compliance": 0.5, "control_contacted": 0}, 100)
    assert reached["effect_among_reached"] == 0.4
    nobody = effect_among_reached(result, {"compliance": 0.0, "control_contacted": 0}, 100)
    assert nobody["effect_among_reached"] is None
    # without expected values the margin and its return are unknown, not zero
    unvalued = measure_effect(churned_treated, churned_control, None, 0.95, cost=500)
    assert unvalued["incremental_margin"] is None and unvalued["return_on_cost"] is None
    assert unvalued["incremental_customers"] == 20.0


def _simulated_list(rng, customers: int, control_share: float, churn: float, effect: float):
    """A list whose treatment lowers churn by `effect` (absolute), with its transactions."""
    ids = pd.array([f"c{i:06d}" for i in range(customers)], dtype="string")
    control = rng.random(customers) < control_share
    rate = np.where(control, churn, churn - effect)
    stays = rng.random(customers) >= rate
    scored = pd.DataFrame(
        {
            "customer_id": ids,
            "at_risk": True,
            "group": np.where(control, "control", "treatment"),
            "expected_value": 100.0,
        }
    )
    transactions = pd.DataFrame(
        {
            "customer_id": pd.array([*ids[stays], "late"], dtype="string"),
            "date": [INSIDE] * int(stays.sum()) + [AS_OF + timedelta(days=60)],
            "amount": 5.0,
        }
    )
    return _published(scored), transactions


def test_a_known_effect_is_recovered_within_its_interval():
    rng = np.random.default_rng(3)
    published, transactions = _simulated_list(rng, 20_000, 0.2, churn=0.4, effect=0.06)
    overall = build_ledger([published], transactions, 0.95)["lists"][0]["slices"][0]
    assert overall["status"] == SEPARATED
    assert overall["ci_low"] < 0.06 < overall["ci_high"]
    assert overall["ci_high"] - overall["ci_low"] < 0.04
    treated = overall["treated_customers"]
    assert (
        overall["incremental_customers_ci"][0]
        < 0.06 * treated
        < overall["incremental_customers_ci"][1]
    )


def test_intervals_cover_a_known_effect_and_a_null_effect_stays_inconclusive_in_most_seeds():
    covered, inconclusive, seeds = 0, 0, 40
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        published, transactions = _simulated_list(rng, 2000, 0.3, churn=0.4, effect=0.05)
        overall = build_ledger([published], transactions, 0.95)["lists"][0]["slices"][0]
        covered += overall["ci_low"] <= 0.05 <= overall["ci_high"]
        published, transactions = _simulated_list(rng, 2000, 0.3, churn=0.4, effect=0.0)
        status = build_ledger([published], transactions, 0.95)["lists"][0]["status"]
        inconclusive += status == INCONCLUSIVE
    # 95% intervals: expect about 38 of 40 each; a broken interval falls far below 34
    assert covered >= 34
    assert inconclusive >= 34


def test_the_table_has_one_row_per_slice_with_the_effect_and_its_status():
    ledger = build_ledger([_published()], _transactions(BUYERS), 0.95)
    rows = ledger_rows(ledger)
    assert len(rows) == len(ledger["lists"][0]["slices"])
    assert rows[0]["slice"] == "all" and rows[0]["status"] == "inconclusive (no campaign known)"
    assert rows[0]["effect [CI]"].startswith("+41.7% [")
    assert rows[1]["slice"].startswith("action: ")


def test_the_retention_page_shows_each_lists_campaign_results_and_the_collecting_ones():
    from churn.report.page import render_html
    from support.report_data import report_for

    matured = _published()
    waiting = _published(as_of=AS_OF + timedelta(days=20))
    ledger = build_ledger([matured, waiting], _transactions(BUYERS), 0.95)
    rows = [
        ("a", date(2024, 1, 5), 10.0),
        ("b", date(2024, 2, 10), 5.0),
        ("a", date(2024, 4, 30), 8.0),
    ]
    page = render_html(report_for(rows, ledger=ledger))
    assert "<h3>Campaign results</h3>" in page
    low, high = (100 * round(x, 6) for x in newcombe_interval(4, 6, 1, 4))
    # all: 66.7% vs 25.0% retention, +41.7 points, 2.5 customers kept of 6 treated
    assert (
        "<td>2024-01-31</td><td>all</td><td>6</td><td>4</td><td>66.7%</td><td>25.0%</td>"
        f"<td>+41.7 [{low:+.1f}, {high:+.1f}]</td><td>+2 [" in page
    )
    assert "<td>tier: high</td>" in page
    assert "<td>inconclusive (no campaign known)</td>" in page
    assert "List of 2024-02-20: collecting outcomes until 2024-03-21" in page


def test_the_page_refuses_a_file_that_is_not_a_ledger():
    from churn.report.campaigns import summarize_campaigns

    with pytest.raises(ChurnError, match="reports/ledger.json: not a campaign ledger"):
        summarize_campaigns({"runs": []}, "reports/ledger.json")
