"""Reason codes for quarantined rows: one short stable code per kind of row-level problem."""

from enum import StrEnum


class Reason(StrEnum):
    """Why a row was quarantined; the value is what quarantine.parquet and the report show."""

    MALFORMED_LINE = (
        "malformed_line"  # the CSV parser could not split the line into the header's columns
    )
    MISSING_CUSTOMER_ID = "missing_customer_id"
    FORMULA_CUSTOMER_ID = "formula_customer_id"  # starts with = + - @ (spreadsheet injection)
    CONTROL_CHARACTER_CUSTOMER_ID = "control_character_customer_id"  # U+0000-001F, U+007F-009F
    MISSING_TIMESTAMP = "missing_timestamp"
    UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"  # later than ingest.reject_after
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"  # before ingest.limits.min_date
    MISSING_AMOUNT = "missing_amount"
    NON_NUMERIC_AMOUNT = "non_numeric_amount"
    NON_FINITE_AMOUNT = "non_finite_amount"  # NaN or +/-inf
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"  # |amount| above ingest.limits.max_abs_amount
    REUSED_TRANSACTION_ID = "reused_transaction_id"  # the id names orders of other customers/dates
    MISSING_DATE = "missing_date"  # side tables (customers, NPS)
    UNPARSEABLE_DATE = "unparseable_date"
    FUTURE_DATE = "future_date"
    DATE_OUT_OF_RANGE = "date_out_of_range"  # before ingest.limits.min_date
    MISSING_SCORE = "missing_score"
    NON_NUMERIC_SCORE = "non_numeric_score"
    SCORE_OUT_OF_RANGE = "score_out_of_range"  # not an integer 0-10
