"""`churn publish`: gates, atomic dated lists, LATEST.json always naming a complete list."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import pandas as pd
import pytest

from churn.config import PublishParams
from churn.errors import ChurnError, DataCheckFailed
from churn.publish import record as publishing
from churn.publish.formats import csv_bytes, neutralise_formulas
from churn.publish.gates import (
    Gate,
    check_drift_gate,
    check_ingest_report,
    check_scores_freshness,
    enforce_gates,
    validate_scores,
)
from churn.publish.record import (
    SCORED_PARQUET,
    publish_lists,
    read_events,
    read_manifest,
    read_scored,
)
from support.publish_checks import (
    LATER,
    NOW,
    assert_latest_names_a_complete_list,
    assert_visible_folders_are_complete,
    example_lists,
)
from support.score_data import AS_OF, make_scores


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def lists():
    return example_lists()


# --------------------------------------------------------------------------- CSV safety
def test_formula_like_text_cells_are_neutralised_and_numbers_stay_numbers():
    frame = pd.DataFrame(
        {
            "text": pd.array(
                ["=1+1", "+49 30", "-x", "@SUM(A1)", "\tz", "\rq", "ok"], dtype="string"
            ),
            "amount": [-1.5, -2.0, 3.0, 4.0, 5.0, 6.0, -7.25],
        }
    )
    safe = neutralise_formulas(frame)
    assert safe["text"].tolist() == ["'=1+1", "'+49 30", "'-x", "'@SUM(A1)", "'\tz", "'\rq", "ok"]
    assert safe["amount"].tolist() == frame["amount"].tolist()
    assert frame["text"].iloc[0] == "=1+1"  # the input is not mutated
    lines = csv_bytes(frame).decode().split("\n")
    assert lines[1] == "'=1+1,-1.5"
    assert lines[-2] == "ok,-7.25"


def test_published_csv_neutralises_a_hostile_customer_id(tmp_path):
    scores = make_scores(300, seed=1)
    first = scores.index[scores["at_risk"] & (scores["group"] == "treatment")][0]
    scores.loc[first, "customer_id"] = '=HYPERLINK("http://x")'
    publish_lists(scores, tmp_path, now=NOW)
    text = (tmp_path / f"{AS_OF}/at_risk.csv").read_text()
    assert '"\'=HYPERLINK(""http://x"")"' in text and ",=HYPERLINK(" not in text
    # the parquet list keeps the real value: only spreadsheet formats are neutralised
    listed = pd.read_parquet(tmp_path / f"{AS_OF}/at_risk.parquet")
    assert '=HYPERLINK("http://x")' in set(listed["customer_id"])


# --------------------------------------------------------------------------- lists
def test_publish_writes_the_treatment_list_control_apart_and_latest(tmp_path, lists):
    result = publish_lists(lists["a"], tmp_path, now=NOW)
    assert result.status == "published"
    latest = assert_latest_names_a_complete_list(tmp_path)
    scores = lists["a"]
    flagged = scores.loc[scores["at_risk"]]
    treatment = pd.read_csv(tmp_path / latest["path"], dtype={"customer_id": "string"})
    control = pd.read_csv(tmp_path / latest["control_path"], dtype={"customer_id": "string"})
    assert set(treatment["customer_id"]) == set(
        flagged.loc[flagged["group"] == "treatment", "customer_id"]
    )
    assert set(control["customer_id"]) == set(
        flagged.loc[flagged["group"] == "control", "customer_id"]
    )
    assert treatment["priority"].is_monotonic_increasing
    assert set(treatment["group"]) == {"treatment"}
    assert latest["as_of"] == str(AS_OF) and latest["model_version"] == "7"
    assert latest["rows"] == len(treatment) and latest["created_at"] == "2025-07-01T06:00:00Z"
    assert list(treatment.columns[:9]) == [
        "priority",
        "customer_id",
        "churn_probability",
        "risk_tier",
        "expected_value",
        "value_at_risk",
        "expected_net_benefit",
        "reasons",
        "suggested_action",
    ]


def test_same_inputs_give_byte_identical_lists(tmp_path, lists):
    publish_lists(lists["a"], tmp_path / "one", now=NOW)
    publish_lists(make_scores(300, seed=1), tmp_path / "two", now=NOW + dt.timedelta(hours=5))
    for name in ("at_risk.csv", "control.csv", "at_risk.parquet", "control.parquet"):
        one = (tmp_path / "one" / str(AS_OF) / name).read_bytes()
        assert one == (tmp_path / "two" / str(AS_OF) / name).read_bytes(), name


def test_publishing_the_same_list_again_changes_nothing(tmp_path, lists):
    publish_lists(lists["a"], tmp_path, now=NOW)
    before = (tmp_path / "LATEST.json").read_bytes()
    again = publish_lists(lists["a"], tmp_path, now=NOW + dt.timedelta(days=1))
    assert again.status == "unchanged"
    assert (tmp_path / "LATEST.json").read_bytes() == before  # created_at of the first publication


def test_a_different_list_for_a_published_date_is_refused_without_force(tmp_path, lists):
    publish_lists(lists["a"], tmp_path, now=NOW)
    before = (tmp_path / "LATEST.json").read_bytes()
    with pytest.raises(ChurnError, match="already published.*--force"):
        publish_lists(lists["b"], tmp_path, now=NOW)
    assert (tmp_path / "LATEST.json").read_bytes() == before
    assert_latest_names_a_complete_list(tmp_path)


def test_force_replaces_a_list_and_keeps_the_previous_one(tmp_path, lists):
    first = publish_lists(lists["a"], tmp_path, now=NOW).manifest
    result = publish_lists(lists["b"], tmp_path, force=True, now=NOW)
    assert result.status == "replaced"
    latest = assert_latest_names_a_complete_list(tmp_path)
    assert latest["sha256"] != first["sha256"]
    kept = tmp_path / f"{AS_OF}.superseded-{first['sha256'][:12]}"
    assert result.superseded == kept
    assert _sha((kept / "at_risk.csv").read_bytes()) == first["sha256"]
    assert_visible_folders_are_complete(tmp_path)


def test_a_new_date_keeps_earlier_lists_and_moves_latest(tmp_path, lists):
    publish_lists(lists["a"], tmp_path, now=NOW)
    publish_lists(lists["c"], tmp_path, now=NOW)
    assert assert_latest_names_a_complete_list(tmp_path)["as_of"] == str(LATER)
    assert read_manifest(tmp_path, str(AS_OF))["as_of"] == str(AS_OF)
    with pytest.raises(ChurnError, match="newer list"):
        publish_lists(make_scores(300, seed=9), tmp_path, now=NOW)


def test_read_manifest_detects_a_list_changed_by_hand(tmp_path, lists):
    publish_lists(lists["a"], tmp_path, now=NOW)
    path = tmp_path / str(AS_OF) / "at_risk.csv"
    path.write_bytes(path.read_bytes() + b"extra\n")
    with pytest.raises(ChurnError, match="do not match"):
        read_manifest(tmp_path)


# --------------------------------------------------------------------------- crash safety
SCENARIOS = {
    "first publish": (lambda root, lists: None, "a", False),
    "forced replace": (lambda root, lists: publish_lists(lists["a"], root, now=NOW), "b", True),
    "new date": (lambda root, lists: publish_lists(lists["a"], root, now=NOW), "c", False),
}


class InjectedFailure(OSError):
    """Raised by a patched write or rename."""


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("target", ["write", "rename"])
def test_a_failure_at_any_write_or_rename_leaves_latest_naming_a_complete_list(
    tmp_path, lists, monkeypatch, scenario, target
):
    prepare, name, force = SCENARIOS[scenario]
    # an exception is not a power cut: skipping fsync here only makes the test fast
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    failures = 0
    for k in range(1, 60):
        root = tmp_path / str(k)
        prepare(root, lists)
        before = (root / "LATEST.json").read_bytes() if (root / "LATEST.json").exists() else None
        calls = {"n": 0}
        original = publishing.write_bytes if target == "write" else os.replace

        def failing(*args, k=k, calls=calls, original=original):
            calls["n"] += 1
            if calls["n"] == k:
                raise InjectedFailure(f"injected failure at {target} {k}")
            return original(*args)

        with monkeypatch.context() as patch:
            if target == "write":
                patch.setattr(publishing, "write_bytes", failing)
            else:
                patch.setattr(os, "replace", failing)
            try:
                publish_lists(lists[name], root, force=force, now=NOW)
            except ChurnError as error:  # a failed write is a clear error naming the path
                assert f"injected failure at {target} {k}" in str(error)
                assert "cannot write it" in str(error)
                failures += 1
            else:
                break
        if before is None and not (root / "LATEST.json").exists():
            assert not any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()) or (
                assert_visible_folders_are_complete(root) is None
            )
        else:
            assert_latest_names_a_complete_list(root)
        assert_visible_folders_are_complete(root)
        # the next run recovers and publishes the new list
        publish_lists(lists[name], root, force=force, now=NOW)
        latest = assert_latest_names_a_complete_list(root)
        assert latest["as_of"] == str(lists[name]["as_of"].iloc[0])
        assert not any(p.name.startswith((".staging-", ".trash-")) for p in root.iterdir())
    assert failures >= 2, f"only {failures} injection points were hit"


# --------------------------------------------------------------------------- record
def test_the_record_keeps_every_scored_customer_and_one_event_per_publication(tmp_path, lists):
    """Replaces the score archive (gone): the published record is what the backtest reads."""
    publish_lists(lists["a"], tmp_path, now=NOW)
    manifest = read_manifest(tmp_path)
    assert manifest["files"][SCORED_PARQUET]["rows"] == len(lists["a"])
    pd.testing.assert_frame_equal(read_scored(tmp_path, manifest), lists["a"])
    publish_lists(lists["a"], tmp_path, now=NOW)  # unchanged: no event
    publish_lists(lists["b"], tmp_path, force=True, now=NOW)  # replaced, the first kept aside
    kept = tmp_path / f"{AS_OF}.superseded-{manifest['sha256'][:12]}"
    pd.testing.assert_frame_equal(pd.read_parquet(kept / SCORED_PARQUET), lists["a"])
    pd.testing.assert_frame_equal(read_scored(tmp_path, read_manifest(tmp_path)), lists["b"])
    assert [event["event"] for event in read_events(tmp_path)] == ["published", "replaced"]


# --------------------------------------------------------------------------- gates
def test_scores_must_be_non_empty_and_of_the_scores_schema():
    scores = make_scores(100, seed=1)
    validate_scores(scores)
    with pytest.raises(DataCheckFailed, match="column 'risk_tier' is missing"):
        validate_scores(scores.drop(columns=["risk_tier"]))
    with pytest.raises(DataCheckFailed, match="no customers"):
        validate_scores(scores.iloc[:0])
    broken = scores.copy()
    broken.loc[broken.index[0], "churn_probability"] = 1.5
    with pytest.raises(DataCheckFailed, match="outside"):
        validate_scores(broken)


def test_quarantine_gate_reads_the_ingest_report_when_present():
    params = PublishParams(max_quarantine_share=0.05)
    assert check_ingest_report(None, params).passed
    assert check_ingest_report({"quarantine_share": 0.01}, params).passed
    assert not check_ingest_report({"quarantine_share": 0.2}, params).passed
    assert not check_ingest_report({"rows_read": 100, "rows_quarantined": 6}, params).passed


def test_freshness_gate_refuses_an_old_as_of_only_when_a_limit_is_set():
    today = dt.date(2025, 8, 1)
    assert check_scores_freshness(AS_OF, today, PublishParams()).passed
    assert check_scores_freshness(AS_OF, today, PublishParams(max_age_days=40)).passed
    assert not check_scores_freshness(AS_OF, today, PublishParams(max_age_days=10)).passed


def test_drift_gate_passes_without_a_report_and_can_be_accepted():
    assert check_drift_gate(None).passed
    failed = check_drift_gate({"passed": False, "detail": "recency_days PSI 0.4"})
    assert not failed.passed and "PSI" in failed.detail
    with pytest.raises(DataCheckFailed, match="drift.*--accept-drift"):
        enforce_gates([failed])
    assert enforce_gates([failed], accept_drift=True) == [failed]
    with pytest.raises(DataCheckFailed, match="quarantine"):
        enforce_gates([Gate("quarantine", False, "20%"), failed], accept_drift=True)


def test_sql_export_errors_mask_secret_query_values_of_the_url(tmp_path):
    from churn.publish.sql import export_to_sql

    frame = pd.DataFrame({"as_of": [dt.date(2025, 1, 1)], "customer_id": ["c1"]})
    url = f"sqlite:///{tmp_path / 'missing' / 'x.db'}?password=hunter2&token=abc123"
    with pytest.raises(ChurnError) as caught:
        export_to_sql(frame, url, "at_risk")
    assert "hunter2" not in str(caught.value) and "abc123" not in str(caught.value)
