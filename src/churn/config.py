"""params.yaml -> typed, frozen, validated objects; unknown or misspelt keys are errors."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from churn.errors import ChurnError


class Section(BaseModel):
    """Base for every params section: frozen, and unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- shared sections
class ChurnParams(Section):
    """The churn definition, written once and read by every stage that labels, scores or states it.

    Churned at cutoff t = no purchase (amount > 0) dated in (t, t + horizon_days]; eligible at t =
    a purchase dated in (t - active_within_days, t]; as_of = the scored snapshot's date.
    """

    horizon_days: int = Field(90, ge=1)
    active_within_days: int = Field(365, ge=7)
    as_of: date | None = None  # null = the last transaction date


MEMORY_SIZE = r"\d+(\.\d+)?\s*[KMGT]i?B"


SPARK_MASTER = re.compile(r"local(\[(\*|[1-9]\d*)(,\s*[1-9]\d*)?\])?|(spark|k8s|mesos)://\S+|yarn")
SPARK_REMOTE = re.compile(r"sc://[^\s/]+(:\d+)?(/;\S*)?|local(\[(\*|[1-9]\d*)\])?")


class SparkParams(Section):
    """Apache Spark: where the session runs (a master, or a Spark Connect server) and its conf."""

    master: str | None = "local[2]"  # local[N], spark://host:port, yarn, k8s://...; null = remote
    remote: str | None = None  # Spark Connect: sc://host:15002 (or "local": a Connect server here)
    app_name: str = Field("churn", min_length=1)
    conf: dict[str, str] = Field(
        default_factory=lambda: {
            "spark.driver.memory": "1g",
            "spark.sql.shuffle.partitions": "8",
            "spark.ui.enabled": "false",
        }
    )  # any spark.* setting; the session time zone and ANSI mode are set by churn

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _one_target(self) -> SparkParams:
        if (self.master is None) == (self.remote is None):
            raise ValueError(
                "set exactly one of master (a Spark master URL such as local[2]) and remote (a "
                "Spark Connect URL such as sc://host:15002); set the other to null"
            )
        if self.master is not None and not SPARK_MASTER.fullmatch(self.master):
            raise ValueError(
                f"master {self.master!r} is not a Spark master URL: use local[2], local[*], "
                "spark://host:7077, yarn or k8s://https://host:443"
            )
        if self.remote is not None and not SPARK_REMOTE.fullmatch(self.remote):
            raise ValueError(
                f"remote {self.remote!r} is not a Spark Connect URL: use sc://host:15002 "
                "(options after /;) or local"
            )
        for key in self.conf:
            if not key.startswith("spark."):
                raise ValueError(
                    f"conf key {key!r} is not a Spark setting (they start with spark.)"
                )
            if key in SPARK_FIXED_CONF:
                raise ValueError(
                    f"conf key {key!r} is set by churn ({SPARK_FIXED_CONF[key]}); remove it"
                )
        return self


# settings churn always gives a Spark session, so both engines compute the same values
SPARK_FIXED_CONF = {
    "spark.sql.session.timeZone": "UTC, as DuckDB: dates never move with the machine's zone",
    "spark.sql.ansi.enabled": "true: a bad cast or overflow fails instead of becoming NULL",
}


class EngineParams(Section):
    """The engine of every stage that aggregates transactions (no model stage): DuckDB or Spark."""

    kind: Literal["duckdb", "spark"] = "duckdb"  # spark: ingest rules, features, scoring on Spark
    threads: int | None = Field(None, ge=1)  # DuckDB; null = all cores
    memory_limit: str = "2GB"  # DuckDB spills to a temporary folder beyond it
    spark: SparkParams = SparkParams()  # read only when kind is spark

    @model_validator(mode="after")
    def _memory_size(self) -> EngineParams:
        if not re.fullmatch(MEMORY_SIZE, self.memory_limit):
            raise ValueError(f"memory_limit {self.memory_limit!r}: write it like 2GB or 512MB")
        return self


class RegistryParams(Section):
    """MLflow: where runs are recorded, the registered model, and the alias that is production."""

    model: str = Field("churn-classifier", min_length=1)  # registered model name
    champion_alias: str = Field("champion", min_length=1)  # the production alias
    training_experiment: str = Field("churn", min_length=1)  # `churn train` runs
    gate_experiment: str = Field("churn-promote", min_length=1)  # every gate decision

    @model_validator(mode="after")
    def _aliases_differ(self) -> RegistryParams:
        if self.champion_alias == "challenger":
            raise ValueError("champion_alias cannot be 'challenger' (every training run moves it)")
        return self


# --------------------------------------------------------------------------- generate
class CampaignsParams(Section):
    """Simulated past retention campaigns in the default data (generate.campaigns)."""

    enabled: bool = True
    count: int = Field(4, ge=0, le=20)  # lists at the end - k x every_days, k = 1..count
    every_days: int = Field(90, ge=1)  # spacing of the list dates, back from the last day
    overdue_factor: float = Field(2.0, gt=0)  # listed: no purchase for >= this x their usual gap
    min_overdue_days: int = Field(30, ge=1)  # ...and for at least this many days
    control_share: float = Field(0.1, gt=0, le=0.5)  # the same share as score.control_share
    reach_rate: float = Field(0.7, ge=0, le=1)  # treated customers a contact really reaches
    crossover_rate: float = Field(0.01, ge=0, le=1)  # control customers contacted by mistake
    effect: float = Field(1.0, ge=0, le=3)  # scales the persuadable / sleeping-dog probabilities


