"""The `uplift` stage's inputs: the ledger's uplift table as campaign rows, the risk model that
ranks the risk x value baseline on them, and today's candidates.

Imported past lists carry no churn probability, and the champion cannot honestly supply one: its
production refit is calibrated on the newest labelled cutoff, whose label window is the newest
matured campaign's, i.e. a held-out one, so the gate would judge risk x value with a model that
saw the outcomes it is judged on. The stage therefore fits its own risk model (LightGBM on the
champion's feature columns) on the training snapshots of control and never-listed customers
(rows of treated customers whose label window overlaps their campaign are left out, as `train`
does) whose label windows end on or before the first held-out campaign's date, and scores every
campaign row's features at its list date with it. It ranks the baseline only; it is never
published.

Covered population: a customer is covered when a matured past list held them (either group); the
learner saw no one else, so the uplift policy chooses among them (plus uplift.exploration_share).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.columns import (
    ASSIGNED_ACTION,
    CAMPAIGN_DATE,
    CAMPAIGN_ID,
    CHURN_PROBABILITY,
    CHURNED,
    CONTROL_SHARE,
    COVERED,
    CUSTOMER_ID,
    CUTOFF,
    EXPECTED_VALUE,
    GROUP,
    LABEL_END,
    RETAINED,
    RISK_TIER,
    ROLE,
    SUGGESTED_ACTION,
    TREATED,
)
from churn.config import ScoreParams
from churn.errors import ChurnError
from churn.files import open_parquet_file
from churn.uplift.data import feature_frame

# the ledger's uplift table (churn.ledger docstring): these columns are not features
LIST_ID, LIST_DATE, HORIZON_DAYS, VALUE, HAS_FEATURES = (
    "list_id",
    "list_date",
    "horizon_days",
    "value",
    "has_features",
)
LEDGER_REQUIRED = (
    LIST_ID,
    LIST_DATE,
    HORIZON_DAYS,
    CUSTOMER_ID,
    TREATED,
    RETAINED,
    VALUE,
    HAS_FEATURES,
)
LEDGER_NOT_FEATURES = frozenset(
    LEDGER_REQUIRED
    + ("origin", GROUP, SUGGESTED_ACTION, RISK_TIER, CHURNED, "contacted", CUTOFF, ROLE)
)
SNAPSHOT_KEYS = frozenset((CUSTOMER_ID, CUTOFF, ROLE, CHURNED))


@dataclass(frozen=True)
class LedgerCampaigns:
    """Campaign rows (churn.uplift.data, without churn_probability), their feature columns, and
    what was left out of the ledger's table."""

    rows: pd.DataFrame
    features: list[str]
    notes: dict[str, Any] = field(default_factory=dict)


def campaign_rows_from_ledger(table: pd.DataFrame, source: str) -> LedgerCampaigns:
    """Return the ledger's uplift table as campaign rows.

    Each list's control share is its realised share of control customers (the random split by id
    hash; the table does not keep the nominal share), so P(treated) per list is what the split
    gave. Customers without features at the list date (not eligible then) are left out, and so
    are lists that lack one of the two groups (nothing to compare); both are counted in notes."""
    missing = [column for column in LEDGER_REQUIRED if column not in table.columns]
    if missing:
        raise ChurnError(
            f"{source}: column(s) {missing} missing; this is not the ledger stage's uplift table "
            "(columns: churn.ledger docstring) — rerun `dvc repro ledger`"
        )
    features = [column for column in table.columns if column not in LEDGER_NOT_FEATURES]
    if not features and len(table):
        raise ChurnError(f"{source}: no feature columns; rerun `dvc repro ledger` with features")
    treated = pd.to_numeric(table[TREATED], errors="coerce")
    if len(table) and not treated.isin([0, 1]).all():
        raise ChurnError(f"{source}: column '{TREATED}' must be 0 or 1; rerun `dvc repro ledger`")
    lists = table[LIST_ID].astype("string")
    control_share = 1.0 - treated.groupby(lists.to_numpy()).transform("mean")
    one_arm = (control_share <= 0) | (control_share >= 1)
    with_features = table[HAS_FEATURES].fillna(False).astype(bool)
    keep = (with_features & ~one_arm).to_numpy()
    list_date = pd.to_datetime(table[LIST_DATE]).dt.normalize()
    horizon = pd.to_timedelta(pd.to_numeric(table[HORIZON_DAYS]).astype("int64"), unit="D")
    rows = pd.DataFrame(
        {
            CUSTOMER_ID: table[CUSTOMER_ID].astype("string"),
            CAMPAIGN_ID: lists,
            CAMPAIGN_DATE: list_date,
            LABEL_END: list_date + horizon,
            TREATED: treated.astype("int8"),
            CONTROL_SHARE: control_share.astype("float64"),
            RETAINED: pd.to_numeric(table[RETAINED]).astype("int8"),
            EXPECTED_VALUE: pd.to_numeric(table[VALUE]).astype("float64"),
            ASSIGNED_ACTION: table[SUGGESTED_ACTION].astype("string")
            if SUGGESTED_ACTION in table.columns
            else pd.NA,
        }
    )
    rows = pd.concat([rows, table[features]], axis=1).loc[keep].reset_index(drop=True)
    notes = {
        "table_rows": len(table),
        "lists": int(lists.nunique()),
        "rows_without_features": int((~with_features).sum()),
        "lists_without_both_groups": sorted(lists[one_arm.to_numpy()].dropna().unique().tolist()),
        "rows_used": len(rows),
        "control_share": "each list's realised share of control customers",
    }
    return LedgerCampaigns(rows, features, notes)


