"""The campaign ledger: every published list's campaign, measured by its random assignment.

Each published list splits its flagged customers at random (by id hash) into treatment (to be
contacted) and control (kept apart). Once the list's horizon has passed, the ledger compares the
retention of the two groups: per list, per suggested action, per risk tier and per download (the
customers downloaded to be contacted against the control members of the same filter). Effects
come only from that random split, never from flagged against unflagged customers, who differ in
risk by construction. The contact log says who was really reached (compliance) and what the
contacts cost. Lists churn published (origin "churn") and past campaign lists imported into the
record (origin "imported", by `churn import-lists`) are measured the same way.

The `ledger` stage also writes two tables (dvc.yaml names their paths):

- **The uplift table** (`data/ledger/uplift.parquet`, UPLIFT_* below): one row per customer of
  every *matured* list (flagged customers of churn's lists; every customer of an imported list),
  for an uplift learner. Columns: `list_id` (imported id, or `churn-<as_of>-<sha12>`),
  `list_date` (date), `origin` (churn / imported), `horizon_days`, `customer_id`, `group`
  (treatment / control: the random assignment), `treated` (1 = treatment), `suggested_action`,
  `risk_tier` (null when the list has none), `churned` (1 = no purchase in (list_date,
  list_date + horizon]), `retained` (1 - churned), `value` (expected margin if kept, by the
  score stage's formula on the features at the list date, `score.*`; a list's own
  expected_value when it has one), `contacted` (the contact log has a contact in [list_date,
  list_date + horizon]; null without a log), `has_features` (false when the customer was not
  eligible at the list date: their feature columns are null), then every feature of the
  features stage's contract (docs/features.md) computed at the list date, point in time (data
  dated <= list_date only). Rows are sorted by list_date, list_id, customer_id. Effects must be
  estimated within a list (treated vs control of the same list_id): lists differ in rule and risk.
- **The contacted table** (`data/ledger/contacted.parquet`): the treatment-group members of every
  list dated before the newest data date, matured or not (`customer_id`, `list_id`, `list_date`,
  `horizon_days`): the train stage leaves out training rows whose label window overlaps a
  campaign that targeted the customer (a later list cannot overlap a labelled window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from churn.backtest import (
    churned_after,
    compare_groups,
    contacted_within,
    outcome_window,
    purchase_dates,
    within_days,
)
from churn.columns import (
    AT_RISK,
    CONTACT_ACTION,
    CONTACT_CHANNEL,
    CONTACT_COST,
    CONTACTED_AT,
    CUSTOMER_ID,
    DATE,
    EXPECTED_VALUE,
    GROUP,
    RISK_TIER,
    SUGGESTED_ACTION,
)
from churn.cutoffs import label_end, labelled_by
from churn.errors import ChurnError
from churn.ids import ids_in
from churn.score.targeting import CONTROL, TREATMENT

COLLECTING = "collecting"  # the horizon has not passed: outcomes still coming in
INCONCLUSIVE = "inconclusive"  # the interval of the difference includes 0 (or a group is empty)
SEPARATED = "separated"  # the interval excludes 0: treated and control retention differ
NONE_LABEL = "(none)"  # a flagged customer without a suggested action or tier
NO_CAMPAIGN = (
    "no campaign is known to have used this list (no download recorded, no treated customer in "
    "the contact log): the difference checks the random split, it is not a campaign's effect"
)
EFFECT = (
    "retention of flagged treatment customers minus flagged control customers of the same list "
    "(intention to treat: every customer assigned to be contacted, reached or not)"
)


@dataclass(frozen=True)
class PublishedList:
    """One published list as the ledger reads it from the record."""

    manifest: Mapping[str, Any]  # the list's manifest (as_of, model_version, sha256, ...)
    horizon_days: int  # the horizon of the model that scored it
    scored: pd.DataFrame  # every customer scored for it (flagged or not), with group
    downloads: Sequence[Mapping[str, Any]] = field(default_factory=tuple)  # download records


# --------------------------------------------------------------------------- one comparison
def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else round(value * scale, 2)


def status_of(measurement: Mapping[str, Any]) -> str:
    """Return "separated" when the interval of the difference excludes 0, else "inconclusive"."""
    low, high = measurement.get("ci_low"), measurement.get("ci_high")
    if low is None or high is None:
        return INCONCLUSIVE
    return SEPARATED if low > 0 or high < 0 else INCONCLUSIVE


def measure_effect(
    churned_treated: np.ndarray,
    churned_control: np.ndarray,
    value_treated: np.ndarray | None,
    confidence: float,
    cost: float | None = None,
) -> dict[str, Any]:
    """Return retention of treated vs control customers with what the difference is worth.

    `retention_difference` (treated minus control) has a Newcombe interval. Incremental customers
    kept = difference x treated customers; incremental margin = difference x the treated
    customers' summed expected value (their margin if kept; this assumes the effect does not vary
    with value); both carry the difference's interval scaled the same way. With the contact cost
    of the treated customers, return on cost = (incremental margin - cost) / cost. Without
    expected values (`value_treated` None) margin and return are None.
    """
    groups = compare_groups(churned_treated, churned_control, confidence, ("treated", "control"))
    groups.pop("significant")
    treated = int(churned_treated.size)
    value = None if value_treated is None else float(np.nansum(value_treated))
    difference, low, high = groups["retention_difference"], groups["ci_low"], groups["ci_high"]
    result: dict[str, Any] = {
        **groups,
        "status": status_of(groups),
        "incremental_customers": _scaled(difference, treated),
        "incremental_customers_ci": [_scaled(low, treated), _scaled(high, treated)],
        "treated_expected_value": None if value is None else round(value, 2),
        "incremental_margin": None if value is None else _scaled(difference, value),
        "incremental_margin_ci": [None, None]
        if value is None
        else [_scaled(low, value), _scaled(high, value)],
        "contact_cost": None if cost is None else round(cost, 2),
        "return_on_cost": None,
        "return_on_cost_ci": [None, None],
    }
    if cost is not None and cost > 0 and difference is not None and value is not None:

        def returned(margin: float | None) -> float | None:
            return None if margin is None else round((margin - cost) / cost, 4)

        result["return_on_cost"] = returned(difference * value)
        result["return_on_cost_ci"] = [
            returned(None if low is None else low * value),
            returned(None if high is None else high * value),
        ]
    return result


# --------------------------------------------------------------------------- compliance
def _compliance(
    treated_ids: pd.Series,
    control_ids: pd.Series,
    contacts: pd.DataFrame | None,
    as_of: date,
    horizon_days: int,
) -> tuple[dict[str, Any] | None, float | None]:
    """Return (compliance from the contact log, logged cost of contacting the treated customers).

    Compliance is the share of treated customers contacted in [as_of, as_of + horizon]; control
    customers contacted there are counted (they dilute the measured effect). The cost is None
    without a cost column, or when a treated contact's cost is missing (counted instead)."""
    reached = contacted_within(treated_ids, contacts, as_of, horizon_days)
    crossed = contacted_within(control_ids, contacts, as_of, horizon_days)
    if reached is None or crossed is None or contacts is None:
        return None, None
    end = label_end(as_of, horizon_days)
    window = contacts.loc[within_days(contacts[CONTACTED_AT], as_of, end)]
    treated_contacts = window.loc[ids_in(window[CUSTOMER_ID], treated_ids)]
    treated = int(treated_ids.size)
    result: dict[str, Any] = {
        "treated_contacted": int(reached.sum()),
        "compliance": round(float(reached.mean()), 6) if treated else None,
        "control_contacted": int(crossed.sum()),
        "contacts": len(treated_contacts),
    }
    for column, key in ((CONTACT_ACTION, "contacts_by_action"), (CONTACT_CHANNEL, "by_channel")):
        if column in treated_contacts.columns:
            counts = treated_contacts[column].fillna(NONE_LABEL).value_counts()
            result[key] = {str(k): int(v) for k, v in sorted(counts.items())}
    cost = None
    if CONTACT_COST in treated_contacts.columns:
        missing = int(treated_contacts[CONTACT_COST].isna().sum())
        result["contacts_without_cost"] = missing
        if missing == 0:
            cost = float(treated_contacts[CONTACT_COST].sum())
    return result, cost


