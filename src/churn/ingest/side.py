"""Typing the optional side tables: the customers table and NPS survey answers.

Each table's row rules (the typed columns, each row's quarantine reason, the customers' dedupe,
the quarantined rows' detail) are SQL written once here in DuckDB's dialect: the DuckDB ingest
runs it on the opened source, churn.spark.side transpiles it to Spark SQL for typed sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from churn import columns as C
from churn.ingest.clean import (
    WHITESPACE,
    CleanedTable,
    amount_expr,
    control_detail,
    control_expr,
    formula_expr,
    id_expr,
    nullable,
    timestamp_expr,
)
from churn.ingest.rejects import Reason
from churn.ingest.sources import RawTable, fresh_name, ident, lit, resolve_columns

EARLIEST = date(1, 1, 1)


def _too_early(min_date: date) -> str:
    return (
        f" is before ingest.limits.min_date {min_date}: not a real date; fix the export (or "
        "lower the limit)"
    )


def _text(column: str) -> str:
    return f"nullif(trim(CAST({ident(column)} AS VARCHAR), {lit(WHITESPACE)}), '')"


def _shown(column: str) -> str:
    return f"coalesce('''' || left(CAST({ident(column)} AS VARCHAR), 80) || '''', 'empty')"


def _original(column: str) -> str:
    return f"CAST({ident(column)} AS VARCHAR)"


@dataclass(frozen=True)
class SideRules:
    """One side table's row rules as SQL in DuckDB's dialect, for either engine.

    `typed(relation)`: every row of `relation` (the source with __file and __row) with __file,
    __row, the typed columns (__cid, ...), the source columns as read and __reason (NULL:
    valid). `detail`: SQL of a quarantined row's detail, on __reason and the source columns
    (so the engine that words it reads the rows as the source holds them)."""

    table: str  # customers / nps
    customer_column: str  # the source column of the customer id
    source_columns: tuple[str, ...]  # the mapped source columns, each once
    typed_columns: str  # SELECT list of the typed columns, on the source
    reason: str  # CASE giving __reason, on the typed columns
    detail: str

    def typed(self, relation: str) -> str:
        """Return SQL of every row of `relation`, typed and given its reason."""
        originals = ", ".join(ident(c) for c in self.source_columns)
        return (
            f"SELECT *, {self.reason} AS __reason FROM (SELECT __file, __row, "
            f"{self.typed_columns}, {originals} FROM {relation}) AS typed_rows"
        )

    def quarantine(self, relation: str) -> str:
        """Return SQL of the quarantined rows of `relation` (typed, or the same rows as another
        engine wrote them: __file, __row, __reason and the source columns) in the quarantine
        schema."""
        return (
            f"SELECT {lit(self.table)} AS {ident(C.QUARANTINE_TABLE)}, __file AS "
            f"{C.SOURCE_FILE}, CAST(__row AS BIGINT) AS {C.SOURCE_ROW}, __reason AS {C.REASON}, "
            f"{self.detail} AS {C.DETAIL}, {_original(self.customer_column)} AS "
            f"{ident(C.CUSTOMER_ID)} FROM {relation} WHERE __reason IS NOT NULL"
        )


def mapped_columns(name: str, spec) -> list[str]:  # spec: config.CustomersSource / NpsSource
    """Return the source columns a side table's params map, each a column every file of its
    source must hold (name: customers / nps; customers: the id, then the optional ones mapped)."""
    columns = spec.columns
    if name == "customers":
        optional = (columns.signup_date, columns.channel, columns.region)
        return [columns.customer_id, *(c for c in optional if c)]
    return [columns.customer_id, columns.answered_at, columns.score]


def customers_columns(raw: RawTable, spec) -> dict[str, str]:  # spec: config.CustomersSource
    """Return canonical name -> source column of the customers table (ChurnError when one
    mapped in ingest.customers.columns is missing)."""
    mapping = {C.CUSTOMER_ID: spec.columns.customer_id}
    for key in (C.SIGNUP_DATE, C.CHANNEL, C.REGION):
        if getattr(spec.columns, key):
            mapping[key] = getattr(spec.columns, key)
    return resolve_columns(raw, mapping, "ingest.customers.columns")


def customers_rules(
    src: dict[str, str], types: dict[str, str], spec, zone: str, label: str, min_date: date
) -> SideRules:
    """Return the customers' row rules (src: customers_columns; types: source column -> DuckDB
    type name): an id, a signup date, channel and region text."""
    cust = src[C.CUSTOMER_ID]
    signup = src.get(C.SIGNUP_DATE)
    signup_sql = (
        f"CAST({timestamp_expr(signup, types[signup], spec.date_format, spec.dayfirst, zone, label)}"
        " AS DATE)"
        if signup
        else "CAST(NULL AS DATE)"
    )
    text_cols = {
        key: (_text(src[key]) if key in src else "CAST(NULL AS VARCHAR)")
        for key in (C.CHANNEL, C.REGION)
    }
    signup_text = _text(signup) if signup else "CAST(NULL AS VARCHAR)"
    signup_shown = _shown(signup) if signup else "''"
    typed_columns = (
        f"{id_expr(cust, types[cust])} AS __cid, {signup_sql} AS __signup, "
        f"{text_cols[C.CHANNEL]} AS __channel, {text_cols[C.REGION]} AS __region, "
        f"{signup_text} AS __signup_text"
    )
    reason = f"""CASE
            WHEN __cid IS NULL THEN '{Reason.MISSING_CUSTOMER_ID}'
            WHEN {formula_expr("__cid")} THEN '{Reason.FORMULA_CUSTOMER_ID}'
            WHEN {control_expr("__cid")} THEN '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}'
            WHEN __signup_text IS NOT NULL AND __signup IS NULL THEN '{Reason.UNPARSEABLE_DATE}'
            WHEN __signup < DATE {lit(min_date.isoformat())} THEN '{Reason.DATE_OUT_OF_RANGE}'
        END"""
    detail = f"""CASE __reason
                WHEN '{Reason.MISSING_CUSTOMER_ID}' THEN {lit(f"column '{cust}' is empty")}
                WHEN '{Reason.FORMULA_CUSTOMER_ID}' THEN {lit(f"column '{cust}' value '")}
                    || {_original(cust)} || ''' starts with = + - or @'
                WHEN '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}'
                    THEN {control_detail(cust, _original(cust))}
                WHEN '{Reason.DATE_OUT_OF_RANGE}' THEN {lit(f"column '{signup}' value ")}
                    || {signup_shown} || {lit(_too_early(min_date))}
                ELSE {lit(f"column '{signup}' value ")} || {signup_shown} || {
        lit(" is not a date (set ingest.customers.date_format or dayfirst)")
    }
            END"""
    return SideRules(
        "customers", cust, tuple(dict.fromkeys(src.values())), typed_columns, reason, detail
    )


def customers_repeats_sql(typed: str) -> str:
    """Return SQL of the valid rows repeating an earlier row's customer id (__file, __row,
    __cid, and whether they say something else than the first row of their id: conflicting);
    a repeated id keeps its first row."""
    first = "first_value({0}) OVER w"
    differs = " OR ".join(
        f"{c} IS DISTINCT FROM {first.format(c)}" for c in ("__signup", "__channel", "__region")
    )
    return f"""SELECT __file, __row, __cid, conflicting FROM (
            SELECT __file, __row, __cid, row_number() OVER w AS rn, ({differs}) AS conflicting
            FROM {typed} WHERE __reason IS NULL
            WINDOW w AS (PARTITION BY __cid ORDER BY __file, __row)) AS numbered WHERE rn > 1"""


def customers_repeats_count_sql(repeats: str) -> str:
    """Return SQL of (repeats, conflicting repeats, the smallest conflicting id)."""
    return (
        "SELECT count(*), count(*) FILTER (WHERE conflicting), "
        f"min(__cid) FILTER (WHERE conflicting) FROM {repeats}"
    )


def customers_clean_sql(typed: str, repeats: str, ordered: bool = True) -> str:
    """Return SQL of the clean customers: valid rows but the repeats, one per id (by id when
    `ordered`)."""
    return f"""SELECT {nullable("t.__cid")} AS {ident(C.CUSTOMER_ID)},
            {nullable("t.__signup")} AS {ident(C.SIGNUP_DATE)},
            {nullable("t.__channel")} AS {ident(C.CHANNEL)},
            {nullable("t.__region")} AS {ident(C.REGION)}
        FROM {typed} t ANTI JOIN {repeats} d ON t.__file = d.__file AND t.__row = d.__row
        WHERE t.__reason IS NULL{" ORDER BY t.__cid" if ordered else ""}"""


def customers_stats(
    label: str, cust: str, conflicting: int, example: str | None
) -> dict[str, object]:
    """Return the customers' report counters and the warning about conflicting repeats."""
    stats: dict[str, object] = {"duplicate_ids_conflicting": int(conflicting)}
    if conflicting:
        stats["warnings"] = [
            f"{label}: {conflicting} repeated rows of customer ids in column {cust!r} differ "
            f"from the first row of their id (e.g. {example!r}); the first is kept. Export one "
            "row per customer (the current one)"
        ]
    return stats


def nps_columns(raw: RawTable, spec) -> dict[str, str]:  # spec: config.NpsSource
    """Return canonical name -> source column of the NPS answers (ChurnError when missing)."""
    return resolve_columns(
        raw,
        {
            C.CUSTOMER_ID: spec.columns.customer_id,
            C.ANSWERED_AT: spec.columns.answered_at,
            C.NPS_SCORE: spec.columns.score,
        },
        "ingest.nps.columns",
    )


def nps_rules(
    src: dict[str, str],
    types: dict[str, str],
    spec,
    zone: str,
    label: str,
    reject_after: datetime,
    min_date: date,
) -> SideRules:
    """Return the NPS answers' row rules: an id, an answer time, an integer score 0-10."""
    cust, answered, score = src[C.CUSTOMER_ID], src[C.ANSWERED_AT], src[C.NPS_SCORE]
    answered_ts = timestamp_expr(
        answered, types[answered], spec.date_format, spec.dayfirst, zone, label
    )
    score_sql = amount_expr(score, types[score], ".", None, label)
    reject = lit(reject_after.strftime("%Y-%m-%d %H:%M:%S.%f"))
    typed_columns = (
        f"{id_expr(cust, types[cust])} AS __cid, {answered_ts} AS __answered, "
        f"{score_sql} AS __score, {_text(answered)} AS __answered_text, "
        f"{_text(score)} AS __score_text"
    )
    reason = f"""CASE
            WHEN __cid IS NULL THEN '{Reason.MISSING_CUSTOMER_ID}'
            WHEN {formula_expr("__cid")} THEN '{Reason.FORMULA_CUSTOMER_ID}'
            WHEN {control_expr("__cid")} THEN '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}'
            WHEN __answered_text IS NULL THEN '{Reason.MISSING_DATE}'
            WHEN __answered IS NULL THEN '{Reason.UNPARSEABLE_DATE}'
            WHEN __answered > CAST({reject} AS TIMESTAMP) THEN '{Reason.FUTURE_DATE}'
            WHEN __answered < CAST({lit(min_date.isoformat())} AS TIMESTAMP)
                THEN '{Reason.DATE_OUT_OF_RANGE}'
            WHEN __score_text IS NULL THEN '{Reason.MISSING_SCORE}'
            WHEN __score IS NULL THEN '{Reason.NON_NUMERIC_SCORE}'
            WHEN NOT isfinite(__score) OR __score <> round(__score) OR __score < 0
                 OR __score > 10 THEN '{Reason.SCORE_OUT_OF_RANGE}'
        END"""
    detail = f"""CASE
                WHEN __reason = '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}'
                    THEN {control_detail(cust, _original(cust))}
                WHEN __reason IN ('{Reason.MISSING_CUSTOMER_ID}', '{Reason.FORMULA_CUSTOMER_ID}')
                    THEN {lit(f"column '{cust}' value '")} || coalesce({_original(cust)}, '')
                    || ''''
                WHEN __reason = '{Reason.DATE_OUT_OF_RANGE}'
                    THEN {lit(f"column '{answered}' value ")} || {_shown(answered)}
                    || {lit(_too_early(min_date))}
                WHEN __reason IN ('{Reason.MISSING_DATE}', '{Reason.UNPARSEABLE_DATE}',
                                  '{Reason.FUTURE_DATE}')
                    THEN {lit(f"column '{answered}' value ")} || {_shown(answered)}
                ELSE {lit(f"column '{score}' value ")} || {_shown(score)}
                    || ' is not an integer from 0 to 10'
            END"""
    return SideRules("nps", cust, tuple(dict.fromkeys(src.values())), typed_columns, reason, detail)


def nps_clean_sql(typed: str, ordered: bool = True) -> str:
    """Return SQL of the clean NPS answers (repeated answers kept; sorted when `ordered`)."""
    order = " ORDER BY __cid, __answered, __score, __file, __row" if ordered else ""
    return f"""SELECT {nullable("__cid")} AS {ident(C.CUSTOMER_ID)},
            {nullable("CAST(__answered AS DATE)")} AS {ident(C.ANSWERED_AT)},
            {nullable("CAST(__score AS INTEGER)")} AS {ident(C.NPS_SCORE)}
        FROM {typed} WHERE __reason IS NULL{order}"""


def _malformed_sql(raw: RawTable, table: str) -> str | None:
    if raw.malformed is None:
        return None
    return (
        f"SELECT {lit(table)} AS {ident(C.QUARANTINE_TABLE)}, __file AS {C.SOURCE_FILE}, CAST(__row AS BIGINT) AS {C.SOURCE_ROW}, "
        f"'{Reason.MALFORMED_LINE}' AS {C.REASON}, "
        f"'line ' || (__row + 1) || ': ' || error || ': ' || left(raw_line, 200) AS {C.DETAIL} "
        f"FROM {raw.malformed}"
    )


def _finish(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    table: str,
    typed: str,
    clean_sql: str,
    quarantine_sql: str,
    duplicates: int,
    stats: dict[str, object] | None = None,
    count_sql: str | None = None,
) -> CleanedTable:
    """Return the CleanedTable of a typed side table, its rows counted in `count_sql` (the clean
    rows unsorted: the same rows as `clean_sql`, without paying for the sort twice)."""
    reasons = dict(
        con.execute(
            f"SELECT __reason, count(*) FROM {typed} WHERE __reason IS NOT NULL GROUP BY ALL"
        ).fetchall()
    )
    malformed = _malformed_sql(raw, table)
    if malformed:
        (n_bad,) = con.execute(f"SELECT count(*) FROM {raw.malformed}").fetchone()
        reasons[str(Reason.MALFORMED_LINE)] = int(n_bad)
        quarantine_sql = f"{quarantine_sql} UNION ALL BY NAME {malformed}"
    (rows_clean, customers) = con.execute(
        f"SELECT count(*), count(DISTINCT {C.CUSTOMER_ID}) FROM ({count_sql or clean_sql})"
    ).fetchone()
    result = CleanedTable(
        name=table,
        clean_sql=clean_sql,
        quarantine_sql=quarantine_sql,
        rows_read=raw.rows_read,
        quarantined_by_reason={str(k): int(v) for k, v in sorted(reasons.items())},
        duplicates_removed=int(duplicates),
        stats={"rows_clean": int(rows_clean), "customers": int(customers), **(stats or {})},
    )
    result.assert_rows_conserved()
    return result


def clean_customers(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    spec,  # churn.config.CustomersSource
    zone: str,
    min_date: date = EARLIEST,
) -> CleanedTable:
    """Type the customers table: one row per customer id (first kept), signup date as a date."""
    src = customers_columns(raw, spec)
    rules = customers_rules(src, raw.types, spec, zone, raw.label, min_date)
    typed = fresh_name("customers_typed")
    con.execute(f"CREATE TEMP TABLE {typed} AS {rules.typed(raw.relation)}")
    repeats = fresh_name("customers_dups")
    # One row per customer is the usual export: one hash aggregate proves every valid id unique,
    # and then the window numbering each id's rows (a sort of the whole table) has nothing to find.
    valid, ids = con.execute(
        f"SELECT count(*), count(DISTINCT __cid) FROM {typed} WHERE __reason IS NULL"
    ).fetchone()
    if valid == ids:
        con.execute(
            f"CREATE TEMP TABLE {repeats} AS SELECT __file, __row, __cid, false AS conflicting "
            f"FROM {typed} WHERE false"
        )
    else:
        con.execute(f"CREATE TEMP TABLE {repeats} AS {customers_repeats_sql(typed)}")
    duplicates, conflicting, example = con.execute(customers_repeats_count_sql(repeats)).fetchone()
    stats = customers_stats(raw.label, src[C.CUSTOMER_ID], conflicting, example)
    clean_sql = customers_clean_sql(typed, repeats)
    return _finish(
        con, raw, "customers", typed, clean_sql, rules.quarantine(typed), duplicates, stats,
        customers_clean_sql(typed, repeats, ordered=False),
    )  # fmt: skip


def clean_nps(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    spec,  # churn.config.NpsSource
    zone: str,
    reject_after: datetime,
    min_date: date = EARLIEST,
) -> CleanedTable:
    """Type NPS answers: a date and an integer score 0-10 per row; repeated answers are kept."""
    src = nps_columns(raw, spec)
    rules = nps_rules(src, raw.types, spec, zone, raw.label, reject_after, min_date)
    typed = fresh_name("nps_typed")
    con.execute(f"CREATE TEMP TABLE {typed} AS {rules.typed(raw.relation)}")
    return _finish(
        con, raw, "nps", typed, nps_clean_sql(typed), rules.quarantine(typed), 0, None,
        nps_clean_sql(typed, ordered=False),
    )  # fmt: skip