def read_labelled_snapshots(
    path: Path,
    horizon_days: int,
    labels_end_by: dt.date,
    campaign_features: list[str],
    max_customers: int | None,
) -> pd.DataFrame:
    """Return, from the training snapshots file, only what the risk model can use: rows whose
    label window ends on or before `labels_end_by`, of the customers uplift.sample_customers
    keeps, with the key columns and the features the campaign rows also hold, in file order.

    The sample is chosen on the distinct ids alone (DuckDB, churn.training_rows.select_distinct), then
    the rows are read one row group and column at a time (churn.training_rows.read_snapshot_rows), so
    memory follows the sample, not the file (risk_training_rows gives the same rows from the
    whole table, and the frame equals the filtered pq.read_table of the same rows and columns).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from churn.cutoffs import UPLIFT_CAP, check_training_sample, labelled_where
    from churn.training_rows import (
        connect_snapshot_ids,
        read_snapshot_rows,
        select_distinct,
        value_set,
    )

    schema = open_parquet_file(path).schema_arrow
    names = schema.names
    missing = [name for name in (CUSTOMER_ID, CUTOFF, CHURNED) if name not in names]
    if missing:
        raise ChurnError(
            f"{path}: column(s) {missing} missing; these are not the features stage's training "
            "snapshots — rerun `dvc repro features`"
        )
    check_training_sample(path, {UPLIFT_CAP: max_customers})
    columns = [n for n in names if n in SNAPSHOT_KEYS or n in set(campaign_features)]
    last_cutoff = labels_end_by - dt.timedelta(days=int(horizon_days))
    chosen = None
    if max_customers is not None:
        con = connect_snapshot_ids()
        try:
            ids = select_distinct(con, path, CUSTOMER_ID, labelled_where(last_cutoff))
        finally:
            con.close()
        chosen = _sampled(ids[CUSTOMER_ID], max_customers)
        del ids  # every labelled customer at scale: gone before the rows are read
    last = pa.scalar(last_cutoff, type=pa.date32()).cast(schema.field(CUTOFF).type)
    members = None if chosen is None else value_set(chosen.tolist(), schema.field(CUSTOMER_ID).type)

    def keep(keys: pa.Table) -> pa.ChunkedArray:
        labelled = pc.less_equal(keys.column(CUTOFF), last)
        if members is None:
            return labelled
        return pc.and_(labelled, pc.is_in(keys.column(CUSTOMER_ID), members))

    key_columns = [CUTOFF] if members is None else [CUTOFF, CUSTOMER_ID]
    return read_snapshot_rows(path, key_columns, keep, columns)


def _sampled(ids: pd.Series, max_customers: int | None) -> pd.Series | None:
    """Return the customers uplift.sample_customers keeps among `ids` (train.sample_customers'
    stable id hash), or None when all are kept."""
    from churn.training_rows import sampled_ids

    if max_customers is None or ids.empty:
        return None
    return sampled_ids(ids, max_customers)


def risk_training_rows(
    snapshots: pd.DataFrame,
    contacted: pd.DataFrame | None,
    horizon_days: int,
    labels_end_by: dt.date,
    max_customers: int | None = None,
) -> pd.DataFrame:
    """Return the training snapshots whose label window ends on or before `labels_end_by`, of
    the customers uplift.sample_customers keeps among them (all when None), without treated
    customers' rows whose label window overlaps their campaign (train's rule)."""
    from churn.cutoffs import labelled_by
    from churn.training_rows import campaign_contacted_rows

    labelled = snapshots.loc[labelled_by(snapshots[CUTOFF], horizon_days, labels_end_by).to_numpy()]
    chosen = _sampled(labelled[CUSTOMER_ID].astype("string"), max_customers)
    if chosen is not None:
        labelled = labelled.loc[labelled[CUSTOMER_ID].astype("string").isin(chosen).to_numpy()]
    if contacted is None or labelled.empty:
        return labelled.reset_index(drop=True)
    flags = campaign_contacted_rows(labelled, contacted, horizon_days)
    return labelled.loc[~flags].reset_index(drop=True)


@dataclass
class RiskModel:
    """The baseline's risk model: P(churn in the horizon without a contact) from the features."""

    features: list[str]
    categories: dict[str, list[str]]
    booster: lgb.Booster = field(repr=False)

    def predict(self, frame: pd.DataFrame, source: str = "campaign rows") -> np.ndarray:
        """Return each row's churn probability."""
        encoded, _ = feature_frame(frame, self.features, self.categories, source)
        return np.clip(self.booster.predict(encoded), 0.0, 1.0)


