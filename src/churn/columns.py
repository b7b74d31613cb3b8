"""Column names of every table the pipeline writes, defined once."""

# clean transactions (data/interim/transactions.parquet)
CUSTOMER_ID = "customer_id"
TIMESTAMP = "timestamp"  # local wall-clock time in ingest.timezone, tz-naive
DATE = "date"  # calendar date of TIMESTAMP in ingest.timezone: cutoffs compare against this
AMOUNT = "amount"  # positive = purchase, negative = refund, zero = kept and flagged
TRANSACTION_ID = "transaction_id"

# quarantine (data/interim/quarantine.parquet)
QUARANTINE_TABLE = "table"  # transactions / customers / nps
SOURCE_FILE = "source_file"
SOURCE_ROW = "source_row"  # 1-based data row in the source (header not counted)
REASON = "reason"
DETAIL = "detail"

# optional customers table (data/interim/customers.parquet)
SIGNUP_DATE = "signup_date"
CHANNEL = "channel"
REGION = "region"

# optional NPS answers (data/interim/nps.parquet)
ANSWERED_AT = "answered_at"
NPS_SCORE = "nps_score"

# snapshots (data/features/*.parquet)
CUTOFF = "cutoff"
CHURNED = "churned"
ROLE = "role"  # fit / calibration / test for training cutoffs; score for the as-of snapshot
AS_OF = "as_of"

# scores (data/scores/scores.parquet)
CHURN_PROBABILITY = "churn_probability"
RISK_TIER = "risk_tier"
MODEL_VERSION = "model_version"
