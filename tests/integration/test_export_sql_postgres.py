"""The optional SQL export against the real local PostgreSQL: one transaction per as_of date."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from churn import tracking
from churn.cli import app
from churn.errors import ChurnError
from churn.publish.record import select_lists
from churn.publish.sql import export_to_sql
from support.dvc_project import init_dvc_project
from support.score_data import AS_OF, make_scores, train_model
from support.services import require

pytestmark = pytest.mark.postgres

URL = os.environ.get("CHURN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LATER = AS_OF + dt.timedelta(days=30)


@pytest.fixture
def database():
    """Return (engine, a unique table name); PostgreSQL must be reachable (see `require`)."""
    require("postgres")
    engine = sa.create_engine(URL, connect_args={"connect_timeout": 3})
    table = f"churn_at_risk_test_{uuid.uuid4().hex[:12]}"
    yield engine, table
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
    engine.dispose()


def _rows(engine, table: str) -> pd.DataFrame:
    with engine.connect() as connection:
        return pd.read_sql(sa.text(f'SELECT * FROM "{table}" ORDER BY as_of, priority'), connection)


def _treatment(seed: int, as_of: dt.date = AS_OF) -> pd.DataFrame:
    return select_lists(make_scores(300, seed=seed, as_of=as_of))[0]


def test_export_replaces_that_dates_rows_on_rerun_and_keeps_other_dates(database):
    engine, table = database
    first, later, changed = _treatment(1), _treatment(3, LATER), _treatment(2)
    assert export_to_sql(first, URL, table) == len(first)
    assert export_to_sql(first, URL, table) == len(first)
    stored = _rows(engine, table)
    assert len(stored) == len(first)
    assert stored["customer_id"].tolist() == first["customer_id"].tolist()
    assert stored["expected_net_benefit"].tolist() == first["expected_net_benefit"].tolist()
    export_to_sql(later, URL, table)
    export_to_sql(changed, URL, table)
    stored = _rows(engine, table)
    by_date = stored.groupby("as_of")["customer_id"].apply(list).to_dict()
    assert by_date == {
        AS_OF: changed["customer_id"].tolist(),
        LATER: later["customer_id"].tolist(),
    }


def test_a_failed_export_rolls_back_and_keeps_the_previous_rows(database):
    engine, table = database
    first = _treatment(1)
    export_to_sql(first, URL, table)
    broken = _treatment(2)
    broken["churn_probability"] = broken["churn_probability"].astype(object)
    broken.loc[broken.index[-1], "churn_probability"] = "not a number"
    with pytest.raises(ChurnError, match="rolled back"):
        export_to_sql(broken, URL, table)
    assert _rows(engine, table)["customer_id"].tolist() == first["customer_id"].tolist()


def test_publish_exports_with_the_url_from_the_environment_and_never_logs_it(
    database, tmp_path, monkeypatch
):
    engine, table = database
    sql = {"enabled": True, "url_env": "CHURN_TEST_EXPORT_URL", "table": table}
    init_dvc_project(tmp_path, publish={"sql": sql})
    # the scores and the model that scored them (champion version 7) where dvc.yaml puts them
    scores_path = tmp_path / "data/scores/scores.parquet"
    scores_path.parent.mkdir(parents=True)
    make_scores(300, seed=1).to_parquet(scores_path)
    train_model(version="7").save(tmp_path / "models/champion")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        tracking,
        "project_registry",
        lambda names: type("R", (), {"alias_version": lambda self, a: "7"})(),
    )
    secret_url = URL.replace("postgres@", "postgres:s3cret-pw@", 1)
    monkeypatch.setenv("CHURN_TEST_EXPORT_URL", secret_url)
    args = ["publish", "--exports", str(tmp_path / "exports")]
    result = CliRunner().invoke(app, [*args, "--params", str(tmp_path / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output and "s3cret" not in result.stderr
    expected = select_lists(make_scores(300, seed=1))[0]
    assert _rows(engine, table)["customer_id"].tolist() == expected["customer_id"].tolist()
