"""Scoring on Spark: the churn model's calibrated probability for every customer of a snapshot
held in Spark, computed on the executors by the same pandas code as the score stage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID

if TYPE_CHECKING:
    from churn.model import ChurnModel

PROBABILITY_SCHEMA = f"{CUSTOMER_ID} STRING, {CHURN_PROBABILITY} DOUBLE"


def predict_on_spark(snapshot: Any, model: ChurnModel) -> Any:
    """Return a Spark DataFrame (customer_id, churn_probability) for every row of `snapshot`.

    The model (LightGBM booster as its text, calibrator, feature spec) travels to the executors
    inside the function Spark serialises for mapInPandas, on classic Spark and Spark Connect
    alike; each batch of rows is scored by ChurnModel.predict_proba, the score stage's own code,
    so both engines give the same probabilities. Nothing is collected to the driver.
    """
    model.check_features(pd.DataFrame(columns=snapshot.columns), "Spark snapshot")
    columns = [CUSTOMER_ID, *model.spec.names]

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for rows in batches:
            yield pd.DataFrame(
                {
                    CUSTOMER_ID: rows[CUSTOMER_ID].astype("string"),
                    CHURN_PROBABILITY: model.predict_proba(rows),
                }
            )

    return snapshot.select(*columns).mapInPandas(predict, PROBABILITY_SCHEMA)