class GenerateParams(Section):
    """Synthetic default data: `churn generate` (the `generate` DVC stage)."""

    seed: int = 42
    customers: int = Field(50_000, ge=10)
    start: str = "2023-01-01"  # first calendar day of the simulated period (ISO date)
    days: int = Field(1095, ge=60)  # length of the simulated period
    mean_purchases_per_year: float = Field(20.0, gt=0)  # population mean of the purchase rate
    rate_shape: float = Field(0.9, gt=0)  # gamma shape of purchase rates (smaller = more spread)
    mean_lifetime_days: float = Field(900.0, gt=0)  # mean of the exponential dropout time
    mean_order_value: float = Field(45.0, gt=0)
    refund_share: float = Field(0.02, ge=0, lt=1)
    dirty_share: float = Field(0.004, ge=0, lt=0.05)  # malformed rows, to exercise the quarantine
    duplicate_share: float = Field(0.002, ge=0, lt=0.05)  # re-exported rows with the same order id
    with_customers: bool = True
    with_nps: bool = True
    nps_response_rate: float = Field(0.3, ge=0, le=1)
    timezone: str = "Europe/Berlin"  # wall-clock zone of the exported timestamps
    chunk_customers: int = Field(200_000, ge=100)  # customers simulated per chunk (bounds memory)
    # shapes (benchmarks/experiments/model_quality.py); the defaults keep the default data as is
    pre_period_share: float = Field(0.2, ge=0, le=1)  # customers who joined before the export
    acquisition_days: int | None = Field(None, ge=1)  # others join in the first N days; None = all
    seasonality: float = Field(0.3, ge=0, lt=1)  # yearly amplitude of the purchase intensity
    campaigns: CampaignsParams = CampaignsParams()  # simulated past campaigns (lists, contacts)


# --------------------------------------------------------------------------- train
class LightGBMParams(Section):
    """LightGBM hyperparameters for `churn train` (binary objective, log loss)."""

    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    max_depth: int = -1  # -1 = no limit
    min_data_in_leaf: int = Field(100, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(1.0, ge=0)
    min_gain_to_split: float = Field(0.0, ge=0)
    max_bin: int = Field(255, ge=2)
    cat_smooth: float = Field(10.0, ge=0)
    extra_trees: bool = False  # random split thresholds (a regulariser)
    max_rounds: int = Field(3000, ge=1)  # upper bound; early stopping picks the number used
    early_stopping_rounds: int = Field(100, ge=1)


class TrainParams(Section):
    """`churn train`: LightGBM on the fit cutoffs, early stopping and calibration on held-out rows."""

    seed: int = 42
    num_threads: int = Field(1, ge=1)  # fixed, with deterministic=True, so reruns are identical
    lightgbm: LightGBMParams = LightGBMParams()
    # feature -> +1 (risk never falls as it grows) or -1 (never rises); {} = unconstrained
    monotone: dict[str, int] = Field(default_factory=lambda: {"recency_days": 1})
    # reweight churners and non-churners to equal total weight; the calibrator undoes the shift
    balance_classes: bool = False
    calibration: str = Field("auto", pattern="^(auto|isotonic|platt)$")
    # share of calibration-role customers (by id hash) used for early stopping; the rest calibrate
    early_stopping_share: float = Field(0.5, gt=0, lt=1)
    # refit the booster on fit + early-stopping rows with the chosen rounds (see README)
    refit: bool = True
    # production model: same settings refit on every cutoff labelled by the test cutoff, calibrated
    # on the test cutoff; false = promote and score the evaluation model itself (see README)
    production_refit: bool = True
    # fit the booster on at most this many customers (stable id hash; all of a customer's cutoffs
    # in or out, labels never read); null = every customer. Calibration, early stopping and the
    # test cutoff: sample_held_out_customers. benchmarks/results/train_sample.md
    sample_customers: int | None = Field(100_000, ge=1)
    # calibration, early stopping, the test cutoff (and evaluate, promote) use the calibration and
    # test rows of at most this many customers (stable id hash, independent of the fit sample; all
    # of a customer's calibration and test rows in or out, labels never read); null = every
    # customer. Binds only above ~500k customers (about 8M transactions); see training_rows.py
    sample_held_out_customers: int | None = Field(500_000, ge=1000)
    # with features.bgnbd: the booster trains without the BG/NBD columns and the calibrator is a
    # logistic regression on its score and BG/NBD P(no purchase in the horizon) (a stack)
    stack_bgnbd: bool = True
    # weight each training row by 0.5 ** (age of its cutoff before the newest trained cutoff / N
    # days): newer cutoffs resemble the scored snapshot more; null = equal weights
    cutoff_half_life_days: float | None = Field(None, gt=0)
    # boost each row from its cutoff's log-odds of churn (LightGBM init_score), so the trees learn
    # who churns more than others at the same cutoff and the calibrator sets the level
    cutoff_offset: bool = False

    @model_validator(mode="after")
    def _monotone_directions(self) -> TrainParams:
        bad = {name: v for name, v in self.monotone.items() if v not in (-1, 0, 1)}
        if bad:
            raise ValueError(f"monotone directions must be -1, 0 or 1, got {bad}")
        return self


# --------------------------------------------------------------------------- evaluate
class EvaluateParams(Section):
    """`churn evaluate`: metrics and plots on the test (newest labelled) cutoff, vs baselines."""

    top_fractions: tuple[float, ...] = (0.05, 0.1, 0.2)  # lift and recall in the top k of the list
    tenure_bands_days: tuple[int, ...] = (90, 365, 730)  # segment edges for per-segment metrics
    min_segment_rows: int = Field(50, ge=1)  # smaller segments are reported without metrics
    bootstrap: int = Field(200, ge=0)  # resamples of customers for CIs of model - baseline
    seed: int = 42

    @model_validator(mode="after")
    def _fractions_and_bands(self) -> EvaluateParams:
        if not self.top_fractions or any(not 0 < f <= 1 for f in self.top_fractions):
            raise ValueError("top_fractions must be non-empty, each in (0, 1]")
        if list(self.tenure_bands_days) != sorted(set(self.tenure_bands_days)):
            raise ValueError("tenure_bands_days must be strictly increasing")
        return self


# --------------------------------------------------------------------------- report
REPORT_PERIOD_DAYS = {"week": 7, "month": 31, "quarter": 92}  # longest period of each kind


class ReportParams(Section):
    """Retention report: `churn report` (the `report` DVC stage); the definition is `churn`'s."""

    period: Literal["week", "month", "quarter"] = "month"
    cohort_period: Literal["week", "month", "quarter"] = "month"


# --------------------------------------------------------------------------- features
class CutoffsParams(Section):
    """Training cutoffs: `count` dates `step_days` apart, the newest at as_of - horizon_days."""

    count: int = Field(12, ge=1)
    step_days: int = Field(30, ge=1)
    min_history_days: int = Field(60, ge=1)  # warm-up: days of data a cutoff needs on or before it


class RolesParams(Section):
    """How training cutoffs are split by time into fit / calibration / test (rest: gap)."""

    calibration_cutoffs: int = Field(1, ge=1)  # newest cutoffs whose labels end before test starts
    # shorter histories (churn.cutoffs.plan_training): customers held out by a stable id hash
    calibration_share: float = Field(0.2, gt=0, lt=1)  # calibrate and stop early on these
    holdout_share: float = Field(0.2, gt=0, lt=1)  # in-time holdout: measured on, never trained on


class FeaturesParams(Section):
    """Point-in-time snapshots and churn labels: `churn features` (the `features` DVC stage)."""

    windows: tuple[int, ...] = (30, 90, 180, 365)  # trailing windows (cutoff - N, cutoff], days
    trend_days: int = Field(90, ge=1)  # trend: last N days against the N days before them
    cutoffs: CutoffsParams = CutoffsParams()
    roles: RolesParams = RolesParams()
    # quality: BG/NBD expected purchases and P(alive), fitted per cutoff (off: no measured gain)
    bgnbd: bool = False
    # time of year of the cutoff (sin/cos of the day of year): lets the model learn seasonal churn
    season: bool = True
    # the silence against the customer's longest gap so far: gap_max_days, recency_gap_max_ratio
    rhythm: bool = False

    @model_validator(mode="after")
    def _windows_include_core(self) -> FeaturesParams:
        if 90 not in self.windows:
            raise ValueError(
                "windows must include 90 (spend_90d and purchases_90d are core features)"
            )
        if len(set(self.windows)) != len(self.windows) or any(w < 1 for w in self.windows):
            raise ValueError("windows must be distinct positive day counts")
        return self


# --------------------------------------------------------------------------- ingest
SQL_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "sqlite", "mssql", "oracle", "duckdb")


