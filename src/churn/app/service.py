"""What the list page shows and what a download holds, from a loaded list and the page's query.

Pure: the HTTP layer passes in the loaded list, the suppression rows and the query; it gets back
the view (selection, page, what-if) or the download (file bytes, its name, the record entry).
The page's numbers and the downloaded rows come from the same selection and the same plan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churn.app.selection import (
    PAGE_SIZE,
    Filters,
    ListColumns,
    Page,
    Selection,
    page_of,
    parse_filters,
    parse_number,
    select,
)
from churn.app.store import LoadedList, Suppression
from churn.app.whatif import CampaignPlan, plan_campaign
from churn.columns import CUSTOMER_ID, RISK_TIER
from churn.errors import ChurnError
from churn.files import sha256_bytes
from churn.publish.formats import render_list

# query-string names of the what-if and the paging
HOW = "how"  # all / size / budget
SIZE, BUDGET, COST = "size", "budget", "cost"
PAGE = "page"
HOW_CHOICES = ("all", "size", "budget")
DOWNLOAD_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
}
EXCEL_MAX_ROWS = 1_048_575  # a sheet's rows, less the header
CONTROL_SHOWN = 20
RANK = "rank"  # a download's first column: the position in the selection, as the page shows it


@dataclass(frozen=True)
class WhatIf:
    """The what-if the page asks for: everyone selected, the first N, or what a budget pays for."""

    how: str = "all"
    size: int | None = None
    budget: float | None = None
    contact_cost: float = 0.0

    def query(self) -> list[tuple[str, str]]:
        pairs = [(HOW, self.how)]
        if self.size is not None:
            pairs.append((SIZE, str(self.size)))
        if self.budget is not None:
            pairs.append((BUDGET, _number_text(self.budget)))
        pairs.append((COST, _number_text(self.contact_cost)))
        return pairs


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def parse_whatif(items: Mapping[str, list[str]], default_cost: float, errors: list[str]) -> WhatIf:
    """Return the what-if a query asks for (messages for values that cannot be used)."""

    def last(name: str) -> str:
        values = items.get(name) or [""]
        return values[-1]

    how = last(HOW) or "all"
    if how not in HOW_CHOICES:
        errors.append(f"How many to contact: choose one of {', '.join(HOW_CHOICES)}")
        how = "all"
    cost = parse_number(last(COST), "Cost per contact", errors)
    if cost is None or cost < 0:
        if cost is not None:
            errors.append("Cost per contact: give an amount of zero or more")
        cost = default_cost
    size_number = parse_number(last(SIZE), "Number of customers", errors)
    size = None
    if size_number is not None:
        if size_number < 0 or not float(size_number).is_integer():
            errors.append("Number of customers: give a whole number of zero or more")
        else:
            size = int(size_number)
    budget = parse_number(last(BUDGET), "Budget", errors)
    if budget is not None and budget < 0:
        errors.append("Budget: give an amount of zero or more")
        budget = None
    if how == "size" and size is None:
        how = "all"
    if how == "budget" and budget is None:
        how = "all"
    return WhatIf(how=how, size=size, budget=budget, contact_cost=float(cost))


def row_save_rates(
    columns: ListColumns, rows: np.ndarray, save_rates: Mapping[str, float]
) -> np.ndarray:
    """Return the save rate of each selected row, by its risk tier (the pipeline's rates)."""
    categories, codes = columns.categorical[RISK_TIER]
    missing = [tier for tier in categories if tier not in save_rates]
    if missing:
        raise ChurnError(
            f"published list: risk tier(s) {missing} have no save rate (score.save_rate covers "
            f"{sorted(save_rates)}); republish the list with the current code"
        )
    by_code = np.array([save_rates[tier] for tier in categories], dtype="float64")
    return by_code[codes[rows]]


def plan_for(
    loaded: LoadedList, selection: Selection, whatif: WhatIf, save_rates: Mapping[str, float]
) -> CampaignPlan:
    """Return the what-if plan for a selection (computed on its rows, in priority order)."""
    rows = selection.rows
    treatment = loaded.treatment
    return plan_campaign(
        treatment.probability[rows],
        treatment.expected_value[rows],
        row_save_rates(treatment, rows, save_rates),
        treatment.priority[rows],
        loaded.control.priority[selection.control_rows],
        contact_cost=whatif.contact_cost,
        size=whatif.size if whatif.how == "size" else None,
        budget=whatif.budget if whatif.how == "budget" else None,
        uplift=None if treatment.uplift is None else treatment.uplift[rows],
    )


def control_ranks(loaded: LoadedList, selection: Selection, shown: int) -> np.ndarray:
    """Return, for the first `shown` control customers of a selection, the rank they would have
    among its customers to contact (1 + how many of those come before them by priority).

    The page's ranks count only customers who can be contacted (1, 2, 3, ...); the list's
    priority also counts control customers, so it has gaps. Contacting the first N holds back
    exactly the control customers whose rank here is N or less (see `plan_campaign`).
    """
    contacts = loaded.treatment.priority[selection.rows]
    control = loaded.control.priority[selection.control_rows[:shown]]
    return np.searchsorted(contacts, control, side="left") + 1


@dataclass(frozen=True)
class ListView:
    """Everything the list page shows for one query."""

    loaded: LoadedList
    filters: Filters
    whatif: WhatIf
    errors: list[str]
    selection: Selection
    plan: CampaignPlan
    page: Page
    control_page: Page
    control_ranks: np.ndarray  # where each shown control customer would rank among the contacts
    suppression: Suppression
    query: list[tuple[str, str]] = field(default_factory=list)  # filters + what-if (no page)


def build_view(
    loaded: LoadedList,
    items: Mapping[str, list[str]],
    suppression: Suppression,
    suppressed: tuple[np.ndarray, np.ndarray],
    default_cost: float,
    save_rates: Mapping[str, float],
    page_size: int = PAGE_SIZE,
) -> ListView:
    """Return the list page's content for a query: selection, counts, what-if, one page."""
    filters, errors = parse_filters(items, loaded.choices)
    whatif = parse_whatif(items, default_cost, errors)
    selection = select(loaded.treatment, loaded.control, filters, *suppressed)
    try:
        plan = plan_for(loaded, selection, whatif, save_rates)
    except ChurnError as error:
        errors.append(str(error))
        whatif = WhatIf(contact_cost=default_cost)
        plan = plan_for(loaded, selection, whatif, save_rates)
    page_number = parse_number((items.get(PAGE) or ["1"])[-1], "Page", errors) or 1
    control_page = page_of(loaded.control, selection.control_rows, 1, CONTROL_SHOWN)
    return ListView(
        loaded=loaded,
        filters=filters,
        whatif=whatif,
        errors=errors,
        selection=selection,
        plan=plan,
        page=page_of(loaded.treatment, selection.rows, int(page_number), page_size),
        control_page=control_page,
        control_ranks=control_ranks(loaded, selection, CONTROL_SHOWN),
        suppression=suppression,
        query=filters.query() + whatif.query(),
    )


@dataclass(frozen=True)
class Download:
    """A download: the file and what the record keeps about it."""

    content: bytes
    media_type: str
    file_name: str
    entry: dict[str, object]  # for record.record_download
    customer_ids: list[str]
    control_ids: list[str]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "unknown"


def selection_hash(filters: Mapping[str, object], what_if: Mapping[str, object]) -> str:
    """Return a short hash of a selection (its filters and what-if, as the record keeps them):
    the same selection of a list always gets the same hash; two different ones share one with
    odds of 1 in 4 billion (8 hex characters of a sha256)."""
    canonical = json.dumps(
        {"filters": filters, "what_if": what_if}, sort_keys=True, separators=(",", ":")
    )
    return sha256_bytes(canonical.encode("utf-8"))[:8]


def download_name(manifest: Mapping[str, object], selection: str, extension: str) -> str:
    """Return the file name: list date, model version, the list's hash and the selection's, e.g.
    at_risk_2025-12-30_model-3_list-7247fa97c643_sel-1f0c9a2b.csv"""
    return (
        f"at_risk_{_safe(str(manifest['as_of']))}_model-{_safe(str(manifest['model_version']))}"
        f"_list-{_safe(str(manifest['sha256']))[:12]}_sel-{_safe(selection)}.{extension}"
    )


def build_download(view: ListView, file_format: str) -> Download:
    """Return the download of a view: the contacts its what-if chose, never a control customer.

    The rows are the selection's first `plan.contacts` (suppression already re-applied by the
    caller from a fresh read), with the published list's columns, written by the project's
    formula-safe writers; the control members held back for the same filter are listed for the
    record only.
    """
    if file_format not in DOWNLOAD_FORMATS:
        raise ChurnError(f"download format {file_format!r}: choose csv or xlsx")
    media_type, extension = DOWNLOAD_FORMATS[file_format]
    loaded, selection, plan = view.loaded, view.selection, view.plan
    if plan.contacts == 0:  # an empty file recorded as a campaign download would count as one
        raise ChurnError(
            "Nothing was downloaded: the selection holds no customer to contact; "
            "widen the filters or the list size"
        )
    if file_format == "xlsx" and plan.contacts > EXCEL_MAX_ROWS:
        raise ChurnError(
            f"{plan.contacts:,} customers do not fit in one Excel sheet ({EXCEL_MAX_ROWS:,} rows); "
            "download CSV, or choose a smaller list size"
        )
    contacts = loaded.treatment.frame.iloc[selection.rows[: plan.contacts]]
    contacts = contacts.loc[:, list(loaded.columns)].reset_index(drop=True)
    # the page's rank (1..N in this selection) leads; the list's priority stays as published,
    # with gaps where the list's control customers and unlisted customers sit
    contacts.insert(0, RANK, np.arange(1, len(contacts) + 1, dtype="int64"))
    control = loaded.control.frame.iloc[selection.control_rows[: plan.control_held_back]]
    content = render_list(contacts, file_format)
    manifest = loaded.manifest
    filters = view.filters.describe()
    what_if: dict[str, object] = {
        "how": view.whatif.how,
        "size": view.whatif.size,
        "budget": view.whatif.budget,
        "contact_cost": view.whatif.contact_cost,
    }
    selection_id = selection_hash(filters, what_if)
    name = download_name(manifest, selection_id, extension)
    entry: dict[str, object] = {
        "as_of": str(manifest["as_of"]),
        "list_sha256": str(manifest["sha256"]),
        "model_version": str(manifest["model_version"]),
        "filters": filters,
        "what_if": what_if,
        "selection_hash": selection_id,
        "format": file_format,
        "file_name": name,
        "file_sha256": sha256_bytes(content),
        "rows": int(len(contacts)),
        "control_rows": int(len(control)),
        "suppressed_removed": int(selection.suppressed),
        "suppression_sha256": view.suppression.sha256,
        "expected_net_benefit": round(plan.net_benefit, 2),
    }
    return Download(
        content=content,
        media_type=media_type,
        file_name=name,
        entry=entry,
        customer_ids=_ids(contacts),
        control_ids=_ids(control),
    )


def _ids(frame: pd.DataFrame) -> list[str]:
    return [str(v) for v in frame[CUSTOMER_ID].astype("string").to_numpy(dtype=object)]
