"""The ledger stage's reads of the transactions on Spark: only what is proportional to the lists
comes to the driver (the listed customers' features and outcome-window purchases, the newest
date, the transaction ids a contact log's ids can match), never the transactions table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from churn.columns import AMOUNT, CUSTOMER_ID, CUTOFF, DATE
from churn.features.build import normalize_snapshot
from churn.ledger import outcome_windows
from churn.ledger.stage import (
    LedgerInputs,
    _listed_ids,
    list_date_cutoff,
    matured_list_dates,
    spilled_dates,
)
from churn.spark.features import feature_frame, open_inputs, release, to_pandas
from churn.spark.ids import ids_matching
from churn.spark.sources import read_source


@dataclass
class SparkReads:
    """churn.ledger.stage.LocalReads on a Spark session: the same values, aggregated on Spark
    from the transactions (and, for the features, customers and NPS) tables."""

    spark: Any
    settings: Any
    inputs: LedgerInputs
    _transactions: Any = field(default=None, init=False, repr=False)

    @property
    def transactions(self) -> Any:
        """The transactions table as a Spark DataFrame (read once)."""
        if self._transactions is None:
            self._transactions = read_source(self.spark, self.inputs.transactions)
        return self._transactions

    def newest_date(self) -> dt.date | None:
        """Return the newest transaction date (None when there are no transactions)."""
        from pyspark.sql import functions as F

        newest = self.transactions.agg(F.max(DATE)).collect()[0][0]
        return newest.date() if isinstance(newest, dt.datetime) else newest

    def list_date_snapshots(self, lists: list[Any], newest: dt.date) -> pd.DataFrame | None:
        """Return the features at every matured list's date of that date's listed customers:
        the feature query of every customer at the date (the BG/NBD fit takes them all, as on
        DuckDB), semi-joined with the listed ids before any row leaves Spark."""
        from pyspark.sql import functions as F

        inputs, settings = self.inputs, self.settings
        if inputs.customers is None or inputs.nps is None:
            return None
        by_date = matured_list_dates(lists, newest)
        if not by_date:
            return None
        spark = self.spark
        open_inputs(
            spark,
            self.transactions,
            read_source(spark, inputs.customers),
            read_source(spark, inputs.nps),
        )

        def compute(day: dt.date) -> pd.DataFrame:
            ids = pa.table({CUSTOMER_ID: _listed_ids(by_date[day])})
            listed = spark.createDataFrame(ids)
            cutoff = list_date_cutoff(settings, day)
            features = feature_frame(
                spark, [cutoff], settings.churn, settings.features, labelled=False
            )
            chosen = features.join(F.broadcast(listed), on=CUSTOMER_ID, how="left_semi")
            try:
                rows = to_pandas(chosen.orderBy(CUTOFF, CUSTOMER_ID))
                return normalize_snapshot(rows, settings.features, labelled=False)
            finally:
                release(spark)

        return spilled_dates(sorted(by_date), compute)

    def listed_purchases(self, lists: list[Any], newest: dt.date) -> pd.DataFrame:
        """Return the distinct (customer_id, date) purchases (amount > 0) of the matured lists'
        flagged customers inside their outcome windows (churn.ledger.outcome_windows: all the
        outcomes read), dates as datetime64[s], sorted."""
        from pyspark.sql import functions as F

        windows = outcome_windows(lists, newest)
        if len(windows):
            table = pa.table(
                {
                    "__w_id": pa.array(windows[CUSTOMER_ID].to_numpy(), pa.string()),
                    "__first": pa.array(windows["first_day"].to_list(), pa.date32()),
                    "__last": pa.array(windows["last_day"].to_list(), pa.date32()),
                }
            )
            spans = self.spark.createDataFrame(table)
            day = F.col(DATE).cast("date")
            purchases = self.transactions.where(F.col(AMOUNT) > 0).select(
                F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID), day.alias(DATE)
            )
            inside = purchases.join(
                spans,
                on=(F.col(CUSTOMER_ID) == F.col("__w_id"))
                & (F.col(DATE) >= F.col("__first"))
                & (F.col(DATE) <= F.col("__last")),
                how="left_semi",
            )
            found = inside.distinct().orderBy(CUSTOMER_ID, DATE).toArrow()
        else:
            found = pa.table(
                {CUSTOMER_ID: pa.array([], pa.string()), DATE: pa.array([], pa.date32())}
            )
        return pa.table(
            {
                CUSTOMER_ID: found[CUSTOMER_ID].cast(pa.string()),
                DATE: found[DATE].cast(pa.date32()).cast(pa.timestamp("s")),
            }
        ).to_pandas()

    def known_ids(self, contact_ids: Any) -> pa.Array:
        """Return the transactions' distinct customer ids equal to a contact id once both lose
        their leading zeros: the ids check_id_matches reads for these contact ids
        (churn.spark.ids.ids_matching)."""
        return ids_matching(self.transactions, contact_ids)