# Query-string keys of a database URL that carry a secret (password=, sslpassword=, token=, ...)
SECRET_QUERY_KEY = re.compile(
    r"passw|passphrase|^pass$|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key"
    r"|credential|signature",
    re.IGNORECASE,
)


def is_secret_query_key(key: str) -> bool:
    """Return True when a URL query key names a secret (password, pwd, token, api_key, ...)."""
    return SECRET_QUERY_KEY.search(key) is not None


def is_sql_url(source: str) -> bool:
    """Return True when `source` looks like a SQLAlchemy URL (or an env:VAR naming one)."""
    if source.startswith("env:"):
        return True
    scheme = source.split("://", 1)[0].split("+", 1)[0].lower() if "://" in source else ""
    return scheme in SQL_SCHEMES


# csv.delimiter for column-aligned text exports: fields split on runs of spaces or tabs
WHITESPACE_DELIMITER = "whitespace"


class CsvOptions(Section):
    """How to read CSV sources. Every column is read as text, then typed by ingest itself."""

    delimiter: str | None = None  # None = detect; "whitespace" = runs of spaces/tabs (aligned text)
    encoding: str = "utf-8"  # utf-8, latin-1, utf-16, or any Python codec (then transcoded)
    decimal: Literal[".", ","] = "."
    thousands: Literal[",", ".", " ", "'", "_"] | None = None  # stripped before parsing amounts
    quote: str = '"'
    escape: str | None = None  # None = same as quote (doubled quotes)
    header: bool = True  # false: the first line is data; columns are column0, column1, ...
    max_line_bytes: int = Field(2_097_152, ge=1024)  # a longer line (record) is an error

    @model_validator(mode="after")
    def _single_characters(self) -> CsvOptions:
        for key in ("delimiter", "quote", "escape"):
            value = getattr(self, key)
            if key == "delimiter" and value == WHITESPACE_DELIMITER:
                continue
            if value is not None and len(value) != 1:
                raise ValueError(
                    f"csv.{key} must be a single character"
                    + (f" or {WHITESPACE_DELIMITER!r}" if key == "delimiter" else "")
                    + f", got {value!r}"
                )
        if self.thousands is not None and self.thousands == self.decimal:
            raise ValueError("csv.thousands and csv.decimal must differ")
        return self


class SqlOptions(Section):
    """A SQL table or read-only query; credentials come only from the environment."""

    table: str | None = None  # [schema.]table; validated as identifiers, quoted by SQLAlchemy
    query: str | None = None  # one SELECT; values only through :name placeholders
    query_params: dict[str, str | int | float | bool] = {}
    password_env: str = "PGPASSWORD"  # environment variable holding the password, if any


class TransactionColumns(Section):
    """Source column names of the transactions export (required: customer_id, timestamp, amount)."""

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    amount: str = "amount"
    transaction_id: str | None = None  # when mapped, repeated ids are removed and counted


class CustomerColumns(Section):
    """Source column names of the optional customers table."""

    customer_id: str = "customer_id"
    signup_date: str | None = "signup_date"
    channel: str | None = "channel"
    region: str | None = "region"


class NpsColumns(Section):
    """Source column names of the optional NPS survey answers."""

    customer_id: str = "customer_id"
    answered_at: str = "answered_at"
    score: str = "score"


class SideSource(Section):
    """A file or SQL source of a side table (customers or NPS answers)."""

    source: str
    format: Literal["auto", "csv", "parquet", "sql"] = "auto"
    sql: SqlOptions = SqlOptions()
    csv: CsvOptions = CsvOptions()
    date_format: str | None = None  # strptime format of the date column; None = ISO or auto
    dayfirst: bool = False


