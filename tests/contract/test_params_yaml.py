"""params.yaml: the project's file is valid and reads the generator's output."""

from __future__ import annotations

from churn.config import load_params


def test_project_params_yaml_is_valid(project_root):
    params = load_params(project_root / "params.yaml")
    assert params.generate.customers > 0


def test_default_params_read_the_generator_output(project_root):
    from churn.config import load_params

    ingest = load_params(project_root / "params.yaml").ingest
    assert ingest.source == "data/raw/transactions.csv.gz"
    assert ingest.columns.transaction_id == "order_id"
    assert ingest.timezone == "Europe/Berlin"
