"""The `drift` stage's wiring: the champion's reference and training ranges, the scored
customers' rows counted on pandas or on Spark (engine.kind), the report written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from churn.columns import CUSTOMER_ID
from churn.config import DriftParams
from churn.drift import (
    measure_drift,
    read_role,
    reference_from_training,
    training_ranges_in_file,
)
from churn.errors import ChurnError


def run(
    stage: Any,  # churn.config.StageParams: drift, engine
    champion: Path,
    training: Path,
    snapshot: Path,
    scores: Path,
    report: Path,
) -> None:
    """The `drift` stage: PSI of every feature and of the score of the scored customers against
    the training reference, and the features outside the training range, into `report`. With
    engine.kind spark the scored rows are counted on Spark (churn.spark.drift): only the bin
    counts come to the driver, never the snapshot or the scores."""
    from churn.columns import CHURN_PROBABILITY
    from churn.files import read_input_parquet, write_json
    from churn.logs import get_logger
    from churn.model import ChurnModel

    settings = stage.drift
    log = get_logger("drift")
    model = ChurnModel.load(champion)
    # the reference is one cutoff's rows; the training ranges are read one column at a time
    reference, _ = reference_from_training(
        read_role(training, settings.reference_role),
        model.spec.numeric,
        model.spec.categorical,
        model.predict_proba,
        settings,
    )
    ranges = training_ranges_in_file(training, model.spec.numeric)
    if stage.engine.kind == "spark":
        result = _on_spark(stage.engine, reference, snapshot, scores, settings, ranges)
    else:
        rows = read_input_parquet(snapshot, "as-of snapshot")
        scored = read_input_parquet(scores, "scores", [CUSTOMER_ID, CHURN_PROBABILITY])
        # measure the population that was scored (the snapshot may hold customers scoring skipped)
        rows = rows[rows[CUSTOMER_ID].isin(scored[CUSTOMER_ID])]
        result = measure_drift(reference, rows, scored[CHURN_PROBABILITY], settings, ranges)
    write_json(result, report)
    level = log.warning if result["status"] != "ok" else log.info
    blocks = "blocks publish" if result["publish_blocked"] else "a warning, publish not blocked"
    level("drift: PSI %s (%s) — %s", result["status"], blocks, result["detail"])


def _on_spark(
    engine: Any,
    reference: Mapping[str, Any],
    snapshot: Path,
    scores: Path,
    settings: DriftParams,
    ranges: Mapping[str, Sequence[float]],
) -> dict[str, Any]:
    """Return the drift report with the scored rows counted on Spark (churn.spark.drift)."""
    from churn.spark.drift import measure_drift_on_spark
    from churn.spark.session import spark_session
    from churn.spark.sources import read_source

    for path, what in ((snapshot, "as-of snapshot"), (scores, "scores")):
        if not path.exists():
            raise ChurnError(f"{path}: not found ({what}); run `dvc repro` first")
    with spark_session(engine, "drift") as spark:
        return measure_drift_on_spark(
            reference, read_source(spark, snapshot), read_source(spark, scores), settings, ranges
        )
