"""Typing the optional side tables: the customers table and NPS survey answers."""

from __future__ import annotations

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
) -> CleanedTable:
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
        f"SELECT count(*), count(DISTINCT {C.CUSTOMER_ID}) FROM ({clean_sql})"
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
    mapping = {C.CUSTOMER_ID: spec.columns.customer_id}
    for key in (C.SIGNUP_DATE, C.CHANNEL, C.REGION):
        if getattr(spec.columns, key):
            mapping[key] = getattr(spec.columns, key)
    src = resolve_columns(raw, mapping, "ingest.customers.columns")
    cust = src[C.CUSTOMER_ID]
    signup = src.get(C.SIGNUP_DATE)
    t = raw.types
    signup_sql = (
        f"CAST({timestamp_expr(signup, t[signup], spec.date_format, spec.dayfirst, zone, raw.label)}"
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
    typed = fresh_name("customers_typed")
    con.execute(
        f"""CREATE TEMP TABLE {typed} AS
        SELECT *, CASE
            WHEN __cid IS NULL THEN '{Reason.MISSING_CUSTOMER_ID}'
            WHEN {formula_expr("__cid")} THEN '{Reason.FORMULA_CUSTOMER_ID}'
            WHEN {control_expr("__cid")} THEN '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}'
            WHEN __signup_text IS NOT NULL AND __signup IS NULL THEN '{Reason.UNPARSEABLE_DATE}'
            WHEN __signup < DATE {lit(min_date.isoformat())} THEN '{Reason.DATE_OUT_OF_RANGE}'
        END AS __reason FROM (
            SELECT __file, __row, {id_expr(cust, t[cust])} AS __cid, {signup_sql} AS __signup,
                   {text_cols[C.CHANNEL]} AS __channel, {text_cols[C.REGION]} AS __region,
                   CAST({ident(cust)} AS VARCHAR) AS __orig_cid,
                   {signup_shown} AS __signup_shown, {signup_text} AS __signup_text
            FROM {raw.relation})"""
    )
    dups = fresh_name("customers_dups")
    # a repeated id keeps its first row; repeats that say something else are counted and named
    con.execute(
        f"""CREATE TEMP TABLE {dups} AS SELECT __file, __row, __cid, conflicting FROM (
            SELECT __file, __row, __cid, row_number() OVER w AS rn,
                   (__signup, __channel, __region) IS DISTINCT FROM
                   first_value((__signup, __channel, __region)) OVER w AS conflicting
            FROM {typed} WHERE __reason IS NULL
            WINDOW w AS (PARTITION BY __cid ORDER BY __file, __row)) WHERE rn > 1"""
    )
    duplicates, conflicting, example = con.execute(
        f"SELECT count(*), count(*) FILTER (conflicting), min(__cid) FILTER (conflicting) "
        f"FROM {dups}"
    ).fetchone()
    clean_sql = f"""SELECT {nullable("t.__cid")} AS {ident(C.CUSTOMER_ID)},
            {nullable("t.__signup")} AS {ident(C.SIGNUP_DATE)},
            {nullable("t.__channel")} AS {ident(C.CHANNEL)},
            {nullable("t.__region")} AS {ident(C.REGION)}
        FROM {typed} t ANTI JOIN {dups} d ON t.__file = d.__file AND t.__row = d.__row
        WHERE t.__reason IS NULL ORDER BY t.__cid"""
    quarantine_sql = f"""SELECT 'customers' AS {ident(C.QUARANTINE_TABLE)}, __file AS {
        C.SOURCE_FILE
    },
            CAST(__row AS BIGINT) AS {C.SOURCE_ROW}, __reason AS {C.REASON},
            CASE __reason
                WHEN '{Reason.MISSING_CUSTOMER_ID}' THEN {lit(f"column '{cust}' is empty")}
                WHEN '{Reason.FORMULA_CUSTOMER_ID}' THEN {lit(f"column '{cust}' value '")}
                    || __orig_cid || ''' starts with = + - or @'
                WHEN '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}'
                    THEN {control_detail(cust, "__orig_cid")}
                WHEN '{Reason.DATE_OUT_OF_RANGE}' THEN {lit(f"column '{signup}' value ")}
                    || __signup_shown || {lit(_too_early(min_date))}
                ELSE {lit(f"column '{signup}' value ")} || __signup_shown || {
        lit(" is not a date (set ingest.customers.date_format or dayfirst)")
    }
            END AS {C.DETAIL}, __orig_cid AS {ident(C.CUSTOMER_ID)}
        FROM {typed} WHERE __reason IS NOT NULL"""
    stats: dict[str, object] = {"duplicate_ids_conflicting": int(conflicting)}
    if conflicting:
        stats["warnings"] = [
            f"{raw.label}: {conflicting} repeated rows of customer ids in column {cust!r} differ "
            f"from the first row of their id (e.g. {example!r}); the first is kept. Export one "
            "row per customer (the current one)"
        ]
    return _finish(con, raw, "customers", typed, clean_sql, quarantine_sql, duplicates, stats)


def clean_nps(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    spec,  # churn.config.NpsSource
    zone: str,
    reject_after: datetime,
    min_date: date = EARLIEST,
) -> CleanedTable:
    """Type NPS answers: a date and an integer score 0-10 per row; repeated answers are kept."""
    src = resolve_columns(
        raw,
        {
            C.CUSTOMER_ID: spec.columns.customer_id,
            C.ANSWERED_AT: spec.columns.answered_at,
            C.NPS_SCORE: spec.columns.score,
        },
        "ingest.nps.columns",
    )
    t = raw.types
    cust, answered, score = src[C.CUSTOMER_ID], src[C.ANSWERED_AT], src[C.NPS_SCORE]
    answered_ts = timestamp_expr(
        answered, t[answered], spec.date_format, spec.dayfirst, zone, raw.label
    )
    score_sql = amount_expr(score, t[score], ".", None, raw.label)
    reject = lit(reject_after.strftime("%Y-%m-%d %H:%M:%S.%f"))
    typed = fresh_name("nps_typed")
    con.execute(
        f"""CREATE TEMP TABLE {typed} AS
        SELECT *, CASE
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
        END AS __reason FROM (
            SELECT __file, __row, {id_expr(cust, t[cust])} AS __cid, {answered_ts} AS __answered,
                   {score_sql} AS __score, CAST({ident(cust)} AS VARCHAR) AS __orig_cid,
                   {_shown(answered)} AS __answered_shown, {_shown(score)} AS __score_shown,
                   {_text(answered)} AS __answered_text, {_text(score)} AS __score_text
            FROM {raw.relation})"""
    )
    clean_sql = f"""SELECT {nullable("__cid")} AS {ident(C.CUSTOMER_ID)},
            {nullable("CAST(__answered AS DATE)")} AS {ident(C.ANSWERED_AT)},
            {nullable("CAST(__score AS INTEGER)")} AS {ident(C.NPS_SCORE)}
        FROM {typed} WHERE __reason IS NULL ORDER BY __cid, __answered, __score, __file, __row"""
    quarantine_sql = f"""SELECT 'nps' AS {ident(C.QUARANTINE_TABLE)}, __file AS {C.SOURCE_FILE},
            CAST(__row AS BIGINT) AS {C.SOURCE_ROW}, __reason AS {C.REASON},
            CASE
                WHEN __reason = '{Reason.CONTROL_CHARACTER_CUSTOMER_ID}'
                    THEN {control_detail(cust, "__orig_cid")}
                WHEN __reason IN ('{Reason.MISSING_CUSTOMER_ID}', '{Reason.FORMULA_CUSTOMER_ID}')
                    THEN {lit(f"column '{cust}' value '")} || coalesce(__orig_cid, '') || ''''
                WHEN __reason = '{Reason.DATE_OUT_OF_RANGE}'
                    THEN {lit(f"column '{answered}' value ")} || __answered_shown
                    || {lit(_too_early(min_date))}
                WHEN __reason IN ('{Reason.MISSING_DATE}', '{Reason.UNPARSEABLE_DATE}',
                                  '{Reason.FUTURE_DATE}')
                    THEN {lit(f"column '{answered}' value ")} || __answered_shown
                ELSE {lit(f"column '{score}' value ")} || __score_shown
                    || ' is not an integer from 0 to 10'
            END AS {C.DETAIL}, __orig_cid AS {ident(C.CUSTOMER_ID)}
        FROM {typed} WHERE __reason IS NOT NULL"""
    return _finish(con, raw, "nps", typed, clean_sql, quarantine_sql, 0)
