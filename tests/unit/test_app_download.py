"""Downloads from the marketing page: the rows, never control, suppression again, one record."""

from __future__ import annotations

import datetime as dt
import io
import json

import pandas as pd
import pytest

from churn.app.selection import group_query
from churn.app.service import RANK, build_download, build_view, download_name, selection_hash
from churn.app.store import ListStore
from churn.config import ScoreParams
from churn.errors import ChurnError
from churn.publish import record
from churn.score.targeting import save_rates_by_tier
from support.app_data import example_scores, publish_example
from support.publish_checks import LATER, assert_latest_names_a_complete_list

RATES = save_rates_by_tier(ScoreParams())


def _download(store: ListStore, query, file_format="csv", fresh=True):
    loaded = store.latest()
    suppression = store.suppression(fresh=fresh)
    view = build_view(
        loaded, group_query(query), suppression, store.suppressed(loaded, suppression), 5.0, RATES
    )
    assert view.errors == []
    return view, build_download(view, file_format)


def _read_csv(content: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(content), dtype={"customer_id": "string"})


def test_a_download_holds_the_first_rows_of_the_filtered_list_and_no_control(tmp_path):
    manifest = publish_example(tmp_path)
    store = ListStore(tmp_path, None)
    query = [("tier", "high"), ("seg_region", "north"), ("how", "size"), ("size", "5")]
    view, download = _download(store, query)
    published = record.read_list(tmp_path, manifest)
    expected = published.loc[
        (published["risk_tier"] == "high") & (published["region"] == "north")
    ].head(5)
    assert len(expected) == 5
    got = _read_csv(download.content)
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()
    # the page's rank first (1..N, no gaps), then the published list's columns as published
    assert list(got.columns) == [RANK, *published.columns]
    assert got[RANK].tolist() == [1, 2, 3, 4, 5]
    assert got["priority"].tolist() == expected["priority"].tolist()
    control = record.read_list(tmp_path, manifest, "control")
    assert not set(got["customer_id"]) & set(control["customer_id"])
    assert set(download.control_ids) <= set(control["customer_id"])
    assert download.entry["rows"] == 5 and download.entry["control_rows"] == len(
        download.control_ids
    )
    selection = download.entry["selection_hash"]
    assert download.file_name == download_name(manifest, selection, "csv")
    assert download.file_name == (
        f"at_risk_{manifest['as_of']}_model-7_list-{manifest['sha256'][:12]}_sel-{selection}.csv"
    )


def test_different_selections_of_a_list_get_different_file_names(tmp_path):
    publish_example(tmp_path)
    store = ListStore(tmp_path, None)
    queries = {
        "high": [("tier", "high")],
        "high, 5": [("tier", "high"), ("how", "size"), ("size", "5")],
        "high, 6": [("tier", "high"), ("how", "size"), ("size", "6")],
        "north": [("seg_region", "north")],
    }
    names = {label: _download(store, query)[1].file_name for label, query in queries.items()}
    assert len(set(names.values())) == len(queries)
    again = _download(store, queries["high, 5"])[1]
    assert again.file_name == names["high, 5"]  # the same selection, the same name
    excel = _download(store, queries["high, 5"], "xlsx")[1]
    assert excel.file_name == names["high, 5"].removesuffix(".csv") + ".xlsx"
    assert again.entry["selection_hash"] == selection_hash(
        again.entry["filters"], again.entry["what_if"]
    )


def test_the_current_suppression_list_is_applied_again_at_download(tmp_path):
    manifest = publish_example(tmp_path)
    published = record.read_list(tmp_path, manifest)
    first_two = published["customer_id"].head(2).tolist()
    suppression = tmp_path.parent / "suppression.csv"
    suppression.write_text("customer_id\n")
    store = ListStore(tmp_path, suppression)
    _, before = _download(store, [])
    assert before.entry["rows"] == len(published)
    suppression.write_text("customer_id\n" + "\n".join(first_two) + "\n")  # opted out since
    _, after = _download(store, [])
    got = _read_csv(after.content)
    assert got["customer_id"].tolist() == published["customer_id"].iloc[2:].tolist()
    assert after.entry["suppressed_removed"] == 2
    assert after.entry["suppression_sha256"] != before.entry["suppression_sha256"]


