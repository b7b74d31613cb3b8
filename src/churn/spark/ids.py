"""Customer ids held in Spark matched against a hand-kept list of ids (a suppression list,
contact logs) without collecting every customer's id to the driver."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow as pa

from churn.columns import CUSTOMER_ID

_KEY = "__id_key"  # a customer id without its leading zeros
# churn.ids.check_id_matches pads an unmatched all-digit listed id with ASCII zeros to a customer
# id's width: such a customer id and that listed id are equal without their leading zeros
LEADING_ZEROS = "^0+"


def ids_matching(customer_ids: Any, ids: Iterable[Any]) -> pa.Array:
    """Return the distinct ids of `customer_ids` (a Spark DataFrame with a customer_id column)
    equal to one of `ids` once both lose their leading zeros, sorted: the customer ids
    churn.ids.check_id_matches reads for these ids (the exact matches and the zero-padded ones;
    the other customer ids change none of its counts). Only those ids come to the driver."""
    from pyspark.sql import functions as F

    wanted = pd.Series(list(ids), dtype="string").dropna().unique()
    if not len(wanted):
        return pa.array([], pa.string())
    spark = customer_ids.sparkSession
    keys = spark.createDataFrame(pa.table({_KEY: pa.array(list(wanted), pa.string())})).select(
        F.regexp_replace(F.col(_KEY), LEADING_ZEROS, "").alias(_KEY)
    )
    customers = customer_ids.select(F.col(CUSTOMER_ID).cast("string").alias(CUSTOMER_ID))
    keyed = customers.withColumn(_KEY, F.regexp_replace(F.col(CUSTOMER_ID), LEADING_ZEROS, ""))
    known = keyed.join(F.broadcast(keys.distinct()), on=_KEY, how="left_semi")
    found = known.select(CUSTOMER_ID).distinct().orderBy(CUSTOMER_ID).toArrow()
    return found[CUSTOMER_ID].combine_chunks().cast(pa.string())