class CustomersSource(SideSource):
    """The optional customers table: one row per customer."""

    columns: CustomerColumns = CustomerColumns()


class NpsSource(SideSource):
    """The optional NPS answers: score 0-10 per customer and date."""

    columns: NpsColumns = NpsColumns()


class FreshnessCheck(Section):
    """Newest clean transaction must not be older than max_age_days (None = no check)."""

    max_age_days: int | None = Field(None, ge=0)
    action: Literal["warn", "fail"] = "warn"


class VolumeCheck(Section):
    """Rows read must not fall by more than max_drop_share against the median of the last
    baseline_runs clean runs; a run that warned never becomes the baseline."""

    max_drop_share: float | None = Field(0.5, gt=0, le=1)
    action: Literal["warn", "fail"] = "fail"
    baseline_runs: int = Field(5, ge=1, le=20)
    accept: bool = False  # true for one run: a reviewed drop passes and becomes the baseline


INTEGRITY_CHECKS = ("amounts", "categories", "nulls", "schema", "timezone")


class IntegrityParams(Section):
    """Blocking data-integrity checks: the newest period of the clean transactions against the
    trailing ones (and the previous run's columns). A failing check stops ingest, writing nothing."""

    enabled: bool = True
    newest_days: int = Field(30, ge=1)  # the newest period: the last N days up to the newest row
    trailing_days: int = Field(365, ge=1)  # the trailing periods: the N days before the newest
    min_rows: int = Field(200, ge=1)  # fewer rows in either period: the check passes with a note
    # amounts: per-transaction quantiles (not volumes: a December peak sells more, not dearer)
    amount_quantiles: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    max_amount_ratio: float = Field(3.0, gt=1)  # newest/trailing quantile beyond x3 or below /3
    # categories: passthrough columns; rows of the newest period in levels never seen before
    max_new_level_share: float = Field(0.05, gt=0, le=1)
    max_levels: int = Field(50, ge=1)  # more distinct levels: an id or free text, not checked
    # nulls: passthrough and transaction_id columns; share of nulls rising by more than this
    max_null_increase: float = Field(0.1, gt=0, le=1)
    # timezone: the hour-of-day profile shifted by whole hours (or the source's UTC offset changed)
    max_profile_distance: float = Field(0.2, gt=0, le=2)  # L1 distance of hour shares, unshifted
    # checks accepted once (e.g. [amounts] or [categories:channel]): they warn instead of failing;
    # remove the entry after the run that needed it
    accept: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _valid(self) -> IntegrityParams:
        for entry in self.accept:
            if entry.split(":", 1)[0] not in INTEGRITY_CHECKS:
                raise ValueError(
                    f"integrity.accept entry {entry!r}: the check must be one of "
                    f"{list(INTEGRITY_CHECKS)} (optionally check:column)"
                )
        if not all(0 < q < 1 for q in self.amount_quantiles) or not self.amount_quantiles:
            raise ValueError("integrity.amount_quantiles must be between 0 and 1 (exclusive)")
        return self


# The features stage sums amounts as 64-bit integers of 1/10000 currency unit: one amount beyond
# 9.2e14 overflows there, so no limit may allow more than 1e14.
MAX_REPRESENTABLE_AMOUNT = 1e14


class IngestLimits(Section):
    """Values outside what the pipeline can represent or believe are quarantined with a reason."""

    max_abs_amount: float = Field(1e12, gt=0, le=MAX_REPRESENTABLE_AMOUNT)
    min_date: date = date(1900, 1, 1)  # earlier timestamps: timestamp_out_of_range


class IngestParams(Section):
    """Reading and cleaning the transactions export: `churn ingest` (the `ingest` DVC stage)."""

    source: str = "data/raw/transactions.csv.gz"  # file, folder, SQLAlchemy URL or env:VAR
    # table: source names a table in the Spark catalog (db.table; engine.kind: spark only)
    format: Literal["auto", "csv", "parquet", "sql", "table"] = "auto"
    sql: SqlOptions = SqlOptions()
    csv: CsvOptions = CsvOptions()
    columns: TransactionColumns = TransactionColumns()
    passthrough: tuple[str, ...] = ()  # extra source columns kept (as text for CSV)
    timestamp_format: str | None = None  # strptime format, e.g. "%d/%m/%Y %H:%M"; None = auto
    dayfirst: bool = False  # for auto parsing of ambiguous dates like 03/04/2024
    timezone: str = "UTC"  # zone of naive timestamps; timestamps with an offset convert to it
    reject_after: datetime | None = None  # later timestamps are quarantined; None = run time
    drop_exact_duplicates: bool = False  # without transaction_id: drop identical rows?
    max_quarantine_share: float = Field(0.05, ge=0, le=1)
    limits: IngestLimits = IngestLimits()
    freshness: FreshnessCheck = FreshnessCheck()
    volume: VolumeCheck = VolumeCheck()
    integrity: IntegrityParams = IntegrityParams()
    customers: CustomersSource | None = None
    nps: NpsSource | None = None

    @model_validator(mode="after")
    def _consistent(self) -> IngestParams:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {self.timezone!r} is not an IANA zone (e.g. Europe/Berlin, UTC)"
            ) from None
        names = [self.columns.customer_id, self.columns.timestamp, self.columns.amount]
        if self.columns.transaction_id:
            names.append(self.columns.transaction_id)
        for name in self.passthrough:
            if name in names or name in CANONICAL_TRANSACTION_COLUMNS:
                raise ValueError(
                    f"passthrough column {name!r} is already mapped or is a reserved name"
                )
        if len(set(self.passthrough)) != len(self.passthrough):
            raise ValueError("passthrough lists a column twice")
        for label, spec in (("", self), ("customers.", self.customers), ("nps.", self.nps)):
            if spec is not None:
                _check_source(label, spec.source, spec.format, spec.sql)
        return self