def test_a_missing_suppression_list_stops_the_download_with_the_file_named(tmp_path):
    publish_example(tmp_path)
    store = ListStore(tmp_path, tmp_path / "nowhere.csv")
    with pytest.raises(ChurnError, match="nowhere.csv: suppression list not found"):
        store.suppression(fresh=True)


def test_excel_downloads_hold_the_same_rows(tmp_path):
    publish_example(tmp_path)
    store = ListStore(tmp_path, None)
    _, csv_download = _download(store, [("tier", "medium")])
    _, excel = _download(store, [("tier", "medium")], "xlsx")
    sheet = pd.read_excel(io.BytesIO(excel.content), dtype={"customer_id": str})
    assert sheet["customer_id"].tolist() == _read_csv(csv_download.content)["customer_id"].tolist()
    assert excel.file_name.endswith(".xlsx")


def test_a_download_is_recorded_by_the_record_and_leaves_the_list_untouched(tmp_path):
    manifest = publish_example(tmp_path)
    store = ListStore(tmp_path, None)
    _, download = _download(store, [("tier", "high"), ("how", "size"), ("size", "3")])
    now = dt.datetime(2025, 7, 2, 8, 30, tzinfo=dt.UTC)
    event = record.record_download(
        tmp_path, download.entry, download.customer_ids, download.control_ids, now=now
    )
    assert event["event"] == "download" and event["at"] == "2025-07-02T08:30:00Z"
    detail = json.loads((tmp_path / event["record"]).read_text())
    assert detail["customer_ids"] == download.customer_ids
    assert detail["control_customer_ids"] == download.control_ids
    assert detail["list_sha256"] == manifest["sha256"]
    assert detail["filters"]["risk_tier"] == ["high"]
    assert [e["record"] for e in record.read_downloads(tmp_path)] == [event["record"]]
    assert record.published_dates(tmp_path) == [manifest["as_of"]]  # downloads/ is no list
    assert_latest_names_a_complete_list(tmp_path)
    record.read_manifest(tmp_path)  # every published file still matches its sha256


def test_a_download_record_must_agree_with_itself(tmp_path):
    publish_example(tmp_path)
    store = ListStore(tmp_path, None)
    _, download = _download(store, [])
    with pytest.raises(ChurnError, match="must agree"):
        record.record_download(
            tmp_path, download.entry, download.customer_ids[1:], download.control_ids
        )
    with pytest.raises(ChurnError, match="missing \\['file_sha256'\\]"):
        entry = {k: v for k, v in download.entry.items() if k != "file_sha256"}
        record.record_download(tmp_path, entry, download.customer_ids, download.control_ids)
    with pytest.raises(ChurnError, match="no list has been published"):
        record.record_download(
            tmp_path / "empty", download.entry, download.customer_ids, download.control_ids
        )


def test_each_published_version_is_loaded_once(tmp_path):
    publish_example(tmp_path)
    store = ListStore(tmp_path, None)
    first = store.latest()
    for _ in range(5):
        assert store.latest() is first
    assert store.loads == 1
    record.publish_lists(example_scores(400, seed=2, as_of=LATER), tmp_path)
    assert store.latest().manifest["as_of"] == str(LATER)
    assert store.loads == 2


def test_a_list_changed_by_hand_is_not_served(tmp_path):
    manifest = publish_example(tmp_path)
    path = tmp_path / manifest["as_of"] / record.LIST_PARQUET
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ChurnError, match="do not match their manifest"):
        ListStore(tmp_path, None).latest()


def test_an_empty_selection_is_not_downloaded_nor_recorded(tmp_path):
    manifest = publish_example(tmp_path)
    control = record.read_list(tmp_path, manifest, "control")
    store = ListStore(tmp_path, None)
    loaded = store.latest()
    suppression = store.suppression(fresh=True)
    only_control = [("customer", str(control["customer_id"].iloc[0]))]
    view = build_view(
        loaded,
        group_query(only_control),
        suppression,
        store.suppressed(loaded, suppression),
        5.0,
        RATES,
    )
    assert view.plan.contacts == 0
    with pytest.raises(ChurnError, match="no customer to contact"):
        build_download(view, "csv")
    assert record.read_downloads(tmp_path) == []
