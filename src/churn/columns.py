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

# scores, continued (score stage; the published at-risk lists carry a subset)
EXPECTED_VALUE = "expected_value"  # margin the customer would bring over score.expected_value_days
VALUE_AT_RISK = "value_at_risk"  # churn_probability x expected_value
EXPECTED_NET_BENEFIT = "expected_net_benefit"  # p x save_rate x expected_value - contact_cost
PRIORITY = "priority"  # 1 = contact first; ties broken by customer_id
AT_RISK = "at_risk"  # flagged by score.target (never when suppressed)
SUPPRESSED = "suppressed"  # on the suppression list (opted out, contacted recently)
GROUP = "group"  # treatment / control (held out to measure the campaign)
REASONS = "reasons"  # top drivers of this customer's risk in plain words, ' | '-separated
REASON_FAMILY = "reason_family"  # family of the main reason (recency, nps, ...)
SUGGESTED_ACTION = "suggested_action"

# core snapshot features the score stage reads by name
RECENCY_DAYS = "recency_days"
TENURE_DAYS = "tenure_days"
PURCHASES = "purchases"
PURCHASES_90D = "purchases_90d"
SPEND_TOTAL = "spend_total"
SPEND_90D = "spend_90d"
AOV = "aov"
GAP_MEAN_DAYS = "gap_mean_days"