def _slice_row(
    kind: str,
    label: str,
    treated: pd.DataFrame,
    control: pd.DataFrame,
    churned: pd.Series,
    contacts: pd.DataFrame | None,
    as_of: date,
    horizon_days: int,
    confidence: float,
) -> dict[str, Any]:
    """Return the measured effect and compliance of one slice of a list (treated and control
    rows of the scored table, `churned` indexed like it)."""
    compliance, cost = _compliance(
        treated[CUSTOMER_ID], control[CUSTOMER_ID], contacts, as_of, horizon_days
    )
    values = (
        treated[EXPECTED_VALUE].to_numpy(dtype="float64")
        if EXPECTED_VALUE in treated.columns
        else None
    )
    measured = measure_effect(
        churned.loc[treated.index].to_numpy(),
        churned.loc[control.index].to_numpy(),
        values,
        confidence,
        cost,
    )
    if compliance is not None:
        compliance = {**compliance, **effect_among_reached(measured, compliance, len(control))}
    return {"slice": kind, "value": label, **measured, "contact_log": compliance}


def effect_among_reached(
    measured: Mapping[str, Any], compliance: Mapping[str, Any], control: int
) -> dict[str, Any]:
    """Return the retention effect among the customers a contact really reached (Wald / IV):
    the intention-to-treat difference divided by the difference in the share contacted
    (treated minus control). Its interval divides the intention-to-treat interval the same way,
    taking the shares contacted as known (approximate: their own uncertainty is left out).
    None when nobody, or no more treated than control customers, was reached."""
    share_treated = compliance.get("compliance")
    share_control = compliance["control_contacted"] / control if control else 0.0
    difference = measured.get("retention_difference")
    if share_treated is None or difference is None or share_treated - share_control <= 0:
        return {"effect_among_reached": None, "effect_among_reached_ci": [None, None]}
    uptake = share_treated - share_control
    low, high = measured.get("ci_low"), measured.get("ci_high")
    return {
        "effect_among_reached": round(difference / uptake, 6),
        "effect_among_reached_ci": [
            None if low is None else round(low / uptake, 6),
            None if high is None else round(high / uptake, 6),
        ],
    }


