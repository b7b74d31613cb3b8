"""The `features` stage's wiring: the training and as-of snapshots written on DuckDB
(churn.features.build, streamed in batches) or on Spark (churn.spark.features, with the training
sample drawn there), and the features report."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from churn.files import write_json
from churn.logs import get_logger

log = get_logger("features")


def run(
    settings: Any,  # churn.config.StageParams: churn, features, engine, train, uplift, drift
    transactions: Path,
    customers: Path,
    nps: Path,
    out: Path,
    report: Path,
) -> None:
    """Write out/train.parquet, out/score.parquet and the features report."""
    train_path, score_path = out / "train.parquet", out / "score.parquet"
    if settings.engine.kind == "spark":
        from churn.spark.features import write_snapshots as write_on_spark
        from churn.spark.sample import SampleParams
        from churn.spark.session import spark_session

        # train.parquet holds the rows of the samples its readers draw (churn.spark.sample)
        sample = SampleParams(
            settings.train.sample_customers, settings.train.sample_held_out_customers,
            settings.uplift.sample_customers, settings.drift.reference_role,
        )  # fmt: skip
        with (
            spark_session(settings.engine, "features") as spark,
            # Spark writes part files here; the driver streams them into the two DVC outputs
            tempfile.TemporaryDirectory(prefix="churn-spark-features-") as work_dir,
        ):
            summary = write_on_spark(
                spark, transactions, customers, nps, settings.churn, settings.features,
                train_path, score_path, Path(work_dir), sample,
            )  # fmt: skip
    else:
        from churn.features.build import write_snapshots

        # streamed to Parquet in batches: no snapshot is held in memory whole
        summary = write_snapshots(
            transactions, customers, nps, settings.churn, settings.features, settings.engine,
            train_path, score_path,
        )  # fmt: skip
    write_json(summary, report)
    log.info("wrote %s, %s and %s", train_path, score_path, report)
