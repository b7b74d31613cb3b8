"""Filtering a published list for the marketing page: parse the page's filters, select, page.

Pure functions over a list loaded once per published version (`ListColumns`): every categorical
column is held as integer codes and every number as a float array, so a filter change is a few
vectorised comparisons on arrays, not a pass over a data frame — and no filter value ever becomes
code or SQL (values are compared, never interpreted; an id search is a literal substring match).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churn.columns import (
    CHURN_PROBABILITY,
    CUSTOMER_ID,
    EXPECTED_NET_BENEFIT,
    EXPECTED_VALUE,
    PRIORITY,
    REASON_FAMILY,
    RISK_TIER,
    SUGGESTED_ACTION,
    UPLIFT,
    VALUE_AT_RISK,
)
from churn.score.targeting import TIERS

# query-string names of the page's filters (one place: the form, the links and the download)
TIER = "tier"
SEGMENT_PREFIX = "seg_"  # seg_<column>=value for each segment column of the list
REASON = "reason"
ACTION = "action"
VALUE_MIN, VALUE_MAX = "value_min", "value_max"  # customer value (expected_value)
CHANCE_MIN, CHANCE_MAX = "chance_min", "chance_max"  # chance of leaving, in percent
SEARCH = "customer"
MAX_SEARCH = 100  # characters of a customer id search
PAGE_SIZE = 50

TIER_LABELS = {"high": "High", "medium": "Medium", "low": "Low"}
# the main reason's family in plain words (families are configurable: others show as named)
REASON_LABELS = {
    "recency": "Stopped buying (overdue)",
    "frequency": "Buying less often",
    "spend_trend": "Spending less",
    "spend": "Low spend",
    "nps": "Unhappy in a survey",
    "refunds": "Refunds or returns",
    "tenure": "New or short history",
    "segment": "Their region or channel",
}


@dataclass(frozen=True)
class Filters:
    """What the page's filters ask for; empty means 'any'. Chances are fractions (0..1)."""

    tiers: tuple[str, ...] = ()
    segments: tuple[tuple[str, tuple[str, ...]], ...] = ()
    reasons: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    value_min: float | None = None
    value_max: float | None = None
    chance_min: float | None = None
    chance_max: float | None = None
    customer: str = ""

    def query(self) -> list[tuple[str, str]]:
        """Return the filters as query-string pairs (what the page's form submits)."""
        pairs = [(TIER, v) for v in self.tiers]
        for column, values in self.segments:
            pairs += [(SEGMENT_PREFIX + column, v) for v in values]
        pairs += [(REASON, v) for v in self.reasons] + [(ACTION, v) for v in self.actions]
        for name, number, scale in (
            (VALUE_MIN, self.value_min, 1.0),
            (VALUE_MAX, self.value_max, 1.0),
            (CHANCE_MIN, self.chance_min, 100.0),
            (CHANCE_MAX, self.chance_max, 100.0),
        ):
            if number is not None:
                pairs.append((name, _plain_number(number * scale)))
        if self.customer:
            pairs.append((SEARCH, self.customer))
        return pairs

    def describe(self) -> dict[str, object]:
        """Return the filters as a JSON-ready dict (what the download record keeps)."""
        return {
            "risk_tier": list(self.tiers),
            "segments": {column: list(values) for column, values in self.segments},
            "reason_family": list(self.reasons),
            "suggested_action": list(self.actions),
            "expected_value_min": self.value_min,
            "expected_value_max": self.value_max,
            "churn_probability_min": self.chance_min,
            "churn_probability_max": self.chance_max,
            "customer_id_contains": self.customer or None,
        }

    def segment(self, column: str) -> tuple[str, ...]:
        """Return the values chosen for a segment column (empty: any)."""
        return dict(self.segments).get(column, ())


def _plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(float(value), 6))


@dataclass(frozen=True)
class Choices:
    """The values a list offers for each categorical filter, in display order."""

    tiers: tuple[str, ...]
    segments: tuple[tuple[str, tuple[str, ...]], ...]
    reasons: tuple[str, ...]
    actions: tuple[str, ...]

    def segment_columns(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.segments)


def _codes(values: pd.Series) -> tuple[tuple[str, ...], np.ndarray]:
    """Return (sorted distinct values, int32 code per row; -1 for missing)."""
    categorical = pd.Categorical(values.astype("string"))
    categories = tuple(str(v) for v in categorical.categories)
    return categories, np.asarray(categorical.codes, dtype="int32")


