"""The `score` stage's wiring: the save rates (measured by the ledger, or assumed), the targeting
policy (risk x value, or uplift when the gate switched), every customer of the as-of snapshot
scored on pandas or Spark (engine.kind), the scores table, the profit curve and the report."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from churn.columns import CUSTOMER_ID
from churn.errors import ChurnError
from churn.files import (
    parquet_bytes,
    read_input_parquet,
    read_json,
    write_bytes,
    write_csv,
    write_json,
)
from churn.logs import get_logger
from churn.model import ChurnModel
from churn.score import build_profit_curve, build_scores, summarise_scores
from churn.score.suppression import check_suppression, read_suppression
from churn.score.targeting import UpliftTargeting, choose_save_rates

log = get_logger("score")


def run(
    stage: Any,  # churn.config.StageParams: score, uplift, engine
    snapshot: Path,
    model: Path,
    suppression: Path,
    out: Path,
    report: Path,
    profit_curve: Path,
    ledger: Path | None,
    uplift_report: Path | None,
    uplift: Path | None,
) -> None:
    """Score every customer of the as-of snapshot; write the scores, profit curve and report."""
    settings = stage.score
    champion = ChurnModel.load(model)
    suppressed = read_suppression(suppression)
    save_rates = choose_save_rates(read_json(ledger, "rerun `churn ledger`"), settings)
    for tier, source in save_rates.sources.items():
        log.info(
            "save rate %s: %.4f (%s%s)",
            tier,
            save_rates.rates[tier],
            source["source"],
            f", {source['reason']}"
            if source["source"] == "assumed"
            else f" by {len(source['campaigns'])} campaign(s), {source['status']}",
        )
    gate = read_json(uplift_report, "rerun `churn uplift`")
    targeting = None
    if gate is not None and gate.get("policy_in_use") == "uplift":
        if uplift is None:
            raise ChurnError(
                f"score: {uplift_report} says the uplift policy is in use; pass --uplift "
                "(data/uplift/uplift.parquet)"
            )
        if not uplift.is_file():
            raise ChurnError(f"{uplift}: not found (per-customer uplift); run `dvc repro` first")
        targeting = UpliftTargeting(
            # on Spark the table is read by Spark (_on_spark), never whole on the driver
            None
            if stage.engine.kind == "spark"
            else read_input_parquet(uplift, "per-customer uplift"),
            stage.uplift.exploration_share,
            stage.uplift.seed,
            str(gate.get("reason")),
        )
    log.info(
        "targeting policy: %s",
        "uplift (the gate switched)"
        if targeting
        else "risk x value (the uplift gate did not "
        "switch" + (f": {gate.get('reason')})" if gate else ")"),
    )
    if stage.engine.kind == "spark":
        as_of, metrics, curve, (matched, warning) = _on_spark(
            snapshot, champion, settings, suppressed, stage.engine, out, save_rates, targeting,
            uplift, str(suppression),
        )  # fmt: skip
    else:
        scores = build_scores(
            read_input_parquet(snapshot, "as-of snapshot"),
            champion,
            settings,
            suppressed,
            save_rates,
            targeting,
        )
        matched, warning = check_suppression(suppressed, scores[CUSTOMER_ID], str(suppression))
        write_bytes(out, parquet_bytes(scores))
        curve = build_profit_curve(scores, settings)
        metrics = summarise_scores(scores, len(suppressed))
        as_of = str(scores["as_of"].iloc[0])
    if warning:
        log.warning("%s", warning)
    write_csv(curve, profit_curve)
    report_data = {"as_of": as_of, "model_version": champion.version, **metrics}
    write_json({**report_data, "suppression": {**matched, "warned": warning is not None}}, report)
    log.info(
        "scored %d customers as of %s with model %s: %d flagged (%d control), %d suppressed",
        metrics["customers"],
        as_of,
        champion.version,
        metrics["flagged"],
        metrics["flagged_control"],
        metrics["suppressed"],
    )


def _on_spark(  # noqa: ANN202
    snapshot: Path, champion, settings, suppressed, engine, out: Path, save_rates, targeting=None,  # noqa: ANN001
    uplift: Path | None = None, source: str = "suppression list",
):  # fmt: skip
    """Score every customer on Spark and write `out`; return (the as-of date, the report's
    metrics, the profit curve, the suppression counts and warning), each a Spark aggregate of
    the scores (churn.spark.score_reports): the scores file is not read back. With `targeting`
    (the uplift policy) Spark reads `uplift`."""
    from churn.spark.score import score_on_spark, write_scores
    from churn.spark.score_reports import (
        check_suppression_on_spark,
        profit_curve_on_spark,
        summarise_on_spark,
    )
    from churn.spark.session import spark_session
    from churn.spark.sources import read_source

    if not snapshot.is_file():
        raise ChurnError(f"{snapshot}: not found (as-of snapshot); run `dvc repro` first")
    with spark_session(engine, "score") as spark:
        if targeting is not None:
            targeting = replace(targeting, uplift=read_source(spark, uplift))
        result = score_on_spark(
            read_source(spark, snapshot), champion, settings, suppressed, save_rates, targeting
        )
        with tempfile.TemporaryDirectory(prefix="churn-spark-score-") as work_dir:
            write_scores(result, out, Path(work_dir))
        log.info("scored %d customers on Spark (%d flagged)", result.customers, result.flagged)
        suppression = check_suppression_on_spark(suppressed, result, source)
        curve = profit_curve_on_spark(result, settings)
        metrics = summarise_on_spark(result, len(suppressed))
    return str(result.as_of), metrics, curve, suppression