def fit_risk_model(rows: pd.DataFrame, features: list[str], seed: int) -> RiskModel:
    """Return a LightGBM churn model fitted on snapshot rows (two threads, fixed seed)."""
    labels = pd.to_numeric(rows[CHURNED], errors="coerce")
    if labels.isna().any() or labels.nunique() < 2:
        raise ChurnError(
            "uplift risk model: the training snapshots before the held-out campaigns need both "
            f"churned and retained customers (got {labels.value_counts(dropna=False).to_dict()})"
        )
    encoded, categories = feature_frame(rows, features, source="training snapshots")
    settings = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 100,
        "feature_fraction": 0.8,
        "lambda_l2": 1.0,
        # fixed: with deterministic and column-wise histograms the trees are the same for any
        # thread count (benchmarks/results/model_stages_10M.md); 2 uses both cores of the machine
        "num_threads": 2,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "verbose": -1,
    }
    data = lgb.Dataset(encoded, label=labels.to_numpy(dtype="float64"), free_raw_data=True)
    return RiskModel(list(features), categories, lgb.train(settings, data, 300))


def risk_features(snapshots: pd.DataFrame, campaign_features: list[str]) -> list[str]:
    """Return the risk model's features: the snapshot features the campaign rows also hold."""
    names = [c for c in snapshots.columns if c not in SNAPSHOT_KEYS and c in campaign_features]
    if not names:
        raise ChurnError(
            "uplift: the training snapshots and the ledger's uplift table share no feature "
            "column; rerun `dvc repro features ledger`"
        )
    return names


def uplift_candidates(
    snapshot: pd.DataFrame, covered_ids: set[str], params: ScoreParams
) -> pd.DataFrame:
    """Return today's customers with their features, expected value (the score stage's capped
    estimate) and whether a matured past list covered them."""
    from churn.score.targeting import cap_expected_value, estimate_expected_value

    value, _ = cap_expected_value(
        estimate_expected_value(snapshot, params), params.value_cap_quantile
    )
    ids = snapshot[CUSTOMER_ID].astype("string")
    candidates = snapshot.drop(columns=[c for c in (CUTOFF, ROLE, CHURNED) if c in snapshot])
    return candidates.assign(
        **{
            CUSTOMER_ID: ids,
            EXPECTED_VALUE: value,
            COVERED: ids.isin(covered_ids).to_numpy(dtype=bool),
        }
    )


def with_risk(rows: pd.DataFrame, model: RiskModel) -> pd.DataFrame:
    """Return the campaign rows with the risk model's churn probability."""
    return rows.assign(**{CHURN_PROBABILITY: model.predict(rows)})