def _contiguous(values: pd.Series) -> pd.Series:
    """Return a column whose Arrow data (if any) is one chunk."""
    array = values.array
    chunked = getattr(array, "_pa_array", None)
    if isinstance(chunked, pa.ChunkedArray) and chunked.num_chunks > 1:
        return pd.Series(
            type(array)(pa.chunked_array([chunked.combine_chunks()])), name=values.name
        )
    return values.reset_index(drop=True)


@dataclass
class ListColumns:
    """One published list (treatment or control) held as arrays for fast selection."""

    frame: pd.DataFrame
    segment_columns: tuple[str, ...]
    probability: np.ndarray = field(init=False)
    expected_value: np.ndarray = field(init=False)
    value_at_risk: np.ndarray = field(init=False)
    net_benefit: np.ndarray = field(init=False)
    priority: np.ndarray = field(init=False)
    # each customer's estimated uplift when the uplift policy chose the list (else None)
    uplift: np.ndarray | None = field(init=False)
    ids: pa.Array = field(init=False)
    categorical: dict[str, tuple[tuple[str, ...], np.ndarray]] = field(init=False)

    def __post_init__(self) -> None:
        # one contiguous chunk per column: taking a page of rows is then one small copy, not a
        # walk over every row group the Parquet reader returned
        self.frame = frame = pd.DataFrame(
            {column: _contiguous(self.frame[column]) for column in self.frame.columns}
        )
        self.probability = frame[CHURN_PROBABILITY].to_numpy(dtype="float64")
        self.expected_value = frame[EXPECTED_VALUE].to_numpy(dtype="float64")
        self.value_at_risk = frame[VALUE_AT_RISK].to_numpy(dtype="float64")
        self.net_benefit = frame[EXPECTED_NET_BENEFIT].to_numpy(dtype="float64")
        self.priority = frame[PRIORITY].to_numpy(dtype="int64")
        self.uplift = (
            frame[UPLIFT].to_numpy(dtype="float64", na_value=np.nan)
            if UPLIFT in frame.columns and frame[UPLIFT].notna().any()
            else None
        )
        self.ids = pa.array(frame[CUSTOMER_ID].astype("string").to_numpy(dtype=object), pa.string())
        columns = [RISK_TIER, SUGGESTED_ACTION, *self.segment_columns]
        if REASON_FAMILY in frame.columns:
            columns.append(REASON_FAMILY)
        self.categorical = {column: _codes(frame[column]) for column in columns}

    def __len__(self) -> int:
        return len(self.frame)

    def values(self, column: str) -> tuple[str, ...]:
        """Return the distinct values of a categorical column (empty when the list lacks it)."""
        return self.categorical.get(column, ((), None))[0]

    def isin(self, column: str, allowed: Sequence[str]) -> np.ndarray:
        """Return the rows whose `column` is one of `allowed` (no row when the list lacks it)."""
        if column not in self.categorical:
            return np.zeros(len(self), dtype=bool)
        categories, codes = self.categorical[column]
        # a lookup table over the codes (the last slot is for -1, missing): one pass, no sort
        lookup = np.zeros(len(categories) + 1, dtype=bool)
        lookup[[categories.index(v) for v in allowed if v in categories]] = True
        return lookup[codes]


def load_columns(
    frame: pd.DataFrame,
    segment_columns: Sequence[str],
    reason_family: pd.Series | None = None,
    uplift: pd.Series | None = None,
) -> ListColumns:
    """Return a published list as ListColumns; `reason_family` (by row) adds the main reason,
    `uplift` (by row) the uplift policy's estimates."""
    if reason_family is not None:
        frame = frame.assign(**{REASON_FAMILY: reason_family.to_numpy()})
    if uplift is not None:
        frame = frame.assign(**{UPLIFT: uplift.to_numpy(dtype="float64", na_value=np.nan)})
    present = tuple(c for c in segment_columns if c in frame.columns)
    return ListColumns(frame, present)


