"""Scoring on Spark: every customer of an as-of snapshot held in Spark scored on the executors
(probability, tier, value, net benefit, priority, targeting flag, control group, reasons and
actions) by the score stage's own pandas functions; only scalars and the published list come to
the driver."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn import columns as C
from churn.columns import CHURN_PROBABILITY, CUSTOMER_ID
from churn.config import ScoreParams
from churn.cutoffs import customer_share
from churn.errors import ChurnError
from churn.files import open_parquet_file
from churn.logs import get_logger
from churn.score.phrasing import BOOKKEEPING, References
from churn.score.reasons import (
    choose_method,
    compute_contributions,
    explain_contributions,
    reference_contributions,
    suggest_actions,
)
from churn.score.targeting import (
    SaveRates,
    UpliftTargeting,
    assign_groups,
    assumed_save_rates,
    estimate_expected_value,
    expected_net_benefit,
    flag_at_risk,
    policy_summary,
    resolve_probability_floor,
    save_rates_by_tier,
    targeting_candidates,
    uplift_net_benefit,
)
from churn.spark.batches import snapshot_dtypes
from churn.tiers import assign_tiers
from churn.uplift.policy import (
    contact_eligible,
    expected_incremental_profit,
    exploration_draws,
    exploration_positions,
)

if TYPE_CHECKING:
    from churn.model import ChurnModel

log = get_logger("score")

PROBABILITY_SCHEMA = f"{CUSTOMER_ID} STRING, {CHURN_PROBABILITY} DOUBLE"
_RAW = "__raw_value"
_ELIGIBLE = "__eligible"
_PART = "__part"
_COVERED = "__covered"  # in the population past lists flagged (uplift policy)
_CONTACTABLE = "__contactable"  # the uplift policy may contact them (contact_eligible)
_EXPLORE = "__explore"
_SPARK_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double")


def model_columns(snapshot: Any, model: ChurnModel) -> list[str]:
    """Return the snapshot columns the model reads (features and its calibrator's column), after
    checking that the snapshot has them all (before any Spark job)."""
    model.check_features(pd.DataFrame(columns=snapshot.columns), "Spark snapshot")
    extra = [model.calibrator.column] if model.calibrator.column else []
    return list(dict.fromkeys([*model.spec.names, *extra]))


def predict_on_spark(snapshot: Any, model: ChurnModel) -> Any:
    """Return a Spark DataFrame (customer_id, churn_probability) for every row of `snapshot`.

    The model (LightGBM booster as its text, calibrator, feature spec) travels to the executors
    inside the function Spark serialises for mapInPandas, on classic Spark and Spark Connect
    alike; each batch of rows is scored by ChurnModel.predict_proba, the score stage's own code,
    so both engines give the same probabilities. Nothing is collected to the driver.
    """
    columns = [CUSTOMER_ID, *model_columns(snapshot, model)]

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for rows in batches:
            yield pd.DataFrame(
                {
                    CUSTOMER_ID: rows[CUSTOMER_ID].astype("string"),
                    CHURN_PROBABILITY: model.predict_proba(rows),
                }
            )

    return snapshot.select(*columns).mapInPandas(predict, PROBABILITY_SCHEMA)


@dataclass(frozen=True)
class SparkScores:
    """The scores of every customer as a Spark DataFrame (build_scores' columns, in priority
    order) and what the targeting rule used (scores.attrs['targeting'] on the pandas path)."""

    scores: Any
    targeting: dict[str, Any]
    customers: int
    flagged: int
    # the scores without the reasons, persisted (priority, flag, value, group, suppression of
    # every customer): what the stage's reports aggregate, so the reasons' pass runs only once,
    # when the scores are written
    ranked: Any
    floor: float  # the probability floor the targeting rule used (resolve_probability_floor)
    as_of: Any  # the as-of date (datetime.date)


def score_on_spark(
    snapshot: Any,
    model: ChurnModel,
    params: ScoreParams,
    suppressed_ids: Iterable[str] = (),
    save_rates: SaveRates | None = None,
    uplift: UpliftTargeting | None = None,
) -> SparkScores:
    """Return the scores of every customer of an as-of snapshot (a Spark DataFrame), as
    churn.score.build_scores computes them on pandas: the per-row parts run in mapInPandas with
    the model and the pandas functions shipped to the executors; the population's quantiles,
    mean and the priority offsets are Spark aggregates; nothing but scalars is collected.
    `save_rates`: measured save rates per tier (the campaign ledger), else score.save_rate.
    `uplift`: the uplift policy (the gate switched), its table a Spark DataFrame (or pandas):
    net benefit and priority are the expected incremental profit and the contacts are chosen by
    churn.score.targeting.flag_by_uplift per sorted partition, as build_scores does."""
    from pyspark.sql import functions as F

    model_columns(snapshot, model)
    for column in (C.CUSTOMER_ID, C.CUTOFF, C.SPEND_TOTAL, C.TENURE_DAYS):
        if column not in snapshot.columns:
            raise ChurnError(f"score snapshot: column {column!r} is missing; rebuild features")
    segments = [name for name in params.segment_columns if name in snapshot.columns]
    suppressed = frozenset(str(item) for item in suppressed_ids)
    first = snapshot.mapInPandas(
        _first_pass(model, params, suppressed, segments),
        f"{C.CUSTOMER_ID} STRING, {C.AS_OF} DATE, {CHURN_PROBABILITY} DOUBLE, {_RAW} DOUBLE, "
        f"{C.SUPPRESSED} BOOLEAN, {C.GROUP} STRING"
        + "".join(f", {name} STRING" for name in segments),
    )
    if uplift is not None:
        first = first.join(
            _uplift_estimates(snapshot.sparkSession, uplift.uplift), on=C.CUSTOMER_ID, how="left"
        ).withColumn(_COVERED, F.coalesce(F.col(_COVERED), F.lit(False)))
    first = first.persist()
    quantile = params.value_cap_quantile
    stats = first.agg(
        F.count(F.lit(1)),
        F.countDistinct(C.CUSTOMER_ID),
        F.countDistinct(C.AS_OF),
        F.avg(CHURN_PROBABILITY),
        F.min(CHURN_PROBABILITY),
        F.max(CHURN_PROBABILITY),
        F.sum(F.when(F.col(CHURN_PROBABILITY).between(0, 1), 0).otherwise(1)),
        F.expr(f"percentile({_RAW}, {quantile})") if quantile is not None else F.lit(None),
        F.min(C.AS_OF),
    ).collect()[0]
    customers, distinct, cutoffs, mean, low, high, outside, cap, as_of = stats
    if customers == 0:
        raise ChurnError(
            "score snapshot: no customers to score (nobody is eligible as of the as-of date); "
            "check the data's date range and features.active_within_days"
        )
    if distinct != customers:
        raise ChurnError(
            f"score snapshot: {customers - distinct} duplicated customer_id values; the as-of "
            "snapshot must have one row per customer"
        )
    if cutoffs != 1:
        raise ChurnError(
            f"score snapshot: expected one cutoff (the as-of date), found {cutoffs}; pass "
            "data/features/score.parquet, not train.parquet"
        )
    if outside:
        raise ChurnError("score: the model returned probabilities outside [0, 1]; retrain it")
    # the floor from the population's mean risk, by the pandas path's function: a one-value
    # array holds the mean (two equal values when every customer has the same risk)
    same = customers > 1 and high - low == 0.0
    floor = resolve_probability_floor(
        params.target, params.tiers, np.array([mean, mean] if same else [mean])
    )
    if same and params.target.above_average and params.target.rule == "net_benefit":
        log.warning(
            "every scored customer has the same churn probability (%.4f): the model ranks no one, "
            "so nobody is flagged; check the model (reports/metrics.json) before publishing",
            low,
        )
    cap = None if cap is None else float(cap)
    valued = first.mapInPandas(
        _second_pass(params, cap, floor, save_rates, uplift is not None),
        ", ".join(f"{name} {kind}" for name, kind in first.dtypes)
        + f", {C.RISK_TIER} STRING, {C.EXPECTED_VALUE} DOUBLE, {C.VALUE_AT_RISK} DOUBLE, "
        f"{C.EXPECTED_NET_BENEFIT} DOUBLE, {_ELIGIBLE} BOOLEAN, {_CONTACTABLE} BOOLEAN",
    )
    # priority: highest net benefit first, ties by customer_id (priority_order); each sorted
    # partition's offset (rows and candidates before it) comes from a small aggregate
    ordered = (
        valued.orderBy(F.desc(C.EXPECTED_NET_BENEFIT), F.asc(C.CUSTOMER_ID))
        .withColumn(_PART, F.spark_partition_id())
        .persist()
    )
    sizes = (
        ordered.groupBy(_PART)
        .agg(
            F.count(F.lit(1)),
            F.sum(F.col(_ELIGIBLE).cast("int")),
            F.sum(F.col(_CONTACTABLE).cast("int")),
        )
        .collect()
    )
    offsets, position, candidates, contactable = {}, 0, 0, 0
    for part, rows, eligible, open_ in sorted(
        (int(a), int(b), int(c or 0), int(d or 0)) for a, b, c, d in sizes
    ):
        offsets[part] = (position, candidates, contactable)
        position, candidates, contactable = (
            position + rows,
            candidates + eligible,
            contactable + open_,
        )
    flagged = ordered.mapInPandas(
        _flag_pass(params, floor, offsets, uplift),
        ", ".join(f"{name} {kind}" for name, kind in ordered.dtypes if name != _PART)
        + f", {C.PRIORITY} BIGINT, {C.AT_RISK} BOOLEAN",
    ).persist()
    explored = 0
    if uplift is not None and uplift.exploration_share > 0:
        flagged, explored = _explore(flagged, uplift)
    count_flagged = flagged.where(F.col(C.AT_RISK)).count()
    value_cap_count = first.where(F.col(_RAW) > F.lit(cap)).count() if cap is not None else 0
    targeting = {
        "expected_value_cap": None if cap is None else round(cap, 2),
        "value_cap_quantile": params.value_cap_quantile,
        "expected_value_capped": int(value_cap_count),
        "rule": params.target.rule,
        "min_probability_floor": round(floor, 6),
        "candidates": candidates,
        "above_average": params.target.above_average,
        **(save_rates or assumed_save_rates(params, "no campaign ledger was given")).summary(),
        **policy_summary(uplift),
    }
    if uplift is not None:
        targeting["explored"] = explored
    explained = _explain(snapshot, flagged, model, params, count_flagged, customers)
    columns = [
        C.CUSTOMER_ID, C.AS_OF, CHURN_PROBABILITY, C.RISK_TIER, C.EXPECTED_VALUE,
        C.VALUE_AT_RISK, C.EXPECTED_NET_BENEFIT, C.PRIORITY, C.AT_RISK, C.SUPPRESSED, C.GROUP,
        C.MODEL_VERSION, *([C.UPLIFT] if uplift is not None else []), *segments, C.REASONS,
        C.REASON_FAMILY, C.SUGGESTED_ACTION,
    ]  # fmt: skip
    scores = (
        flagged.join(explained, on=C.CUSTOMER_ID, how="left")
        .withColumn(C.MODEL_VERSION, F.lit(str(model.version)))
        .select(*columns)
        .orderBy(C.PRIORITY)
    )
    return SparkScores(
        scores, targeting, int(customers), int(count_flagged), flagged, float(floor), as_of
    )


def _first_pass(
    model: ChurnModel, params: ScoreParams, suppressed: frozenset[str], segments: list[str]
) -> Any:
    """Per row: probability, uncapped expected value, suppression, control group, segments."""

    def first(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for rows in batches:
            ids = rows[CUSTOMER_ID].astype("string")
            if ids.isna().any():
                raise ChurnError(
                    "score snapshot: column 'customer_id' has missing values; rebuild features"
                )
            values = ids.to_numpy(dtype=object)
            out = pd.DataFrame(
                {
                    CUSTOMER_ID: values,
                    C.AS_OF: rows[C.CUTOFF].to_numpy(dtype=object),
                    CHURN_PROBABILITY: model.predict_proba(rows),
                    _RAW: estimate_expected_value(rows, params),
                    C.SUPPRESSED: ids.isin(suppressed).to_numpy(dtype=bool),
                    C.GROUP: assign_groups(values, params.control_salt, params.control_share),
                }
            )
            for name in segments:
                out[name] = rows[name].astype("string").to_numpy(dtype=object)
            yield out

    return first


def _uplift_estimates(spark: Any, table: Any) -> Any:
    """Return (customer_id, uplift, covered) of the uplift table as a Spark DataFrame, one row per
    customer (the first in the table's order, as flag_by_uplift keeps), ids as text."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from churn.spark.clean import with_positions

    columns = list(table.columns)
    missing = [c for c in (C.CUSTOMER_ID, C.UPLIFT, C.COVERED) if c not in columns]
    if missing:
        raise ChurnError(f"uplift table: column(s) {missing} missing; rerun `dvc repro uplift`")
    if isinstance(table, pd.DataFrame):
        rows = pd.DataFrame(
            {
                C.CUSTOMER_ID: table[C.CUSTOMER_ID].astype("string").astype(object),
                C.UPLIFT: table[C.UPLIFT].astype("float64"),
                C.COVERED: table[C.COVERED].astype("boolean").astype(object),
                "__file": None,
                "__row": np.arange(1, len(table) + 1, dtype="int64"),
            }
        ).replace({pd.NA: None})
        frame = spark.createDataFrame(
            rows,
            f"{C.CUSTOMER_ID} STRING, {C.UPLIFT} DOUBLE, {C.COVERED} BOOLEAN, __file STRING, "
            "__row BIGINT",
        )
    else:
        frame = with_positions(table.select(C.CUSTOMER_ID, C.UPLIFT, C.COVERED))
    first = Window.partitionBy(C.CUSTOMER_ID).orderBy("__file", "__row")
    return (
        frame.select(
            F.col(C.CUSTOMER_ID).cast("string").alias(C.CUSTOMER_ID),
            F.col(C.UPLIFT).cast("double").alias(C.UPLIFT),
            F.col(C.COVERED).cast("boolean").alias(_COVERED),
            "__file",
            "__row",
        )
        .where(F.col(C.CUSTOMER_ID).isNotNull())
        .withColumn("__first", F.row_number().over(first))
        .where(F.col("__first") == 1)
        .select(C.CUSTOMER_ID, C.UPLIFT, _COVERED)
    )


def _second_pass(
    params: ScoreParams,
    cap: float | None,
    floor: float,
    save_rates: SaveRates | None = None,
    by_uplift: bool = False,
) -> Any:
    """Per row: tier, capped value, value at risk, net benefit and candidacy for a list; by the
    uplift policy, net benefit is the expected incremental profit (no estimate: minus the
    contact cost) and `_CONTACTABLE` whom the policy may contact."""
    rates = save_rates_by_tier(params) if save_rates is None else dict(save_rates.rates)

    def second(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for rows in batches:
            probability = rows[CHURN_PROBABILITY].to_numpy(dtype="float64")
            raw = rows[_RAW].to_numpy(dtype="float64")
            value = raw if cap is None else np.minimum(raw, cap)
            tiers = assign_tiers(probability, params.tiers)
            save_rate = pd.Series(tiers, dtype=object).map(rates).to_numpy(dtype="float64")
            net = expected_net_benefit(probability, save_rate, value, params.contact_cost)
            suppressed = rows[C.SUPPRESSED].to_numpy(dtype=bool)
            contactable = np.zeros(len(rows), dtype=bool)
            if by_uplift:
                uplift = rows[C.UPLIFT].to_numpy(dtype="float64", na_value=np.nan)
                known = ~np.isnan(uplift)
                profit = expected_incremental_profit(uplift, value, params.contact_cost)
                net = uplift_net_benefit(profit, params.contact_cost)
                covered = rows[_COVERED].to_numpy(dtype=bool) & known
                contactable = ~suppressed & contact_eligible(
                    covered, np.where(known, uplift, 0.0), np.where(known, profit, 0.0)
                )
            yield rows.assign(
                **{
                    C.RISK_TIER: tiers,
                    C.EXPECTED_VALUE: value,
                    C.VALUE_AT_RISK: probability * value,
                    C.EXPECTED_NET_BENEFIT: net,
                    _ELIGIBLE: targeting_candidates(probability, suppressed, params.target, floor),
                    _CONTACTABLE: contactable,
                }
            )

    return second


def _flag_pass(
    params: ScoreParams,
    floor: float,
    offsets: dict[int, tuple[int, int, int]],
    uplift: UpliftTargeting | None = None,
) -> Any:
    """Per sorted partition: priority and the at-risk flag, by flag_at_risk with the targeting
    rule's ranks shifted by the candidates in the partitions before this one; by the uplift
    policy, by flag_by_uplift (without exploration: `_explore`) with the list's capacity shifted
    by the customers it may contact in the partitions before."""
    policy = None
    if uplift is not None:  # the table is not shipped: each batch carries its own estimates
        policy = UpliftTargeting(pd.DataFrame(), 0.0, uplift.seed, uplift.reason)

    def flag(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        before: tuple[int, int, int] | None = None
        for rows in batches:
            if rows.empty:
                continue
            if before is None:
                before = offsets[int(rows[_PART].iloc[0])]
            position, candidates, contactable = before
            local = np.arange(1, len(rows) + 1, dtype="int64")
            if policy is not None:
                at_risk = _flag_by_uplift(rows, params, policy, contactable)
                before = (
                    position + len(rows),
                    candidates + int(rows[_ELIGIBLE].sum()),
                    contactable + int(rows[_CONTACTABLE].sum()),
                )
                yield rows.drop(columns=[_PART]).assign(
                    **{C.PRIORITY: position + local, C.AT_RISK: at_risk}
                )
                continue
            target = params.target
            shifted = target.model_copy(
                update={
                    "top_n": None if target.top_n is None else target.top_n - candidates,
                    "max_customers": None
                    if target.max_customers is None
                    else target.max_customers - candidates,
                }
            )
            at_risk = flag_at_risk(
                local,
                rows[CHURN_PROBABILITY].to_numpy(dtype="float64"),
                rows[C.EXPECTED_NET_BENEFIT].to_numpy(dtype="float64"),
                rows[C.SUPPRESSED].to_numpy(dtype=bool),
                shifted,
                floor,
            )
            before = (
                position + len(rows),
                candidates + int(rows[_ELIGIBLE].sum()),
                contactable + int(rows[_CONTACTABLE].sum()),
            )
            yield rows.drop(columns=[_PART]).assign(
                **{C.PRIORITY: position + local, C.AT_RISK: at_risk}
            )

    return flag


def _flag_by_uplift(
    rows: pd.DataFrame, params: ScoreParams, policy: UpliftTargeting, contactable_before: int
) -> np.ndarray:
    """Return the uplift policy's contacts among rows in priority order: flag_by_uplift on the
    batch, at most the list's capacity left after the contactable customers of earlier rows."""
    from dataclasses import replace

    from churn.score.targeting import flag_by_uplift

    cap = params.target.max_customers
    left = None if cap is None else max(0, cap - contactable_before)
    ids = rows[C.CUSTOMER_ID].astype("string").to_numpy(dtype=object)
    estimates = pd.DataFrame(
        {
            C.CUSTOMER_ID: ids,
            C.UPLIFT: rows[C.UPLIFT].to_numpy(dtype="float64", na_value=np.nan),
            C.COVERED: rows[_COVERED].to_numpy(dtype=bool),
        }
    )
    _, _, at_risk, _ = flag_by_uplift(
        ids,
        rows[C.EXPECTED_VALUE].to_numpy(dtype="float64"),
        rows[C.SUPPRESSED].to_numpy(dtype=bool),
        replace(policy, uplift=estimates),
        params.contact_cost,
        left,
    )
    return at_risk


def _explore(flagged: Any, uplift: UpliftTargeting) -> tuple[Any, int]:
    """Return the scores with the exploration share's random contacts flagged, and how many:
    round(share x contacts) customers outside the covered population (not suppressed), drawn by
    position among them sorted by id with the seed, as churn.uplift.policy.choose_contacts
    draws; only the drawn ids come to the driver."""
    from pyspark.sql import functions as F

    known = F.col(C.UPLIFT).isNotNull() & ~F.isnan(F.col(C.UPLIFT))
    outside = flagged.where(~F.col(C.SUPPRESSED) & ~(F.col(_COVERED) & known))
    contacts = flagged.where(F.col(C.AT_RISK)).count()
    total = outside.count()
    draws = exploration_draws(total, contacts, uplift.exploration_share)
    if not draws:
        return flagged, 0
    wanted = np.sort(exploration_positions(total, draws, uplift.seed))
    ordered = outside.select(C.CUSTOMER_ID).orderBy(C.CUSTOMER_ID)
    ordered = ordered.withColumn(_PART, F.spark_partition_id()).persist()
    sizes = sorted(
        (int(part), int(rows)) for part, rows in ordered.groupBy(_PART).count().collect()
    )
    starts, position = {}, 0
    for part, rows in sizes:
        starts[part] = position
        position += rows

    def pick(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        start: int | None = None
        for rows in batches:
            if rows.empty:
                continue
            if start is None:
                start = starts[int(rows[_PART].iloc[0])]
            at = start + np.arange(len(rows))
            chosen = np.isin(at, wanted)
            start += len(rows)
            yield pd.DataFrame({C.CUSTOMER_ID: rows[C.CUSTOMER_ID].to_numpy()[chosen]})

    picked = ordered.mapInPandas(pick, f"{C.CUSTOMER_ID} STRING").toPandas()
    drawn = flagged.sparkSession.createDataFrame(
        picked.assign(**{_EXPLORE: True}), f"{C.CUSTOMER_ID} STRING, {_EXPLORE} BOOLEAN"
    )
    marked = (
        flagged.join(F.broadcast(drawn), on=C.CUSTOMER_ID, how="left")
        .withColumn(C.AT_RISK, F.col(C.AT_RISK) | F.coalesce(F.col(_EXPLORE), F.lit(False)))
        .drop(_EXPLORE)
        .persist()
    )
    return marked, len(picked)


def _explain(
    snapshot: Any, scores: Any, model: ChurnModel, params: ScoreParams, flagged: int, total: int
) -> Any:
    """Return (customer_id, reasons, reason_family, suggested_action) of the flagged customers,
    explained on the executors against references of the whole scored population."""
    from pyspark.sql import functions as F

    method = choose_method(params.reasons, flagged)
    log.info("reasons for %d flagged customers by %s (Spark)", flagged, method)
    schema = (
        f"{C.CUSTOMER_ID} STRING, {C.REASONS} STRING, {C.REASON_FAMILY} STRING, "
        f"{C.SUGGESTED_ACTION} STRING"
    )
    quantile = params.actions.high_value_quantile
    threshold = scores.agg(F.expr(f"percentile({C.EXPECTED_VALUE}, {quantile})")).collect()[0][0]
    references = spark_references(snapshot, scores, params.reasons.peer_tenure_bands_days)
    chosen = scores.where(F.col(C.AT_RISK)).select(C.CUSTOMER_ID, C.EXPECTED_VALUE)
    rows = snapshot.join(chosen, on=C.CUSTOMER_ID)
    schema_types = dict(snapshot.dtypes)
    reasons_params, actions_params = params.reasons, params.actions
    reference = _reference_contributions(snapshot, model, reasons_params, method, schema_types)

    def explain(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            frame = snapshot_dtypes(batch, schema_types)
            contributions = compute_contributions(model, frame, method, reasons_params.batch_rows)
            contributions = contributions - reference[None, :]
            texts, main = explain_contributions(
                contributions, model.spec.names, frame, reasons_params, references
            )
            value = batch[C.EXPECTED_VALUE].to_numpy(dtype="float64")
            yield pd.DataFrame(
                {
                    C.CUSTOMER_ID: batch[C.CUSTOMER_ID].astype("string").to_numpy(dtype=object),
                    C.REASONS: texts,
                    C.REASON_FAMILY: main,
                    C.SUGGESTED_ACTION: suggest_actions(
                        main, value, float(threshold), actions_params
                    ),
                }
            )

    return rows.mapInPandas(explain, schema)


def _reference_contributions(
    snapshot: Any, model: ChurnModel, params: Any, method: str, types: dict[str, str]
) -> np.ndarray:
    """Return the contributions the reasons are measured from, as `reference_contributions` on
    the pandas engine: the mean over the (at most score.reasons.reference_rows) scored customers
    with the smallest stable id hash. Only that sample comes to the driver; ties of the hash at
    the sample's edge go by customer id (by snapshot order on the pandas engine)."""
    from pyspark.sql.types import DoubleType, StructField, StructType

    if params.contribution_reference == "training":
        return reference_contributions(model, pd.DataFrame(), params, method)
    share_column = "__reasons_reference_share"
    # a new schema: StructType.add would change the snapshot's own (cached) schema in place
    schema = StructType([*snapshot.schema.fields, StructField(share_column, DoubleType())])

    def share(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield batch.assign(
                **{share_column: customer_share(batch[CUSTOMER_ID], "reasons_reference")}
            )

    chosen = (
        snapshot.mapInPandas(share, schema)
        .orderBy(share_column, CUSTOMER_ID)
        .limit(params.reference_rows)
        .toPandas()
        .drop(columns=[share_column])
    )
    return reference_contributions(model, snapshot_dtypes(chosen, types), params, method)


def spark_references(snapshot: Any, scores: Any, tenure_bands_days: Iterable[int]) -> References:
    """Return churn.score.phrasing.build_references of the whole scored population computed as
    Spark aggregates: per tenure band medians and answered shares of every numeric column, the
    overall medians, and the mean risk per value of every text column."""
    from pyspark.sql import functions as F

    edges = tuple(int(edge) for edge in tenure_bands_days)
    population = snapshot.join(scores.select(C.CUSTOMER_ID, CHURN_PROBABILITY), on=C.CUSTOMER_ID)
    tenure = F.col(C.TENURE_DAYS).cast("double") if C.TENURE_DAYS in snapshot.columns else None
    band = F.lit(0)
    if tenure is not None:
        for edge in edges:  # np.searchsorted(edges, tenure, "right"); unknown tenure: band 0
            band = band + F.when(tenure.isNotNull() & (tenure >= edge), 1).otherwise(0)
    population = population.withColumn("__band", band)
    numeric = [
        name
        for name, kind in snapshot.dtypes
        if name not in BOOKKEEPING and (kind in _SPARK_NUMERIC or kind.startswith("decimal"))
    ]
    text = [
        name
        for name, kind in snapshot.dtypes
        if name not in BOOKKEEPING
        and kind not in _SPARK_NUMERIC
        and kind != "boolean"
        and not kind.startswith("decimal")
    ]
    medians: dict[str, np.ndarray] = {}
    answered: dict[str, np.ndarray] = {}
    overall: dict[str, float] = {}
    if numeric:
        aggregates = []
        for name in numeric:
            value = F.col(name).cast("double")
            aggregates += [
                F.expr(f"percentile(CAST(`{name}` AS DOUBLE), 0.5)").alias(f"m_{name}"),
                F.count(value).alias(f"k_{name}"),
            ]
        per_band = {
            int(row["__band"]): row
            for row in population.groupBy("__band")
            .agg(F.count(F.lit(1)).alias("__n"), *aggregates)
            .collect()
        }
        whole = population.agg(
            *(F.expr(f"percentile(CAST(`{name}` AS DOUBLE), 0.5)").alias(name) for name in numeric)
        ).collect()[0]
        for name in numeric:
            values = np.full(len(edges) + 1, np.nan)
            shares = np.zeros(len(edges) + 1)
            for index, row in per_band.items():
                if row[f"k_{name}"]:
                    values[index] = float(row[f"m_{name}"])
                    shares[index] = row[f"k_{name}"] / row["__n"]
            medians[name], answered[name] = values, shares
            overall[name] = float(whole[name]) if whole[name] is not None else float("nan")
    segment_risk: dict[str, dict[str, float]] = {}
    for name in text:
        label = F.col(name).cast("string")
        means = (
            population.where(label.isNotNull())
            .groupBy(label.alias("__label"))
            .agg(F.avg(CHURN_PROBABILITY))
            .collect()
        )
        segment_risk[name] = {str(row[0]): float(row[1]) for row in sorted(means)}
    mean_risk = population.agg(F.avg(CHURN_PROBABILITY)).collect()[0][0]
    return References(
        edges,
        medians,
        answered,
        overall,
        segment_risk,
        float("nan") if mean_risk is None else float(mean_risk),
    )


def with_score_dtypes(rows: pd.DataFrame) -> pd.DataFrame:
    """Return collected score rows with build_scores' dtypes (text as string dtype)."""
    text = [C.CUSTOMER_ID, C.RISK_TIER, C.GROUP, C.MODEL_VERSION, C.REASONS, C.REASON_FAMILY,
            C.SUGGESTED_ACTION]  # fmt: skip
    text += [
        name
        for name in rows.columns
        if name != C.AS_OF and (rows[name].dtype == object or str(rows[name].dtype) == "str")
    ]
    return rows.astype({name: "string" for name in dict.fromkeys(text)})


def write_scores(result: SparkScores, path: Path, work_dir: Path) -> None:
    """Write every customer's scores to one Parquet file in priority order with build_scores'
    dtypes: Spark writes part files under `work_dir` (a folder the driver can read), the driver
    streams them into `path` one batch at a time (no scores table held whole)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churn.files import atomic_path

    folder = work_dir / "scores"
    result.scores.write.mode("overwrite").parquet(str(folder.absolute()))
    # sorted by priority: one range per task, part-00000 first
    parts = sorted(folder.glob("part-*.parquet"))
    with atomic_path(path) as tmp:
        writer: pq.ParquetWriter | None = None
        for part in parts:
            for batch in open_parquet_file(part).iter_batches():
                frame = with_score_dtypes(batch.to_pandas())
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
        if writer is None:
            raise ChurnError("score: Spark wrote no scores; the snapshot had no customers")
        writer.close()
