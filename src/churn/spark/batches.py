"""pandas batches of Spark rows (mapInPandas) with the dtypes pandas reads from the same Parquet
file, so the pandas engine's functions see the same values on both engines."""

from __future__ import annotations

import pandas as pd


def snapshot_dtypes(batch: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Return a Spark batch of snapshot rows with the dtypes pandas reads from the snapshot's
    Parquet file: text as string dtype, integers as int64 (float64 when a value is missing)."""
    out = {}
    for name in batch.columns:
        kind = types.get(name)
        column = batch[name]
        if kind == "string":
            out[name] = column.astype("string")
        elif kind in ("tinyint", "smallint", "int", "bigint") and not column.isna().any():
            out[name] = column.astype("int64")
        elif kind in ("tinyint", "smallint", "int", "bigint", "float"):
            out[name] = column.astype("float64")
        else:
            out[name] = column
    return pd.DataFrame(out, index=batch.index)
