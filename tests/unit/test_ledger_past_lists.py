"""Past campaign lists enter the published-lists record as imported lists; bad rows are named."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.ledger import PublishedList, contacted_table, uplift_rows, with_expected_values
from churn.publish import record

NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def _raw(**overrides):
    rows = {
        "list_id": ["w1", "w1", "w1", "w1", "w2", "w2"],
        "list_date": ["2025-01-10"] * 4 + ["2025-04-10"] * 2,
        "customer_id": ["001", "002", "003", "004", "001", "005"],
        "group": ["treatment", "treatment", "control", "Treatment", "treatment", "control"],
        "suggested_action": ["win-back offer"] * 6,
    }
    rows.update(overrides)
    return pd.DataFrame(rows, dtype="string")


def test_good_rows_are_kept_with_leading_zeros_and_typed_dates():
    checked = record.check_past_lists(_raw(), "lists.csv")
    assert checked.quarantine.empty
    assert checked.rows["customer_id"].tolist()[:2] == ["001", "002"]
    assert checked.rows["group"].tolist()[3] == "treatment"  # case is forgiven
    assert checked.rows["list_date"].iloc[0] == dt.date(2025, 1, 10)


def test_bad_rows_are_quarantined_with_their_row_and_reason():
    raw = _raw(
        customer_id=["001", "", "003", "003", "001", "005"],
        group=["treatment", "treatment", "holdout", "control", "control", "control"],
        list_date=[
            "2025-01-10",
            "2025-01-10",
            "2025-01-10",
            "2025-01-10",
            "10/04/2025",
            "2025-04-10",
        ],
    )
    checked = record.check_past_lists(raw, "lists.csv")
    reasons = dict(zip(checked.quarantine["source_row"], checked.quarantine["reason"], strict=True))
    assert reasons == {2: "missing_customer", 3: "bad_group", 5: "bad_list_date"}
    assert checked.quarantine.loc[1, "detail"] == "holdout"
    assert len(checked.rows) == 3


def test_a_customer_twice_in_one_list_is_quarantined_after_the_first():
    raw = _raw(customer_id=["001", "001", "003", "004", "001", "005"])
    checked = record.check_past_lists(raw, "lists.csv")
    assert checked.quarantine["reason"].tolist() == ["duplicate_customer"]
    assert checked.quarantine["source_row"].tolist() == [2]


def test_missing_columns_and_a_list_with_two_dates_are_errors_naming_the_file():
    with pytest.raises(ChurnError, match=r"lists.csv: column\(s\) \['group'\] missing"):
        record.check_past_lists(_raw().drop(columns="group"), "lists.csv")
    with pytest.raises(ChurnError, match="list_id 'w1' has 2 list dates"):
        record.check_past_lists(
            _raw(list_date=["2025-01-10", "2025-01-11"] + ["2025-01-10"] * 4), "lists.csv"
        )
    with pytest.raises(ChurnError, match=r"unknown column\(s\) \['segment'\]"):
        record.check_past_lists(_raw().assign(segment="x"), "lists.csv")


def test_import_writes_one_folder_per_list_once_and_never_touches_latest(tmp_path):
    checked = record.check_past_lists(_raw(), "lists.csv")
    first = record.import_lists(checked, tmp_path, "lists.csv", now=NOW)
    assert (first.imported, first.unchanged) == (2, 0)
    again = record.import_lists(checked, tmp_path, "lists.csv", now=NOW)
    assert (again.imported, again.unchanged) == (0, 2)
    assert not (tmp_path / record.LATEST_FILE).exists()
    assert record.published_dates(tmp_path) == []  # imported lists are not churn's lists
    manifest = first.manifests[0]
    assert manifest["origin"] == "imported" and manifest["model_version"] is None
    assert manifest["list_id"] == "w1" and manifest["groups"] == {"treatment": 3, "control": 1}
    folder = record.list_folder(tmp_path, manifest)
    assert folder.name == f"2025-01-10.imported-{manifest['content_sha256'][:12]}"
    scored = record.read_scored(tmp_path, manifest)
    assert scored["at_risk"].all() and set(scored["group"]) == {"treatment", "control"}
    events = record.read_events(tmp_path)
    assert [e["event"] for e in events] == ["imported", "imported"]
    # a changed list is a new folder, the old one stays in the record
    changed = record.check_past_lists(_raw(group=["control"] * 6), "lists.csv")
    third = record.import_lists(changed, tmp_path, "lists.csv", now=NOW)
    assert third.imported == 2 and len(list(tmp_path.glob("*.imported-*"))) == 4
    assert json.loads((folder / "manifest.json").read_text())["list_id"] == "w1"


def _published():
    scored = pd.DataFrame(
        {
            "customer_id": pd.array(["001", "002", "003", "004"], dtype="string"),
            "at_risk": [True, True, True, False],
            "group": ["treatment", "treatment", "control", "treatment"],
            "suggested_action": ["win-back offer", "loyalty invitation", "win-back offer", None],
        }
    )
    manifest = {"as_of": "2025-01-10", "list_id": "w1", "origin": "imported"}
    return PublishedList(manifest, 90, scored)


def test_uplift_rows_hold_group_outcome_value_and_the_features_at_the_list_date():
    snapshot = pd.DataFrame(
        {
            "customer_id": pd.array(["001", "003", "009"], dtype="string"),
            "recency_days": [40, 70, 5],
            "spend_total": [300.0, 90.0, 10.0],
        }
    )
    published = with_expected_values(_published(), snapshot, [30.0, 9.0, 1.0])
    purchases = pd.DataFrame(
        {
            "customer_id": ["001", "003", "002"],
            "date": [dt.date(2025, 2, 1), dt.date(2025, 1, 10), dt.date(2025, 6, 1)],
        }
    )
    contacts = pd.DataFrame(
        {"customer_id": ["002"], "contacted_at": [pd.Timestamp("2025-01-12 10:00")]}
    )
    rows = uplift_rows(published, snapshot, purchases, contacts, ["recency_days", "spend_total"])
    assert rows["customer_id"].tolist() == ["001", "002", "003"]  # flagged customers only
    assert rows["treated"].tolist() == [1, 1, 0]
    # 001 bought inside (list date, +90]; 003 bought on the list date itself, 002 after it
    assert rows["churned"].tolist() == [0, 1, 1]
    assert rows["value"].tolist() == [30.0, 0.0, 9.0]  # 002 was not eligible: no value
    assert rows["has_features"].tolist() == [True, False, True]
    assert rows["recency_days"].isna().tolist() == [False, True, False]
    assert rows["contacted"].tolist() == [False, True, False]
    assert rows["list_id"].iloc[0] == "w1" and rows["list_date"].iloc[0] == dt.date(2025, 1, 10)


def test_the_contacted_table_holds_the_treatment_group_of_every_list():
    table = contacted_table([_published()])
    assert table["customer_id"].tolist() == ["001", "002"]
    assert set(table["list_id"]) == {"w1"} and set(table["horizon_days"]) == {90}


def test_a_past_lists_file_with_only_its_header_imports_nothing(tmp_path):
    header_only = _raw().iloc[0:0]
    checked = record.check_past_lists(header_only, "lists.csv")
    assert checked.rows.empty and checked.quarantine.empty
    assert record.import_lists(checked, tmp_path, "lists.csv", now=NOW).manifests == []