CANONICAL_TRANSACTION_COLUMNS = ("customer_id", "timestamp", "date", "amount", "transaction_id")


def _check_source(label: str, source: str, fmt: str, sql: SqlOptions) -> None:
    """Raise ValueError for an inconsistent SQL source; never echo a password."""
    if fmt == "sql" or (fmt == "auto" and is_sql_url(source)):
        if (sql.table is None) == (sql.query is None):
            raise ValueError(f"{label}source is SQL: set exactly one of {label}sql.table or query")
        if not source.startswith("env:"):
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                url = make_url(source)
            except ArgumentError:
                raise ValueError(f"{label}source is not a valid SQLAlchemy URL") from None
            secret_keys = [k for k in url.query if is_secret_query_key(k)]
            if secret_keys:
                raise ValueError(
                    f"{label}source carries a secret in its query string ({secret_keys[0]}=...); "
                    f"remove it from params.yaml: put the password in the environment variable "
                    f"named by {label}sql.password_env, or the whole URL in an env var and write "
                    "source: env:VARNAME"
                )
            if url.password is not None:
                raise ValueError(
                    f"{label}source contains a password; remove it from params.yaml and put it "
                    f"in the environment variable named by {label}sql.password_env "
                    f"(or the whole URL in an env var and write source: env:VARNAME)"
                )
    elif sql.table is not None or sql.query is not None:
        raise ValueError(f"{label}sql.table/query are set but {label}source is not a SQL URL")


