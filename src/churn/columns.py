"""Column names of every table the pipeline writes, defined once."""

# clean transactions (data/interim/transactions.parquet)
CUSTOMER_ID = "customer_id"
TIMESTAMP = "timestamp"  # local wall-clock time in ingest.timezone, tz-naive
DATE = "date"  # calendar date of TIMESTAMP in ingest.timezone: cutoffs compare against this
AMOUNT = "amount"  # positive = purchase, negative = refund, zero = kept and flagged
TRANSACTION_ID = "transaction_id"

# quarantine (data/interim/quarantine.parquet)
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

# features stage (data/features/*.parquet): core feature names every stage may rely on;
# the full list with definitions and units is churn.features.definitions.FEATURES and docs/features.md
RECENCY_DAYS = "recency_days"  # cutoff - last purchase date
TENURE_DAYS = "tenure_days"  # cutoff - first purchase date
PURCHASES = "purchases"  # rows with amount > 0
PURCHASE_DAYS = "purchase_days"  # distinct purchase dates
SPEND_TOTAL = "spend_total"
AOV = "aov"
SPEND_MAX = "spend_max"
SPEND_90D = "spend_90d"
PURCHASES_90D = "purchases_90d"
GAP_MEAN_DAYS = "gap_mean_days"
