"""The ingest stage: read a source, type and check its rows, quarantine bad ones, report."""

from churn.ingest.checks import CheckResult, check_freshness, check_quarantine_share, check_volume
from churn.ingest.clean import CleanedTable, clean_transactions
from churn.ingest.rejects import Reason
from churn.ingest.side import clean_customers, clean_nps
from churn.ingest.sources import RawTable, open_source
from churn.ingest.sql import copy_sql_source, mask_url, resolve_sql_url
from churn.ingest.stage import IngestOutputs, run_ingest

__all__ = [
    "CheckResult",
    "CleanedTable",
    "IngestOutputs",
    "RawTable",
    "Reason",
    "check_freshness",
    "check_quarantine_share",
    "check_volume",
    "clean_customers",
    "clean_nps",
    "clean_transactions",
    "mask_url",
    "open_source",
    "resolve_sql_url",
    "run_ingest",
    "copy_sql_source",
]
