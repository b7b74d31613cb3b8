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

# report stage: score columns it reads (data/scores/scores.parquet; names from the score contract)
EXPECTED_VALUE = "expected_value"
VALUE_AT_RISK = "value_at_risk"  # churn probability x expected value
AT_RISK = "at_risk"
GROUP = "group"  # treatment / control

# report stage outputs (reports/retention_monthly.csv, reports/cohorts.csv)
PERIOD = "period"  # human label: 'Mar 2024', 'Q1 2024', 'wk 2024-03-04'
PERIOD_START = "period_start"
PERIOD_END = "period_end"
WARM_UP = "warm_up"  # less than active_within_days of data before the period: CS undercounted
CUSTOMERS_START = "customers_start"  # CS: active at the end of the day before the period
CUSTOMERS_NEW = "customers_new"  # CN: active at the end, not at the start (incl. won back)
CUSTOMERS_WON_BACK = "customers_won_back"  # of CN: had bought before, lapsed, came back
CUSTOMERS_LOST = "customers_lost"  # active at the start, not at the end
CUSTOMERS_END = "customers_end"  # CE: active at the period's last day
RETENTION_RATE_PCT = "retention_rate_pct"  # (CE - CN) / CS x 100
CHURN_RATE_PCT = "churn_rate_pct"  # lost / CS x 100
COHORT = "cohort"
COHORT_START = "cohort_start"
COHORT_SIZE = "cohort_size"
PERIODS_SINCE_FIRST = "periods_since_first"
RETENTION_PCT = "retention_pct"
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
# time of year of the cutoff (features.season): the same for every customer at a cutoff, so they
# are never a customer's reason and never drift-checked (the as-of snapshot has one value)
SEASON_SIN = "season_sin"
SEASON_COS = "season_cos"
CALENDAR_FEATURES = (SEASON_SIN, SEASON_COS)

# scores, continued (score stage; the published at-risk lists carry a subset). EXPECTED_VALUE
# (margin over score.expected_value_days), VALUE_AT_RISK, AT_RISK (flagged by score.target, never
# when suppressed) and GROUP (treatment / control) are defined above with the report's columns.
EXPECTED_NET_BENEFIT = "expected_net_benefit"  # p x save_rate x expected_value - contact_cost
PRIORITY = "priority"  # 1 = contact first; ties broken by customer_id
SUPPRESSED = "suppressed"  # on the suppression list (opted out, contacted recently)
REASONS = "reasons"  # top drivers of this customer's risk in plain words, ' | '-separated
REASON_SEPARATOR = " | "  # between two reasons in the reasons column
REASON_FAMILY = "reason_family"  # family of the main reason (recency, nps, ...)
SUGGESTED_ACTION = "suggested_action"

# backtest: optional contact log (who marketing really reached, and when)
CONTACTED_AT = "contacted_at"  # contact log: when marketing really reached the customer
CONTACT_ACTION = "action"  # contact log, optional: the action really taken (offer, call, ...)
CONTACT_CHANNEL = "channel"  # contact log, optional: how the customer was reached (e-mail, phone)
CONTACT_COST = "cost"  # contact log, optional: what this contact cost, in the margin's currency

# uplift: matured randomized campaign rows (one per customer and campaign; churn.uplift.data)
CAMPAIGN_ID = "campaign_id"  # one published list's campaign
CAMPAIGN_DATE = "campaign_date"  # the list's as_of date: features and risk are as of this day
LABEL_END = "label_end"  # last day of the label window (campaign_date + horizon)
TREATED = "treated"  # 1 = assigned to be contacted, 0 = the list's random control group
CONTROL_SHARE = "control_share"  # the list's control share: P(treated) = 1 - control_share
RETAINED = "retained"  # 1 = bought again inside the label window (not churned)
ASSIGNED_ACTION = "action"  # optional: the action assigned to a treated customer
COVERED = "covered"  # candidates: in the population past lists flagged (the learner's support)
UPLIFT = "uplift"  # estimated incremental retention from a contact (probability points / 100)
EXPECTED_INCREMENTAL_PROFIT = "expected_incremental_profit"  # uplift x expected_value - cost
CONTACT = "contact"  # the uplift policy contacts this customer
EXPLORE = "explore"  # contacted at random outside the covered population (exploration share)