def _labels(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(NONE_LABEL, index=frame.index, dtype="string")
    return frame[column].astype("string").fillna(NONE_LABEL)


# --------------------------------------------------------------------------- one list
def is_matured(published: PublishedList, newest: date) -> bool:
    """Return whether the list's outcome window (as_of, as_of + horizon] has ended on or before
    the newest data date: only then is it measured (and in the uplift table)."""
    as_of = date.fromisoformat(str(published.manifest["as_of"]))
    return bool(labelled_by(as_of, published.horizon_days, newest))


def list_id_of(manifest: Mapping[str, Any]) -> str:
    """Return a list's id: an imported list's own id, else churn-<as_of>-<sha12>."""
    if manifest.get("list_id"):
        return str(manifest["list_id"])
    return f"churn-{manifest.get('as_of')}-{str(manifest.get('sha256', ''))[:12]}"


def ledger_entry(
    published: PublishedList,
    purchases: pd.DataFrame,
    newest: date,
    confidence: float,
    contacts: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Return one list's ledger entry: what was published and, once its horizon has passed, the
    effect measured overall, per suggested action, per risk tier and per download."""
    manifest = published.manifest
    scored = published.scored
    missing = [c for c in (CUSTOMER_ID, AT_RISK, GROUP) if c not in scored.columns]
    if missing:
        raise ChurnError(
            f"published list of {manifest.get('as_of')}: scored customers lack column(s) "
            f"{missing}; republish that date with the current code (`churn publish --force`)"
        )
    as_of = date.fromisoformat(str(manifest["as_of"]))
    horizon = published.horizon_days
    matures = label_end(as_of, horizon)
    flagged = scored.loc[scored[AT_RISK].fillna(False).to_numpy(dtype=bool)]
    group = flagged[GROUP].astype("string").fillna("")
    treated, control = flagged.loc[group == TREATMENT], flagged.loc[group == CONTROL]
    entry: dict[str, Any] = {
        "as_of": str(as_of),
        "origin": manifest.get("origin", "churn"),
        "list_id": list_id_of(manifest),
        "model_version": manifest.get("model_version"),
        "list_sha256": manifest.get("sha256"),
        "published_at": manifest.get("created_at"),
        "horizon_days": horizon,
        "matures_on": str(matures),
        "treated": len(treated),
        "control": len(control),
        "power_check": manifest.get("power_check"),
        "downloads": len(published.downloads),
    }
    if not is_matured(published, newest):
        return {**entry, "status": COLLECTING, "slices": []}
    churned = pd.Series(
        churned_after(flagged[CUSTOMER_ID], purchases, as_of, horizon), index=flagged.index
    )

    def row(kind: str, label: str, t: pd.DataFrame, c: pd.DataFrame) -> dict[str, Any]:
        return _slice_row(kind, label, t, c, churned, contacts, as_of, horizon, confidence)

    slices = [row("list", "all", treated, control)]
    for kind, column in (("action", SUGGESTED_ACTION), ("tier", RISK_TIER)):
        labels_t, labels_c = _labels(treated, column), _labels(control, column)
        for label in sorted(set(labels_t) | set(labels_c)):
            slices.append(
                row(kind, label, treated.loc[labels_t == label], control.loc[labels_c == label])
            )
    ids = flagged[CUSTOMER_ID].astype("string")
    for download in published.downloads:
        chosen = ids.isin(set(map(str, download.get("customer_ids", []))))
        kept_apart = ids.isin(set(map(str, download.get("control_customer_ids", []))))
        label = f"{download.get('at', '?')} {download.get('file_name', '')}".strip()
        slices.append(
            row(
                "download",
                label,
                flagged.loc[chosen.to_numpy() & (group == TREATMENT).to_numpy()],
                flagged.loc[kept_apart.to_numpy() & (group == CONTROL).to_numpy()],
            )
        )
    reached = (slices[0]["contact_log"] or {}).get("treated_contacted", 0)
    known = bool(published.downloads) or reached > 0
    entry["campaign_known"] = known
    if not known:
        entry["note"] = NO_CAMPAIGN
    return {**entry, "status": slices[0]["status"], "slices": slices}


def build_ledger(
    lists: Sequence[PublishedList],
    transactions: pd.DataFrame | None,
    confidence: float,
    contacts: pd.DataFrame | None = None,
    newest: date | None = None,
    purchases: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Return reports/ledger.json: every published list, oldest first, with its measured effect
    once its horizon has passed (as_of + horizon <= the newest transaction date).

    Outcomes read only the listed customers' purchases, so `transactions` may hold just their
    rows; `newest` is then the newest date of all transactions (default: of `transactions`).
    A caller holding purchase_dates(transactions) with datetime64 dates passes them as
    `purchases` (with `newest`) instead of the transactions."""
    if purchases is None:
        if transactions is None:
            raise ValueError("build_ledger: pass the transactions or their purchases")
        if newest is None:
            if transactions.empty:
                raise ChurnError("transactions: empty; nothing to measure the published lists with")
            newest = pd.to_datetime(transactions[DATE]).max().date()
        purchases = purchase_dates(transactions)
        # datetime64 once: every list's outcome window compares these dates
        purchases = purchases.assign(**{DATE: pd.to_datetime(purchases[DATE])})
    elif newest is None:
        raise ValueError("build_ledger: purchases need the newest data date (`newest`)")
    entries = [
        ledger_entry(published, purchases, newest, confidence, contacts)
        for published in sorted(
            lists, key=lambda p: (str(p.manifest["as_of"]), list_id_of(p.manifest))
        )
    ]
    return {
        "newest_data_date": str(newest),
        "confidence": confidence,
        "effect": EFFECT,
        "interval_method": "Newcombe hybrid score (method 10) from Wilson intervals",
        "contact_log": contacts is not None,
        "costs_logged": contacts is not None and CONTACT_COST in contacts.columns,
        "lists": entries,
    }


# --------------------------------------------------------------------------- display
def ledger_rows(ledger: Mapping[str, Any]) -> list[dict[str, str]]:
    """Return one display row per list and slice (strings, for a terminal table or a log line)."""

    def pct(value: Any) -> str:
        return "-" if value is None else f"{value:.1%}"

    def interval(value: Any, bounds: Sequence[Any], form: str) -> str:
        if value is None:
            return "-"
        if bounds[0] is None:
            return format(value, form)
        return f"{value:{form}} [{bounds[0]:{form}}, {bounds[1]:{form}}]"

    rows = []
    for entry in ledger["lists"]:
        if entry["status"] == COLLECTING:
            rows.append(
                {
                    "as of": entry["as_of"],
                    "slice": "all",
                    "treated": str(entry["treated"]),
                    "control": str(entry["control"]),
                    "retention t / c": "-",
                    "effect [CI]": "-",
                    "kept [CI]": "-",
                    "margin [CI]": "-",
                    "return on cost": "-",
                    "reached": "-",
                    "status": f"{COLLECTING} until {entry['matures_on']}",
                }
            )
            continue
        unknown = "" if entry.get("campaign_known", True) else " (no campaign known)"
        for part in entry["slices"]:
            reached = (part["contact_log"] or {}).get("compliance")
            retention = f"{pct(part['treated_retention'])} / {pct(part['control_retention'])}"
            rows.append(
                {
                    "as of": entry["as_of"],
                    "slice": part["value"]
                    if part["slice"] == "list"
                    else f"{part['slice']}: {part['value']}",
                    "treated": str(part["treated_customers"]),
                    "control": str(part["control_customers"]),
                    "retention t / c": retention,
                    "effect [CI]": interval(
                        part["retention_difference"], (part["ci_low"], part["ci_high"]), "+.1%"
                    ),
                    "kept [CI]": interval(
                        part["incremental_customers"], part["incremental_customers_ci"], "+,.0f"
                    ),
                    "margin [CI]": interval(
                        part["incremental_margin"], part["incremental_margin_ci"], "+,.0f"
                    ),
                    "return on cost": interval(
                        part["return_on_cost"], part["return_on_cost_ci"], "+.0%"
                    ),
                    "reached": pct(reached),
                    "status": part["status"] + unknown,
                }
            )
    return rows


# --------------------------------------------------------------------------- tables for learners
UPLIFT_KEYS = [
    "list_id",
    "list_date",
    "origin",
    "horizon_days",
    CUSTOMER_ID,
    GROUP,
    "treated",
    SUGGESTED_ACTION,
    RISK_TIER,
    "churned",
    "retained",
    "value",
    "contacted",
    "has_features",
]
CONTACTED_COLUMNS = [CUSTOMER_ID, "list_id", "list_date", "horizon_days"]


def flagged_customers(published: PublishedList) -> pd.DataFrame:
    """Return the list's flagged rows (at_risk): the customers its campaign measures."""
    scored = published.scored
    return scored.loc[scored[AT_RISK].fillna(False).to_numpy(dtype=bool)]


def outcome_windows(lists: Sequence[PublishedList], newest: date) -> pd.DataFrame:
    """Return (customer_id, first_day, last_day): the outcome window (backtest.outcome_window) of
    each flagged customer of every matured list, one row per distinct triple. The outcomes
    (ledger_entry, uplift_rows) read only purchases of these customers inside these windows."""
    frames = []
    for published in lists:
        if not is_matured(published, newest):
            continue
        first, last = outcome_window(
            date.fromisoformat(str(published.manifest["as_of"])), published.horizon_days
        )
        ids = flagged_customers(published)[CUSTOMER_ID].astype("string").dropna()
        frames.append(
            pd.DataFrame({CUSTOMER_ID: ids.to_numpy(), "first_day": first, "last_day": last})
        )
    if not frames:
        return pd.DataFrame(
            {
                CUSTOMER_ID: pd.Series(dtype="string"),
                "first_day": pd.Series(dtype="object"),
                "last_day": pd.Series(dtype="object"),
            }
        )
    windows = pd.concat(frames, ignore_index=True).drop_duplicates()
    return windows.astype({CUSTOMER_ID: "string"}).reset_index(drop=True)


def with_expected_values(
    published: PublishedList, snapshot: pd.DataFrame, values: np.ndarray
) -> PublishedList:
    """Return the list with EXPECTED_VALUE filled where it has none, from `values` (one per
    snapshot row, the score stage's formula at the list date); customers without a snapshot row
    (not eligible then) get 0."""
    scored = published.scored
    estimated = pd.Series(values, index=snapshot[CUSTOMER_ID].astype("string").to_numpy())
    estimated = estimated[~estimated.index.duplicated()]
    ids = scored[CUSTOMER_ID].astype("string")
    filled = ids.map(estimated).astype("float64").fillna(0.0).to_numpy()
    if EXPECTED_VALUE in scored.columns:
        own = pd.to_numeric(scored[EXPECTED_VALUE], errors="coerce").to_numpy(dtype="float64")
        filled = np.where(np.isnan(own), filled, own)
    scored = scored.assign(**{EXPECTED_VALUE: filled})
    return PublishedList(published.manifest, published.horizon_days, scored, published.downloads)


def uplift_rows(
    published: PublishedList,
    snapshot: pd.DataFrame,
    purchases: pd.DataFrame,
    contacts: pd.DataFrame | None,
    feature_columns: Sequence[str],
) -> pd.DataFrame:
    """Return one matured list's rows of the uplift table (module docstring): its flagged
    customers with group, outcome, value and the features of `snapshot` (the list date's)."""
    manifest = published.manifest
    as_of = date.fromisoformat(str(manifest["as_of"]))
    flagged = flagged_customers(published).reset_index(drop=True)
    ids = flagged[CUSTOMER_ID].astype("string")
    churned = churned_after(ids, purchases, as_of, published.horizon_days)
    reached = contacted_within(ids, contacts, as_of, published.horizon_days)
    group = flagged[GROUP].astype("string")
    value = (
        pd.to_numeric(flagged[EXPECTED_VALUE], errors="coerce")
        if EXPECTED_VALUE in flagged.columns
        else pd.Series(np.nan, index=flagged.index)
    )
    rows = pd.DataFrame(
        {
            "list_id": list_id_of(manifest),
            "list_date": as_of,
            "origin": str(manifest.get("origin", "churn")),
            "horizon_days": published.horizon_days,
            CUSTOMER_ID: ids.to_numpy(),
            GROUP: group.to_numpy(),
            "treated": (group == TREATMENT).astype("int8").to_numpy(),
            SUGGESTED_ACTION: _optional(flagged, SUGGESTED_ACTION),
            RISK_TIER: _optional(flagged, RISK_TIER),
            "churned": churned.astype("int8"),
            "retained": (1 - churned).astype("int8"),
            "value": value.to_numpy(dtype="float64"),
            "contacted": pd.array(reached, dtype="boolean")
            if reached is not None
            else pd.array([pd.NA] * len(flagged), dtype="boolean"),
        }
    )
    features = snapshot[[CUSTOMER_ID, *feature_columns]].copy()
    features[CUSTOMER_ID] = features[CUSTOMER_ID].astype("string")
    features = features.drop_duplicates(CUSTOMER_ID)
    rows = rows.merge(features, on=CUSTOMER_ID, how="left", indicator=True)
    rows.insert(len(UPLIFT_KEYS) - 1, "has_features", (rows.pop("_merge") == "both").to_numpy())
    return rows


def _optional(frame: pd.DataFrame, column: str) -> pd.api.extensions.ExtensionArray:
    if column not in frame.columns:
        return pd.array([pd.NA] * len(frame), dtype="string")
    return pd.array(frame[column].astype("string").to_numpy(), dtype="string")


def contacted_table(lists: Sequence[PublishedList]) -> pd.DataFrame:
    """Return the treatment-group members of every list (module docstring: contacted table)."""
    frames = []
    for published in lists:
        flagged = flagged_customers(published)
        treated = flagged.loc[flagged[GROUP].astype("string") == TREATMENT]
        frames.append(
            pd.DataFrame(
                {
                    CUSTOMER_ID: pd.array(treated[CUSTOMER_ID].astype("string"), dtype="string"),
                    "list_id": list_id_of(published.manifest),
                    "list_date": date.fromisoformat(str(published.manifest["as_of"])),
                    "horizon_days": published.horizon_days,
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {
                CUSTOMER_ID: pd.Series(dtype="string"),
                "list_id": pd.Series(dtype="string"),
                "list_date": pd.Series(dtype="object"),
                "horizon_days": pd.Series(dtype="int64"),
            }
        )
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["list_date", "list_id", CUSTOMER_ID], kind="stable").reset_index(
        drop=True
    )
