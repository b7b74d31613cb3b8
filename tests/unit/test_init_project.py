"""`churn init` project edits: params.yaml keys set in place (comments kept), the demo stage and
the deps on its outputs removed from dvc.yaml, and the demo state listed without the user's files."""

from __future__ import annotations

import pytest
import yaml

from churn.errors import ChurnError
from churn.init.project import demo_state, edit_params, edit_pipeline, render_scalar, set_value
from support.paths import ROOT

PARAMS = """\
# top comment
ingest:                      # the section
  source: data/raw/transactions.csv.gz   # a file or folder
  csv:
    delimiter: ","           # null = detect
  columns:                   # canonical: source
    customer_id: customer
    transaction_id: order_id # optional
  customers:                 # optional; null when you have none
    source: data/raw/customers.csv
    columns: {customer_id: customer}
  nps: null

features:
  windows: [30, 90]
"""


def test_a_value_is_replaced_keeping_its_comment_at_its_column():
    new = set_value(PARAMS, ("ingest", "source"), "exports/shop.csv")
    assert "  source: exports/shop.csv               # a file or folder\n" in new
    changed = [(a, b) for a, b in zip(PARAMS.splitlines(), new.splitlines(), strict=True) if a != b]
    assert len(changed) == 1


def test_a_block_becomes_null_and_keeps_the_key_comment():
    new = set_value(PARAMS, ("ingest", "customers"), None)
    assert "  customers: null            # optional; null when you have none\n" in new
    assert "customers.csv" not in new and "nps: null" in new


def test_values_that_plain_yaml_would_misread_are_quoted():
    assert render_scalar("%d/%m/%Y") == '"%d/%m/%Y"'
    assert render_scalar(";") == '";"'
    assert render_scalar("\t") == '"\\t"'
    assert render_scalar("null") == '"null"'
    assert render_scalar("whitespace") == "whitespace"
    assert yaml.safe_load("k: " + render_scalar("a: b #c")) == {"k": "a: b #c"}


def test_edit_params_changes_exactly_the_given_keys_and_adds_missing_ones():
    changes = {
        ("ingest", "csv", "delimiter"): ";",
        ("ingest", "columns", "transaction_id"): None,
        ("ingest", "timestamp_format"): "%d.%m.%Y",
        ("ingest", "customers"): {"source": "c.csv", "columns": {"customer_id": "Kunde"}},
    }
    new = edit_params(PARAMS, changes, "params.yaml")
    data = yaml.safe_load(new)
    assert data["ingest"]["csv"]["delimiter"] == ";"
    assert data["ingest"]["columns"] == {"customer_id": "customer", "transaction_id": None}
    assert data["ingest"]["timestamp_format"] == "%d.%m.%Y"
    assert data["ingest"]["customers"] == {"source": "c.csv", "columns": {"customer_id": "Kunde"}}
    assert data["features"] == {"windows": [30, 90]}
    assert new.startswith("# top comment\n") and "transaction_id: null     # optional" in new


def test_edit_params_refuses_a_layout_it_cannot_edit_safely():
    with pytest.raises(ChurnError, match="set these keys by hand: ingest.csv.delimiter"):
        edit_params("ingest: {csv: {delimiter: ','}}\n", {("ingest", "csv", "delimiter"): ";"}, "p")


def test_the_project_dvc_yaml_loses_the_demo_stage_and_the_deps_on_its_outputs():
    text = (ROOT / "dvc.yaml").read_text()
    new, generated = edit_pipeline(text, "dvc.yaml")
    stages = yaml.safe_load(new)["stages"]
    assert "generate" not in stages and list(stages)[:3] == ["check", "sources", "ingest"]
    assert generated == ["data/raw/transactions.csv.gz", "data/raw/customers.csv",
                         "data/raw/nps.csv", "data/raw/truth.parquet",
                         "data/raw/campaign_lists.csv", "data/raw/contacts.csv",
                         "data/raw/campaign_truth.parquet"]  # fmt: skip
    old = yaml.safe_load(text)["stages"]
    assert stages["sources"]["deps"] == [
        d for d in old["sources"]["deps"] if not d.startswith("data/raw/")
    ]
    assert not any(d in generated for stage in stages.values() for d in stage.get("deps", []))
    assert stages["ingest"] == old["ingest"]  # ingest depends on the fingerprints, not the files
    assert "runs after generate" not in new  # the comment about the removed deps goes with them
    assert new.startswith(text.split("  generate:")[0])  # comments and layout before it kept
    again, nothing = edit_pipeline(new, "dvc.yaml")
    assert again == new and nothing == []


def test_the_deps_on_demo_outputs_go_even_when_the_stage_is_gone():
    text = """stages:
  sources:
    cmd: churn sources --out s.json
    deps:
      - src/churn/ingest
      # the demo's raw files
      - data/raw/transactions.csv.gz
      - data/raw/nps.csv
    always_changed: true
"""
    new, generated = edit_pipeline(text, "dvc.yaml")
    assert generated == []
    assert new == text.replace(
        "      # the demo's raw files\n      - data/raw/transactions.csv.gz\n"
        "      - data/raw/nps.csv\n",
        "",
    )


def test_demo_state_never_lists_the_users_source_even_under_data(tmp_path):
    for name in ("data/raw/transactions.csv.gz", "data/raw/truth.parquet",
                 "data/interim/transactions.parquet", "data/interim/mine.csv", "mlflow.db"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    keep = [tmp_path / "data/raw/transactions.csv.gz", tmp_path / "data/interim/mine.csv"]
    listed = {
        p.relative_to(tmp_path).as_posix(): size for p, size in demo_state(tmp_path, [], keep)
    }
    assert listed == {"data/interim/transactions.parquet": 1, "mlflow.db": 1,
                      "data/raw/truth.parquet": 1}  # fmt: skip
