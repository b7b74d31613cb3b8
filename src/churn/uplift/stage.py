"""The `uplift` stage: the gate on the ledger's matured campaigns, and today's per-customer uplift
for the score stage when the gate switched (churn.uplift.from_ledger says where the baseline's
risk comes from); `run` is `churn uplift` with its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.columns import (
    CAMPAIGN_DATE,
    CAMPAIGN_ID,
    CHURN_PROBABILITY,
    CHURNED,
    COVERED,
    CUSTOMER_ID,
    CUTOFF,
    RETAINED,
    TREATED,
    UPLIFT,
)
from churn.config import ChurnParams, ScoreParams, UpliftParams
from churn.logs import get_logger
from churn.uplift.from_ledger import (
    campaign_rows_from_ledger,
    fit_risk_model,
    read_labelled_snapshots,
    risk_features,
    risk_training_rows,
    uplift_candidates,
    with_risk,
)
from churn.uplift.gate import NOT_ENOUGH, USE_RISK_VALUE, USE_UPLIFT, split_campaigns
from churn.uplift.plan import plan_uplift

log = get_logger("uplift")

UPLIFT_COLUMNS = (CUSTOMER_ID, UPLIFT, COVERED)  # the table the score stage reads
BASELINE_RISK = (
    "the stage's own LightGBM risk model, fitted on training snapshots of control and "
    "never-listed customers whose label windows end on or before the first held-out campaign's "
    "date (churn.uplift.from_ledger); the champion is not used: its calibration saw the newest "
    "campaign's outcomes"
)


@dataclass(frozen=True)
class UpliftStageResult:
    """reports/uplift.json, and each of today's customers' uplift (empty unless the gate
    switched to the uplift policy)."""

    report: dict[str, Any]
    uplift: pd.DataFrame


def empty_uplift() -> pd.DataFrame:
    """Return the per-customer uplift table with no rows (the gate kept risk x value)."""
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series(dtype="string"),
            UPLIFT: pd.Series(dtype="float64"),
            COVERED: pd.Series(dtype="bool"),
        }
    )


def _auc(churned: np.ndarray, probability: np.ndarray) -> float | None:
    from churn.metrics import roc_auc

    if len(np.unique(churned)) < 2:
        return None
    return round(roc_auc(churned, probability), 4)


def run_uplift_stage(
    ledger_table: pd.DataFrame,
    snapshots: pd.DataFrame | Path,
    contacted: pd.DataFrame | None,
    snapshot: pd.DataFrame | Path,
    churn: ChurnParams,
    score: ScoreParams,
    params: UpliftParams,
    source: str = "uplift table",
) -> UpliftStageResult:
    """Return the gate's report on the ledger's matured campaigns and, when the uplift policy
    won, the uplift of each customer of the as-of `snapshot` (learner refitted on every matured
    campaign, as churn.uplift.plan does). `snapshots`: the training snapshots, or their Parquet
    file, of which only the rows and columns the risk model can use are read. `snapshot`: the
    as-of snapshot or its Parquet file, read only when the gate switched (today's customers are
    the population; a gate that keeps risk x value needs none of them)."""
    campaigns = campaign_rows_from_ledger(ledger_table, source)
    rows = campaigns.rows
    split = split_campaigns(rows, params.holdout_share)
    context: dict[str, Any] = {"ledger_table": campaigns.notes, "baseline_risk": BASELINE_RISK}
    if split.holdout:
        first = rows.loc[rows[CAMPAIGN_ID].isin(split.holdout), CAMPAIGN_DATE].min().date()
        if isinstance(snapshots, Path):
            snapshots = read_labelled_snapshots(
                snapshots, churn.horizon_days, first, campaigns.features, params.sample_customers
            )
        training = risk_training_rows(
            snapshots, contacted, churn.horizon_days, first, params.sample_customers
        )
        if training.empty or training[CHURNED].nunique() < 2:
            report = {
                **context,
                "policy_in_use": USE_RISK_VALUE,
                "reason": f"{NOT_ENOUGH}: no labelled training snapshot of both outcomes ends "
                f"on or before the first held-out campaign ({first}), so the risk x value "
                "baseline cannot be ranked without seeing the held-out outcomes",
                "comparison": None,
            }
            return UpliftStageResult(report, empty_uplift())
        model = fit_risk_model(training, risk_features(training, campaigns.features), params.seed)
        rows = with_risk(rows, model)
        holdout = rows[rows[CAMPAIGN_ID].isin(split.holdout) & (rows[TREATED] == 0)]
        context["risk_model"] = {
            "training_rows": len(training),
            "training_cutoffs": [
                str(pd.Timestamp(day).date()) for day in sorted(training[CUTOFF].unique())
            ],
            "labels_end_by": str(first),
            "features": len(model.features),
            # how well it ranks churn without a contact: the held-out campaigns' control groups
            "holdout_control_roc_auc": _auc(
                1 - holdout[RETAINED].to_numpy(), holdout[CHURN_PROBABILITY].to_numpy()
            ),
        }
    else:
        # nothing held out (no matured campaign): the gate says so; no risk is needed
        rows = rows.assign(**{CHURN_PROBABILITY: 0.0})
    covered = set(ledger_table[CUSTOMER_ID].astype("string").dropna())

    def candidates() -> pd.DataFrame:
        today = pd.read_parquet(snapshot) if isinstance(snapshot, Path) else snapshot
        return uplift_candidates(today, covered, score)

    gate_report, chosen = plan_uplift(
        rows, params, score.contact_cost, candidates, source=f"{source} (as campaign rows)"
    )
    # score chooses the contacts itself (after suppression and campaign capacity)
    gate_report.pop("contacts", None)
    report = {**context, **gate_report}
    if gate_report["policy_in_use"] != USE_UPLIFT or chosen is None:
        return UpliftStageResult(report, empty_uplift())
    uplift = chosen[list(UPLIFT_COLUMNS)].reset_index(drop=True)
    report["candidates"] = {
        "customers": len(uplift),
        "covered": int(uplift[COVERED].sum()),
        "positive_uplift": int((uplift[UPLIFT] > 0).sum()),
    }
    return UpliftStageResult(report, uplift)


def run(
    settings: Any,  # churn.config.StageParams: churn, score, uplift
    report: Path,
    *,
    ledger_table: Path | None,
    snapshots: Path | None,
    contacted: Path | None,
    snapshot: Path | None,
    out: Path | None,
    campaigns: Path | None,
    candidates: Path | None,
    contacts: Path | None,
    max_contacts: int | None,
) -> None:
    """`churn uplift`: the stage's gate on the ledger's uplift table (`ledger_table`: today's
    uplift to `out`), or the gate on campaign rows (`campaigns`: with `candidates`, the contacts
    chosen by uplift to `contacts`); the gate's report to `report`."""
    from churn.errors import ChurnError
    from churn.files import (
        existing_input,
        parquet_bytes,
        read_input_parquet,
        write_bytes,
        write_json,
        write_parquet,
    )

    if (ledger_table is None) == (campaigns is None):
        raise ChurnError("uplift: pass exactly one of --ledger-table (the stage) or --campaigns")
    if ledger_table is not None:
        missing = [
            f"--{name}"
            for name, value in (("snapshots", snapshots), ("snapshot", snapshot), ("out", out))
            if value is None
        ]
        if missing:
            raise ChurnError(f"uplift: --ledger-table also needs {', '.join(missing)}")
        result = run_uplift_stage(
            read_input_parquet(ledger_table, "the ledger's uplift table"),
            existing_input(snapshots, "training snapshots"),
            read_input_parquet(contacted, "campaign contacts") if contacted is not None else None,
            existing_input(snapshot, "as-of snapshot"),  # read only when the gate switched
            settings.churn,
            settings.score,
            settings.uplift,
            str(ledger_table),
        )
        write_json(result.report, report)
        write_bytes(out, parquet_bytes(result.uplift))
        log.info("uplift gate: %s — %s", result.report["policy_in_use"], result.report["reason"])
        return

    def read(path: Path, what: str) -> pd.DataFrame:
        if not path.is_file():
            raise ChurnError(f"{path}: not found ({what})")
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"customer_id": str, "campaign_id": str})

    if contacts is not None and candidates is None:
        raise ChurnError("uplift: --contacts needs --candidates (whom to choose from)")
    rows = read(campaigns, "campaign rows")
    pool = read(candidates, "uplift candidates") if candidates is not None else None
    plan, chosen = plan_uplift(
        rows, settings.uplift, settings.score.contact_cost, pool, max_contacts, str(campaigns)
    )
    write_json(plan, report)
    log.info("uplift gate: %s — %s", plan["policy_in_use"], plan["reason"])
    if chosen is not None and contacts is not None:
        write_parquet(chosen, contacts)
        log.info(
            "uplift contacts: %s of %s candidates -> %s",
            int(chosen["contact"].sum()),
            len(chosen),
            contacts,
        )
    elif candidates is not None:
        log.info("no uplift contact list: the gate keeps risk x value")