# --------------------------------------------------------------------------- score
_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class TiersParams(Section):
    """Risk tiers from the calibrated churn probability: >= high is high, >= medium is medium."""

    high: float = Field(0.5, gt=0, lt=1)
    medium: float = Field(0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> TiersParams:
        if self.medium >= self.high:
            raise ValueError(f"tiers.medium ({self.medium}) must be below tiers.high ({self.high})")
        return self


class TargetParams(Section):
    """Who is flagged at risk: positive net benefit, the top N by priority, or a probability floor.

    While the save rate is an assumed constant, net benefit alone lets value swamp risk (valuable
    customers at low risk fill the list), so the net_benefit and top_n rules also require the churn
    probability to reach `min_probability_floor`: a tier name (its threshold in `score.tiers`) or a
    number; null removes the guard. Measured save rates per tier replace the assumption later.
    """

    rule: Literal["net_benefit", "top_n", "probability"] = "net_benefit"
    top_n: int = Field(5000, ge=1)  # rule top_n: list size (control customers included)
    min_probability: float = Field(0.5, ge=0, le=1)  # rule probability
    min_probability_floor: str | float | None = "medium"
    # also need churn_probability >= the scored customers' mean: where most customers churn (a
    # high base rate), the tier floor alone still lets valuable below-average risks fill the list
    above_average: bool = True
    max_customers: int | None = Field(None, ge=1)  # campaign capacity cap on top of any rule

    @field_validator("min_probability_floor", mode="before")
    @classmethod
    def _tier_or_probability(cls, floor: Any) -> str | float | None:
        if floor is None or floor in ("medium", "high"):
            return floor
        if isinstance(floor, int | float) and not isinstance(floor, bool) and 0 <= floor <= 1:
            return float(floor)
        raise ValueError(
            f"{floor!r} is not a floor: write a tier name (medium or high: its threshold in "
            "score.tiers), a probability between 0 and 1, or null for no floor"
        )


def _default_families() -> dict[str, list[str]]:
    # glob patterns on feature names; the first family whose pattern matches wins (order matters)
    return {
        "nps": ["*nps*"],
        "refunds": ["*refund*", "*return*", "*cancel*", "zero_amount*"],
        "recency": ["recency*", "days_since*", "*overdue*", "gap_*", "*interpurchase*"],
        "frequency": ["purchase*", "*frequency*", "orders*", "visits*", "weekday*"],
        "spend_trend": ["spend_[0-9]*d", "*trend*", "*change*", "*decline*", "*_ratio_*"],
        "spend": ["spend*", "aov*", "*order_value*", "*monetary*"],
        "tenure": ["tenure*", "signup*", "first_*", "age_days*"],
        "segment": ["channel*", "region*"],
    }


class ReasonsParams(Section):
    """Plain-word reasons from tree SHAP contributions, grouped into feature families."""

    # treeshap: exact (pred_contrib, ~2-5 ms/row on 500 trees); path: per-tree path attribution,
    # ~25x faster, same main family for ~98% of rows; auto: treeshap up to exact_max_rows rows
    method: Literal["auto", "treeshap", "path"] = "auto"
    exact_max_rows: int = Field(50_000, ge=0)
    top_k: int = Field(3, ge=1, le=10)  # at most; fewer when fewer families raise the risk
    families: dict[str, list[str]] = Field(default_factory=_default_families)
    batch_rows: int = Field(20_000, ge=100)  # rows per contribution call (bounds memory)
    # plain attributes: shown only when their family adds at least descriptive_min_contribution
    # to the raw score (log-odds; 0.1 is about +2.5 probability points at p = 0.5)
    descriptive_families: list[str] = Field(default_factory=lambda: ["tenure", "spend", "segment"])
    descriptive_min_contribution: float = Field(0.1, ge=0)
    # "customers like them": same tenure band of the scored population, bands split at these days
    peer_tenure_bands_days: list[int] = Field(default_factory=lambda: [90, 365, 730])
    # what a contribution raises the risk above: "scored" — the average scored customer (each
    # feature's contribution minus its mean over the scored snapshot, so a customer's
    # contributions sum to their log-odds minus the scored customers' mean log-odds); "training" —
    # the booster's expected value over its training rows (raw TreeSHAP). On an ageing base every
    # customer can sit below the training mean while being riskier than those scored with them.
    contribution_reference: Literal["scored", "training"] = "scored"
    # the scored mean is taken over at most this many customers (a stable id-hash sample)
    reference_rows: int = Field(5_000, ge=100)

    @model_validator(mode="after")
    def _ascending_bands(self) -> ReasonsParams:
        bands = self.peer_tenure_bands_days
        if any(b <= 0 for b in bands) or any(
            a >= b for a, b in zip(bands[:-1], bands[1:], strict=True)
        ):
            raise ValueError(
                f"peer_tenure_bands_days {bands} must be positive and strictly ascending, "
                "e.g. [90, 365, 730]"
            )
        return self


def _default_actions() -> dict[str, str]:
    return {
        "recency": "win-back offer",
        "frequency": "win-back offer",
        "spend_trend": "personal recommendation",
        "spend": "personal recommendation",
        "nps": "service call",
        "refunds": "service call",
        "tenure": "personal recommendation",
        "segment": "personal recommendation",
    }


class ActionsParams(Section):
    """Suggested retention action from the main reason family and the customer's value."""

    by_family: dict[str, str] = Field(default_factory=_default_actions)
    high_value_quantile: float = Field(0.9, gt=0, lt=1)  # of expected_value over scored customers
    high_value_action: str = "loyalty invitation"
    # lapsed customers need winning back and unhappy ones a call, however valuable they are
    keep_family_action: list[str] = Field(default_factory=lambda: ["recency", "nps", "refunds"])
    default: str = "general retention offer"  # main family not in by_family, or no reason


class ScoreParams(Section):
    """Batch scoring: `churn score` (the `score` DVC stage) and the at-risk targeting rule."""

    tiers: TiersParams = TiersParams()
    gross_margin: float = Field(0.3, gt=0, le=1)  # margin rate on spend
    expected_value_days: int = Field(365, ge=1)  # period the expected value covers
    min_tenure_days: int = Field(90, ge=1)  # floor on the days a spend rate is averaged over
    contact_cost: float = Field(5.0, ge=0)  # cost of one retention contact (offer, call)
    save_rate: float = Field(0.1, gt=0, le=1)  # share of contacted churners the action keeps
    # per tier, the campaign ledger's measured save rate replaces save_rate where a matured
    # campaign measured that tier (reports/score.json says which and from which campaigns)
    measured_save_rates: bool = True
    # expected_value is capped at this quantile of the scored customers (null: no cap), so a few
    # huge spenders cannot dominate the net benefit
    value_cap_quantile: float | None = Field(0.99, gt=0, le=1)
    target: TargetParams = TargetParams()
    control_share: float = Field(0.1, ge=0, le=0.5)
    control_salt: str = Field("churn-control-v1:", min_length=1)
    segment_columns: list[str] = Field(default_factory=lambda: ["channel", "region"])
    reasons: ReasonsParams = ReasonsParams()
    actions: ActionsParams = ActionsParams()
    profit_curve_points: int = Field(200, ge=10, le=10_000)


class SqlExportParams(Section):
    """Optional copy of the published list into a SQL table (one transaction per as_of date)."""

    enabled: bool = False
    url_env: str = Field("CHURN_EXPORT_DB_URL", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    table: str = Field("churn_at_risk", pattern=_IDENTIFIER)
    schema_name: str | None = Field(None, pattern=_IDENTIFIER)


class PowerCheckParams(Section):
    """The power check at publish: the smallest effect the list's control group can measure."""

    alpha: float = Field(0.05, gt=0, lt=0.5)  # two-sided level of the treated-vs-control test
    power: float = Field(0.8, ge=0.5, lt=1)  # chance of detecting the minimum detectable effect


class PublishParams(Section):
    """`churn publish` (not a DVC stage): data and drift gates, then the dated at-risk list."""

    max_quarantine_share: float = Field(0.05, ge=0, le=1)  # from reports/ingest.json when present
    max_age_days: int | None = Field(None, ge=0)  # as_of older than this many days: refuse
    min_customers: int = Field(1, ge=1)  # scored customers below this: refuse
    sql: SqlExportParams = SqlExportParams()
    power_check: PowerCheckParams = PowerCheckParams()


class AppParams(Section):
    """`churn app` (not a DVC stage): how the marketing page shows the published lists."""

    # shown with every amount on the page: a symbol (€, $, ¤) before it, a letter code (EUR)
    # after it; the data does not say which currency its amounts are in
    currency: str = Field("¤", min_length=1, max_length=5, pattern=r"^[^\s<>&\"']+$")


# --------------------------------------------------------------------------- promote / drift / backtest / retrain
class PromoteParams(Section):
    """`churn promote`: the champion/challenger gate on the newest out-of-time (test) cutoff."""

    min_auc: float = Field(0.65, ge=0, le=1)  # absolute floor for the challenger's ROC AUC
    max_auc_drop: float = Field(0.01, ge=0, le=1)  # largest allowed AUC drop against the champion
    # calibration guard: the challenger's ECE may exceed the champion's by at most this much
    max_ece_increase: float = Field(0.02, ge=0, le=1)
    eval_role: str = Field("test", min_length=1)  # snapshot role both models are measured on
    # the floor moves with the data: the challenger must also reach the best simple baseline's
    # ROC AUC on the same rows less that AUC's bootstrap half-width (customers resampled)
    baseline_floor: bool = True  # off: the floor is min_auc alone (a reviewed exception)
    baseline_bootstrap: int = Field(200, ge=20)
    # no champion yet and the first challenger falls below the best baseline: "baseline" scores
    # the list with that baseline (a one-feature model, labelled baseline-NAME everywhere) until a
    # model passes; "none" writes no champion and so no list
    fallback: str = Field("baseline", pattern="^(baseline|none)$")
    # the drop is measured against the best of the last `history` champions (same definition),
    # each rescored on today's rows, so small drops cannot add up over many promotions
    history: int = Field(5, ge=1)
    seed: int = 0


class DriftParams(Section):
    """`churn drift`: population stability of features and score, training reference vs as-of."""

    bins: int = Field(10, ge=2)  # quantile bins of numeric features (tied edges are merged)
    max_levels: int = Field(20, ge=1)  # most frequent categorical levels kept; the rest is "other"
    warn: float = Field(0.1, gt=0)  # PSI at or above: warning
    fail: float = Field(0.25, gt=0)  # PSI at or above: failure (blocks publish when blocking)
    epsilon: float = Field(1e-4, gt=0, lt=0.01)  # floor for empty-bin shares inside the log
    # PSI reference: the newest cutoff of this role in the training snapshots (the newest labelled
    # cutoff, closest in time to as_of), scored by the champion when the drift stage runs
    reference_role: str = Field("test", min_length=1)
    # PSI warns only: a closed customer base ages between cutoffs, and PSI cannot tell ageing from
    # broken data (the blocking checks are ingest.integrity). Opt-in blocking, for a stable base:
    score_blocks: bool = False  # a failing PSI of the churn probability blocks publish
    blocking_features: tuple[str, ...] = ()  # features whose failing PSI blocks publish
    # a feature is named as outside the training range when at least this share of scored
    # customers lies above its training maximum or below its minimum (the trees predict flat there)
    out_of_range_share: float = Field(0.01, ge=0, le=1)

    @model_validator(mode="after")
    def _warn_below_fail(self) -> DriftParams:
        if self.warn >= self.fail:
            raise ValueError(f"warn ({self.warn}) must be below fail ({self.fail})")
        return self


class BacktestParams(Section):
    """`churn backtest`: archived at-risk lists against what happened once their horizon passed."""

    confidence: float = Field(0.95, gt=0.5, lt=1)  # level of the treated-vs-control interval
    # warn when the flagged customers' predicted churn lies above the interval of their observed
    # churn by more than this (probability points); 0.05 matches the calibration goal ECE <= 0.05,
    # so a large list's small, tolerated calibration gap does not warn on every run
    shortfall_tolerance: float = Field(0.05, ge=0, lt=1)


class RetrainParams(Section):
    """`churn retrain`: lock, `dvc repro`, gate with alias move, publish, backtest (schedulers)."""

    lock_file: str = ".churn-retrain.lock"  # fcntl lock; a second run exits 75 at once
    repro_command: tuple[str, ...] = ("dvc", "repro")  # the pipeline run on the newest data
    backtest: bool = True  # run the backtest after publishing


MIN_RESAMPLES_BEYOND_BOUND = 5  # uplift gate: bootstrap resamples beyond its one-sided bound


class UpliftParams(Section):
    """`churn uplift`: learn who a contact keeps from matured randomized campaigns, behind a gate."""

    # below these the gate keeps risk x value: "not enough campaign data yet"
    min_campaigns: int = Field(4, ge=2)  # matured randomized campaigns (training + held-out)
    min_control_rows: int = Field(300, ge=1)  # control customers in training and again in held-out
    holdout_share: float = Field(
        0.25, gt=0, lt=1
    )  # newest campaigns held out to judge the policies
    # both policies are judged at this share of each held-out campaign's customers (past lists
    # hold everyone the old rule flagged, so judging at the whole list would compare nothing)
    list_share: float = Field(0.5, gt=0, le=1)
    exploration_share: float = Field(0.0, ge=0, le=0.5)  # contacts drawn at random outside the
    # population past lists covered, as a share of the list (the learner has no data there)
    random_actions: bool = False  # true only when publish assigned actions at random: then each
    # customer gets the action with the highest expected incremental profit
    # the gate's one-sided level: its chance of switching to uplift, per decision, when uplift is
    # no better than risk x value. The gate decides again each time new campaigns mature (monthly
    # lists: 12 decisions a year), so 0.05 / 12, rounded down, keeps the chance of any false
    # switch in a year at most 5% (Bonferroni); set 0.05 / (decisions a year) for other cadences
    # (benchmarks/results/uplift_gate_method_session5.md)
    false_switch_rate: float = Field(0.004, gt=0, le=0.05)
    bootstrap: int = Field(2000, ge=100)  # customer resamples behind the gate's bound
    # the baseline's risk model learns on at most N customers' snapshots (train.sample_customers'
    # stable id hash; null = all): what it reads follows N, not the population
    sample_customers: int | None = Field(100_000, ge=1000)
    seed: int = 0

    @model_validator(mode="after")
    def _enough_resamples(self) -> UpliftParams:
        # the bound is a bootstrap quantile at false_switch_rate: too few resamples beyond it
        # make it a coin toss
        beyond = self.bootstrap * self.false_switch_rate
        if beyond < MIN_RESAMPLES_BEYOND_BOUND:
            needed = math.ceil(MIN_RESAMPLES_BEYOND_BOUND / self.false_switch_rate)
            raise ValueError(
                f"bootstrap {self.bootstrap} with false_switch_rate {self.false_switch_rate} "
                f"leaves {beyond:.1f} resamples beyond the gate's bound; it needs at least "
                f"{MIN_RESAMPLES_BEYOND_BOUND}: raise bootstrap to {needed} or more"
            )
        return self


# --------------------------------------------------------------------------- root
class Params(Section):
    """All of params.yaml. Each stage receives only the sections it declares in dvc.yaml."""

    churn: ChurnParams = ChurnParams()
    engine: EngineParams = EngineParams()
    registry: RegistryParams = RegistryParams()
    generate: GenerateParams = GenerateParams()
    ingest: IngestParams = IngestParams()
    features: FeaturesParams = FeaturesParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    promote: PromoteParams = PromoteParams()
    score: ScoreParams = ScoreParams()
    drift: DriftParams = DriftParams()
    report: ReportParams = ReportParams()
    publish: PublishParams = PublishParams()
    app: AppParams = AppParams()
    backtest: BacktestParams = BacktestParams()
    retrain: RetrainParams = RetrainParams()
    uplift: UpliftParams = UpliftParams()

    @model_validator(mode="after")
    def _active_window_covers_a_report_period(self) -> Params:
        # A first purchase must keep a customer active until the end of its period, or they
        # could join and leave inside one period, unseen by customers at start/new/lost/at end.
        longest = REPORT_PERIOD_DAYS[self.report.period]
        if self.churn.active_within_days < longest:
            raise ValueError(
                f"churn.active_within_days = {self.churn.active_within_days} is shorter than a "
                f"{self.report.period} ({longest} days); raise it or choose a shorter report.period"
            )
        return self

    def select(self, *sections: str) -> StageParams:
        """Return a view holding only `sections`: a stage reads what dvc.yaml says it reads.

        A name is a whole section (`score`) or one key of a section (`score.tiers`, as dvc.yaml
        declares it): the stage then reads that key of the section and nothing else of it."""
        whole: dict[str, Section] = {}
        keys: dict[str, list[str]] = {}
        unknown = []
        for name in sections:
            section, _, key = name.partition(".")
            if section not in type(self).model_fields:
                unknown.append(name)
            elif not key:
                whole[section] = getattr(self, section)
            elif key not in type(getattr(self, section)).model_fields:
                unknown.append(name)
            else:
                keys.setdefault(section, []).append(key)
        if unknown:
            raise ValueError(f"no params section(s) or key(s) {unknown}")
        views: dict[str, Any] = {}
        for name in dict.fromkeys(n.partition(".")[0] for n in sections):
            views[name] = whole.get(name) or PartialSection(name, getattr(self, name), keys[name])
        return StageParams(views)

    @model_validator(mode="before")
    @classmethod
    def _sections_are_mappings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None:
                    raise ValueError(f"section '{key}' is empty; remove it or give it keys")
        return data


class PartialSection:
    """A params section of which a stage declares only some keys (`score.tiers` in dvc.yaml):
    reading another key of it is an error, as reading an undeclared section is."""

    def __init__(self, name: str, section: Section, keys: Iterable[str]) -> None:
        self._name = name
        self._section = section
        self._keys = tuple(keys)

    def __getattr__(self, key: str) -> Any:
        keys = self.__dict__.get("_keys", ())
        if key in keys:
            return getattr(self.__dict__["_section"], key)
        name = self.__dict__.get("_name", "?")
        raise AttributeError(
            f"params key '{name}.{key}' is not declared for this stage (it reads "
            f"{[f'{name}.{k}' for k in keys]} of section '{name}'); declare it in dvc.yaml and "
            "in churn.cli.STAGE_PARAMS"
        )


class StageParams:
    """The params sections one stage declares; reading any other section is an error (not None)."""

    def __init__(self, sections: dict[str, Section]) -> None:
        self._sections = dict(sections)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("_sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(
            f"params section {name!r} is not declared for this stage (it reads "
            f"{sorted(sections)}); declare it in dvc.yaml and in churn.cli.STAGE_PARAMS"
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Return the declared section names."""
        return tuple(self._sections)


def _suggest(loc: tuple[Any, ...], model: type[BaseModel]) -> str:
    """Return ' (did you mean ...?)' for a misspelt key, walking the model along loc."""
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None or not isinstance(field.annotation, type):
            return ""
        current = field.annotation
    names = list(getattr(current, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# keys that are gone, with what replaced them: the fix, not a "did you mean"
RETIRED: dict[tuple[str, ...], str] = {
    ("ledger",): "past campaign lists are no longer a param (a DVC stage must not write the "
    "published-lists record): import them once with `churn import-lists FILE` and delete the "
    "`ledger` section (ledger.past_lists)",
    ("backtest", "contact_log"): "the contact log is a path, written once in dvc.yaml: the ledger "
    "stage's `--contacts PATH` and PATH in its deps (the backtest reads the same); delete the key",
}


def format_validation_error(error: ValidationError, source: str) -> str:
    """Turn a pydantic error into lines naming the file, the key, the value and the fix."""
    lines = [f"{source}: {error.error_count()} invalid setting(s):"]
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "<top level>"
        if item["type"] == "extra_forbidden" and loc in RETIRED:
            lines.append(f"  - {key}: no longer read; {RETIRED[loc]}")
        elif item["type"] == "extra_forbidden":
            lines.append(
                f"  - {key}: unknown key{_suggest(loc, Params)}; remove it or fix its spelling"
            )
        else:
            value = item.get("input")
            shown = repr(value) if not isinstance(value, dict) else "{...}"
            lines.append(f"  - {key} = {shown}: {item['msg']}")
    return "\n".join(lines)


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ChurnError(
            f"{source}: expected a mapping of sections at the top, got {type(data).__name__}"
        )
    try:
        return Params.model_validate(data)
    except ValidationError as error:
        raise ChurnError(format_validation_error(error, source)) from None


def check_sections(path: str | Path, needed: set[str]) -> list[str]:
    """Return the sections params.yaml spells out; raise naming any section a stage reads that is
    missing (DVC would otherwise stop with its own message)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    missing = sorted(
        name
        for name in needed
        if not _spelt_out(data, name.split("."))  # dvc.yaml's `section.key` needs the key too
    )
    if missing:
        raise ChurnError(
            f"{path}: section(s) {missing} missing; dvc.yaml's stages read them — add them "
            "(the README lists every key with its default)"
        )
    return sorted(data)


def _spelt_out(data: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml once; raise ChurnError naming the file and key on any problem."""
    path = Path(path)
    if not path.exists():
        raise ChurnError(f"{path}: not found; run from the project folder or pass --params PATH")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ChurnError(f"{path}: not valid YAML: {error}") from None
    return parse_params(data, str(path))


def run_check(path: Path, out: Path | None, sections: Iterable[str]) -> None:
    """The `check` stage: validate params.yaml and that it spells out every section in `sections`
    (those dvc.yaml's stages read); write the stamp file every stage depends on to `out`."""
    from churn.files import write_json
    from churn.logs import get_logger

    settings = load_params(path)
    present = check_sections(path, set(sections))
    if out is not None:
        write_json({"params": str(path), "valid": True, "sections": present}, out)
    get_logger("check").info("%s: valid (%d sections)", path, len(type(settings).model_fields))