def list_choices(treatment: ListColumns, control: ListColumns) -> Choices:
    """Return the values each filter offers: those present in the list or its control group."""

    def union(column: str) -> tuple[str, ...]:
        return tuple(sorted(set(treatment.values(column)) | set(control.values(column))))

    present_tiers = set(union(RISK_TIER))
    return Choices(
        tiers=tuple(t for t in TIERS if t in present_tiers),
        segments=tuple((c, union(c)) for c in treatment.segment_columns),
        reasons=union(REASON_FAMILY),
        actions=union(SUGGESTED_ACTION),
    )


# --------------------------------------------------------------------------- parsing
def parse_number(text: str, label: str, errors: list[str]) -> float | None:
    """Return a number typed on the page ('1,200.50' and '1 200' read as 1200.5 / 1200).

    Empty gives None; anything else that is not a finite number adds a message to `errors`.
    """
    cleaned = text.strip().replace(",", "").replace(" ", "").replace("%", "")
    if not cleaned:
        return None
    try:
        value = float(cleaned)
    except ValueError:
        errors.append(f"{label}: '{text.strip()[:40]}' is not a number")
        return None
    if not math.isfinite(value):
        errors.append(f"{label}: '{text.strip()[:40]}' is not a number")
        return None
    return value


def _many(items: Mapping[str, list[str]], name: str) -> list[str]:
    return [v for v in items.get(name, []) if v != ""]


def _known(
    values: list[str],
    allowed: Sequence[str],
    label: str,
    errors: list[str],
    shown: Callable[[str], str] = str,
) -> tuple:
    """Return the values the list offers; a message names the others and the choices, in the
    words the page shows them (`shown`: 'Stopped buying (overdue)', not 'recency')."""
    unknown = [v for v in values if v not in allowed]
    if unknown:
        errors.append(
            f"{label}: {', '.join(repr(v[:40]) for v in unknown[:3])} is not in this list "
            f"(choose from {', '.join(shown(v) for v in allowed) or 'nothing'})"
        )
    return tuple(dict.fromkeys(v for v in values if v in allowed))


