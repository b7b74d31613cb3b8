"""The page's history: earlier lists with their backtest outcome, or when they mature."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from churn.app.history import DUE, MATURING, MEASURED, build_history, matures_on
from churn.backtest import run_backtest
from churn.config import BacktestParams
from churn.ledger import COLLECTING, SEPARATED

OLD, NEW = date(2024, 1, 31), date(2024, 3, 31)


def _scores(n_flagged: int = 100, n_rest: int = 20) -> pd.DataFrame:
    n = n_flagged + n_rest
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:04d}" for i in range(n)], dtype="string"),
            "churn_probability": [0.6] * n_flagged + [0.1] * n_rest,
            "at_risk": [True] * n_flagged + [False] * n_rest,
            "group": ["treatment", "control"] * (n // 2),
        }
    )


def _backtest(contacts: pd.DataFrame | None = None) -> dict:
    """The real backtest: 50 of 100 flagged customers and 10 of 20 others buy after OLD."""
    scores = _scores()
    buyers = [f"{i:04d}" for i in range(50, 100)] + [f"{i:04d}" for i in range(100, 110)]
    transactions = pd.DataFrame(
        {
            "customer_id": pd.array([*buyers, "0000"], dtype="string"),
            "date": [date(2024, 2, 10)] * len(buyers) + [date(2024, 3, 5)],
            "amount": 5.0,
        }
    )
    published = {OLD: (30, scores), NEW: (30, scores)}
    return run_backtest(published, transactions, BacktestParams(), contacts)


def _manifest(as_of: date, horizon: int = 30) -> dict:
    return {
        "as_of": str(as_of),
        "model_version": "4",
        "created_at": f"{as_of}T06:00:00Z",
        "groups": {"treatment": 60, "control": 6},
        "definition": {"horizon_days": horizon},
    }


def test_a_matured_list_shows_its_outcome_and_a_newer_one_when_it_matures():
    downloads = [
        {"as_of": str(OLD), "at": "2024-02-01T09:00:00Z"},
        {"as_of": str(OLD), "at": "2024-02-03T09:00:00Z"},
    ]
    rows = build_history(
        [_manifest(OLD), _manifest(NEW)], _backtest(), downloads, str(NEW), date(2024, 4, 2), 90
    )
    assert [r.as_of for r in rows] == [str(NEW), str(OLD)]  # newest first
    new, old = rows
    assert (new.status, new.matures_on, new.latest, new.downloads) == (
        MATURING,
        "2024-04-30",
        True,
        0,
    )
    assert (old.status, old.matures_on, old.latest) == (MEASURED, None, False)
    assert old.flagged["churn_rate"] == pytest.approx(0.5)  # 50 of 100 flagged did not buy
    assert old.rest["churn_rate"] == pytest.approx(0.5)
    assert old.flagged["ci_low"] < 0.5 < old.flagged["ci_high"]
    assert old.campaign["known"] is False  # no contact log: no effect claimed
    assert (old.downloads, old.last_download) == (2, "2024-02-03T09:00:00Z")
    assert (old.contacts, old.control) == (60, 6)


def test_with_a_contact_log_the_campaign_effect_and_its_interval_are_shown():
    contacts = pd.DataFrame(
        {
            "customer_id": pd.array([f"{i:04d}" for i in range(0, 100, 2)], dtype="string"),
            "contacted_at": [date(2024, 2, 2)] * 50,
        }
    )
    rows = build_history([_manifest(OLD)], _backtest(contacts), [], str(OLD), date(2024, 4, 2), 90)
    campaign = rows[0].campaign
    assert campaign["known"] is True
    assert campaign["ci_low"] <= campaign["retention_difference"] <= campaign["ci_high"]


def test_without_a_backtest_a_list_matures_by_its_own_horizon_or_is_due():
    manifests = [_manifest(OLD, horizon=90)]
    maturing = build_history(manifests, None, [], str(OLD), date(2024, 4, 29), 30)[0]
    assert (maturing.status, maturing.matures_on) == (MATURING, "2024-04-30")
    due = build_history(manifests, None, [], str(OLD), date(2024, 4, 30), 30)[0]
    assert (due.status, due.matures_on, due.flagged) == (DUE, "2024-04-30", None)


def test_the_horizon_comes_from_the_list_else_from_the_params():
    assert matures_on(_manifest(OLD, horizon=10), 90) == "2024-02-10"
    assert matures_on({"as_of": str(OLD)}, 90) == "2024-04-30"


# --------------------------------------------------------------------------- the campaign ledger
def _ledger(sha: str = "ab" * 32) -> dict:
    """The real ledger over the OLD list (matured) and the NEW one (collecting): of the 50
    flagged customers to contact 40 buy again after OLD, of the 50 in control 10 do."""
    from churn.ledger import PublishedList, build_ledger

    scores = _scores(n_flagged=100, n_rest=20).assign(
        suggested_action=["win-back offer", "service call"] * 60,
        risk_tier=["high"] * 60 + ["medium"] * 60,
        expected_value=100.0,
    )
    treated = scores.loc[scores["at_risk"] & (scores["group"] == "treatment"), "customer_id"]
    control = scores.loc[scores["at_risk"] & (scores["group"] == "control"), "customer_id"]
    buyers = [*treated.iloc[:40], *control.iloc[:10]]
    transactions = pd.DataFrame(
        {
            "customer_id": pd.array([*buyers, "0000"], dtype="string"),
            "date": [date(2024, 2, 10)] * len(buyers) + [date(2024, 3, 5)],
            "amount": 5.0,
        }
    )
    download = {
        "at": "2024-02-01T09:00:00Z",
        "file_name": "at_risk_2024-01-31.csv",
        "customer_ids": treated.tolist(),
        "control_customer_ids": control.tolist(),
    }
    lists = [
        PublishedList({**_manifest(OLD), "sha256": sha}, 30, scores, [download]),
        PublishedList({**_manifest(NEW), "sha256": "cd" * 32}, 30, scores),
    ]
    return build_ledger(lists, transactions, 0.95)


def test_a_matured_list_shows_the_ledgers_campaign_result_next_to_the_backtest():
    ledger = _ledger()
    manifests = [{**_manifest(OLD), "sha256": "ab" * 32}, {**_manifest(NEW), "sha256": "cd" * 32}]
    new, old = build_history(
        manifests, _backtest(), [], str(NEW), date(2024, 4, 2), 90, ledger=ledger
    )
    assert old.status == MEASURED and old.flagged["churn_rate"] == pytest.approx(0.5)
    result = old.ledger
    assert (result.status, result.campaign_known, result.stale) == (SEPARATED, True, False)
    assert result.confidence == 0.95
    effect = result.overall
    assert (effect.treated, effect.control) == (50, 50)
    assert effect.treated_retention == pytest.approx(0.8)  # 40 of 50 stayed
    assert effect.control_retention == pytest.approx(0.2)  # 10 of 50
    assert effect.difference == pytest.approx(0.6)
    assert effect.ci_low < 0.6 < effect.ci_high and effect.ci_low > 0
    assert effect.kept == pytest.approx(30.0)  # 0.6 x 50 customers to contact
    assert {s.kind for s in result.slices} == {"action", "tier", "download"}
    (download,) = [s for s in result.slices if s.kind == "download"]
    assert (download.treated, download.control) == (50, 50)
    assert download.label == "2024-02-01 09:00 UTC, at_risk_2024-01-31.csv"
    # the newer list is still collecting: the ledger says when it matures, no effect yet
    assert (new.ledger.status, new.ledger.matures_on) == (COLLECTING, "2024-04-30")
    assert new.ledger.overall is None and new.ledger.slices == ()


def test_a_ledger_measured_on_another_version_of_the_list_is_marked_stale():
    ledger = _ledger(sha="ee" * 32)
    manifests = [{**_manifest(OLD), "sha256": "ab" * 32}]
    (old,) = build_history(manifests, None, [], str(OLD), date(2024, 4, 2), 90, ledger=ledger)
    assert old.ledger.stale is True


def test_without_a_ledger_or_outside_it_a_list_has_no_campaign_result():
    manifests = [{**_manifest(OLD), "sha256": "ab" * 32}]
    (alone,) = build_history(manifests, None, [], str(OLD), date(2024, 4, 2), 90)
    assert alone.ledger is None
    empty = {"lists": []}
    (outside,) = build_history(manifests, None, [], str(OLD), date(2024, 4, 2), 90, ledger=empty)
    assert outside.ledger is None


def test_the_ledger_file_is_read_when_there_and_refused_when_not_a_ledger(tmp_path):
    from churn.app.store import read_ledger
    from churn.errors import ChurnError
    from churn.files import write_json

    assert read_ledger(None) is None
    assert read_ledger(tmp_path / "ledger.json") is None  # not run yet: no campaign results
    write_json(_ledger(), tmp_path / "ledger.json")
    assert [e["as_of"] for e in read_ledger(tmp_path / "ledger.json")["lists"]] == [
        str(OLD),
        str(NEW),
    ]
    write_json({"runs": []}, tmp_path / "other.json")
    with pytest.raises(ChurnError, match="other.json: no `lists` array.*churn ledger"):
        read_ledger(tmp_path / "other.json")
    write_json({"lists": [{"as_of": "2024-01-31"}]}, tmp_path / "partial.json")
    with pytest.raises(ChurnError, match="partial.json: list entry 1 lacks status"):
        read_ledger(tmp_path / "partial.json")


def test_a_list_imported_with_only_its_date_is_still_listed():
    (row,) = build_history([{"as_of": str(OLD)}], None, [], None, date(2024, 4, 2), 30)
    assert (row.as_of, row.model_version, row.contacts, row.control) == (str(OLD), "", 0, 0)
    assert (row.status, row.matures_on, row.latest) == (DUE, "2024-03-01", False)


def test_an_imported_past_list_is_judged_by_its_own_ledger_entry_not_by_its_date():
    from churn.app.history import IMPORTED

    churn_entry = _ledger()["lists"][0]  # the ledger's entry for churn's own list of OLD
    imported_entry = {
        **churn_entry,
        "origin": "imported",
        "list_id": "spring-mailing",
        "campaign_known": False,
    }
    ledger = {**_ledger(), "lists": [churn_entry, imported_entry]}
    own = {**_manifest(OLD), "sha256": "ab" * 32}
    past = {
        "as_of": str(OLD),
        "origin": "imported",
        "list_id": "spring-mailing",
        "model_version": None,
        "groups": {"treatment": 50, "control": 50},
        "sha256": "ab" * 32,
    }
    rows = build_history([own, past], _backtest(), [], str(OLD), date(2024, 4, 2), 90, ledger)
    (imported,) = [row for row in rows if row.status == IMPORTED]
    (mine,) = [row for row in rows if row.status != IMPORTED]
    assert (imported.model_version, imported.latest, imported.flagged) == ("", False, None)
    assert imported.ledger is not None and imported.ledger.campaign_known is False
    assert mine.status == MEASURED and mine.latest and mine.ledger.campaign_known is True


def test_the_store_lists_imported_past_lists_beside_published_ones(tmp_path):
    from churn.app.store import ListStore
    from churn.publish import record

    past = pd.DataFrame(
        {
            "list_id": ["winter"] * 4,
            "list_date": ["2024-01-31"] * 4,
            "customer_id": ["a", "b", "c", "d"],
            "group": ["treatment", "treatment", "treatment", "control"],
        }
    )
    checked = record.check_past_lists(past, "past_lists.csv")
    record.import_lists(checked, tmp_path, "past_lists.csv")
    (manifest,) = ListStore(tmp_path, None).manifests()
    assert (manifest["origin"], manifest["list_id"], manifest["as_of"]) == (
        "imported",
        "winter",
        "2024-01-31",
    )
    assert manifest["groups"] == {"treatment": 3, "control": 1}