def group_query(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Return query-string pairs grouped by name, in order."""
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def parse_filters(items: Mapping[str, list[str]], choices: Choices) -> tuple[Filters, list[str]]:
    """Return the filters a query asks for and the messages for values that could not be used.

    Only values the list offers are accepted; a value that is not offered is dropped with a
    message (never matched as a pattern). Ranges: customer value in money, chance in percent.
    """
    errors: list[str] = []
    tiers = _known(_many(items, TIER), choices.tiers, "Risk of leaving", errors, tier_label)
    segments = []
    for name in items:
        if name.startswith(SEGMENT_PREFIX) and name[len(SEGMENT_PREFIX) :] not in dict(
            choices.segments
        ):
            errors.append(
                f"'{column_label(name[len(SEGMENT_PREFIX) :][:40])}' is not a column of this list"
            )
    for column, offered in choices.segments:
        chosen = _known(
            _many(items, SEGMENT_PREFIX + column), offered, column_label(column), errors
        )
        if chosen:
            segments.append((column, chosen))

    def number(name: str, label: str) -> float | None:
        values = _many(items, name)
        return parse_number(values[-1], label, errors) if values else None

    reasons = _known(_many(items, REASON), choices.reasons, "Main reason", errors, reason_label)
    actions = _known(_many(items, ACTION), choices.actions, "Suggested action", errors)
    value_min = number(VALUE_MIN, "Customer value from")
    value_max = number(VALUE_MAX, "Customer value to")
    chance_min = number(CHANCE_MIN, "Chance of leaving from")
    chance_max = number(CHANCE_MAX, "Chance of leaving to")
    if chance_min is not None and not 0 <= chance_min <= 100:
        errors.append("Chance of leaving from: give a percentage from 0 to 100")
        chance_min = None  # reported as not used, so not applied either
    if chance_max is not None and not 0 <= chance_max <= 100:
        errors.append("Chance of leaving to: give a percentage from 0 to 100")
        chance_max = None
    search = " ".join(_many(items, SEARCH)).strip()
    if len(search) > MAX_SEARCH:
        errors.append(f"Customer id: searches are limited to {MAX_SEARCH} characters")
        search = search[:MAX_SEARCH]
    filters = Filters(
        tiers=tiers,
        segments=tuple(segments),
        reasons=reasons,
        actions=actions,
        value_min=value_min,
        value_max=value_max,
        chance_min=None if chance_min is None else chance_min / 100.0,
        chance_max=None if chance_max is None else chance_max / 100.0,
        customer=search,
    )
    return filters, errors


# --------------------------------------------------------------------------- selecting
def filter_mask(columns: ListColumns, filters: Filters) -> np.ndarray:
    """Return the rows of a list matching every filter (a boolean array in list order)."""
    mask = np.ones(len(columns), dtype=bool)
    if filters.tiers:
        mask &= columns.isin(RISK_TIER, filters.tiers)
    for column, values in filters.segments:
        mask &= columns.isin(column, values)
    if filters.reasons:
        mask &= columns.isin(REASON_FAMILY, filters.reasons)
    if filters.actions:
        mask &= columns.isin(SUGGESTED_ACTION, filters.actions)
    # published values are rounded (2 decimals, probability 4): compare what the page shows
    if filters.value_min is not None:
        mask &= columns.expected_value >= filters.value_min
    if filters.value_max is not None:
        mask &= columns.expected_value <= filters.value_max
    if filters.chance_min is not None:
        mask &= columns.probability >= filters.chance_min - 1e-12
    if filters.chance_max is not None:
        mask &= columns.probability <= filters.chance_max + 1e-12
    if filters.customer:
        found = pc.match_substring(columns.ids, filters.customer, ignore_case=True)
        mask &= np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return mask


def suppressed_mask(columns: ListColumns, suppressed_ids: Iterable[str]) -> np.ndarray:
    """Return the rows whose customer is on the suppression list (opted out, contacted lately)."""
    ids = pa.array(sorted(set(suppressed_ids)), pa.string())
    if not len(ids):
        return np.zeros(len(columns), dtype=bool)
    return np.asarray(pc.is_in(columns.ids, value_set=ids).to_numpy(zero_copy_only=False), bool)


@dataclass(frozen=True)
class Selection:
    """The rows a filter selects (positions, priority order), apart for each group."""

    rows: np.ndarray  # treatment rows to contact: matching, not suppressed
    control_rows: np.ndarray  # control rows matching the filter, not suppressed (never contacted)
    suppressed: int  # treatment rows matching the filter that the suppression list removes
    value_at_risk: float
    expected_value: float

    @property
    def count(self) -> int:
        return len(self.rows)


def select(
    treatment: ListColumns,
    control: ListColumns,
    filters: Filters,
    treatment_suppressed: np.ndarray | None = None,
    control_suppressed: np.ndarray | None = None,
) -> Selection:
    """Return the selection of a filter: treatment rows to contact, control rows kept apart.

    Suppressed customers leave both groups, so the control group stays comparable with the
    customers who are contacted.
    """
    matched = filter_mask(treatment, filters)
    kept = matched if treatment_suppressed is None else matched & ~treatment_suppressed
    control_matched = filter_mask(control, filters)
    if control_suppressed is not None:
        control_matched &= ~control_suppressed
    rows = np.flatnonzero(kept)
    return Selection(
        rows=rows,
        control_rows=np.flatnonzero(control_matched),
        suppressed=int(matched.sum() - len(rows)),
        value_at_risk=float(treatment.value_at_risk[rows].sum()),
        expected_value=float(treatment.expected_value[rows].sum()),
    )


@dataclass(frozen=True)
class Page:
    """One page of a selection: its rows and where it sits."""

    frame: pd.DataFrame
    number: int  # 1-based
    pages: int
    first: int  # 1-based position of the first row shown (0 when empty)
    last: int


def page_of(columns: ListColumns, rows: np.ndarray, number: int, size: int = PAGE_SIZE) -> Page:
    """Return page `number` (1-based, clamped to the pages there are) of the selected rows."""
    pages = max(1, math.ceil(len(rows) / size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    shown = rows[start : start + size]
    return Page(
        frame=columns.frame.iloc[shown],
        number=number,
        pages=pages,
        first=start + 1 if len(shown) else 0,
        last=start + len(shown),
    )


def reason_label(family: str) -> str:
    """Return the plain-words label of a reason family."""
    return REASON_LABELS.get(family, family.replace("_", " ").capitalize())


def tier_label(tier: str) -> str:
    """Return the label of a risk tier as the page shows it (High, Medium, Low)."""
    return TIER_LABELS.get(tier, tier.replace("_", " ").capitalize())


def column_label(column: str) -> str:
    """Return a segment column's name as the page shows it (sales_region: Sales region)."""
    return column.replace("_", " ").capitalize()
