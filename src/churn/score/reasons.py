"""Plain-word reasons per customer from tree SHAP, grouped into feature families, and actions."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.columns import (
    AOV,
    CALENDAR_FEATURES,
    GAP_MEAN_DAYS,
    PURCHASES,
    PURCHASES_90D,
    RECENCY_DAYS,
    SPEND_90D,
    SPEND_TOTAL,
    TENURE_DAYS,
)
from churn.config import ActionsParams, ReasonsParams
from churn.model import ChurnModel

REASON_SEPARATOR = " | "
NO_DRIVER = "no single driver stands out; risk is typical for customers like this"
SKIP = ""  # a template's answer for "true, but not a reason to tell anyone"


# --------------------------------------------------------------------------- families
def family_of(feature: str, families: Mapping[str, list[str]]) -> str:
    """Return the family of a feature: the first family with a matching glob, else its name prefix."""
    for family, patterns in families.items():
        if any(fnmatch.fnmatchcase(feature, pattern) for pattern in patterns):
            return family
    # unknown features still group sensibly: visits_7d and visits_30d share 'visits'
    return feature.split("_", 1)[0] or feature


# --------------------------------------------------------------------------- contributions
def compute_contributions(
    model: ChurnModel, frame: pd.DataFrame, method: str = "treeshap", batch_rows: int = 20_000
) -> np.ndarray:
    """Return per-feature contributions to the raw (log-odds) score, shape (rows, features).

    treeshap: LightGBM's exact path-dependent TreeSHAP (`pred_contrib`), O(trees x leaves x depth²)
    per row. path: per-tree path attribution (Saabas): each split on the row's path credits its
    feature with the change in the node's expected value; O(trees) per row after a one-off
    precomputation. Both are locally exact: contributions + base value = the raw score.
    """
    matrix = model.spec.to_matrix(frame)
    width = len(model.spec.names)
    if matrix.empty:
        return np.zeros((0, width), dtype="float64")
    if method == "path":
        return PathAttribution(model.booster, model.spec.names).contributions(matrix)
    if method != "treeshap":
        raise ValueError(f"unknown contribution method {method!r}; use 'treeshap' or 'path'")
    chunks = []
    for start in range(0, len(matrix), batch_rows):
        part = model.booster.predict(matrix.iloc[start : start + batch_rows], pred_contrib=True)
        chunks.append(np.asarray(part, dtype="float64")[:, :width])
    return np.vstack(chunks)


@dataclass
class PathAttribution:
    """Precomputed per-leaf path contributions of every tree of a booster (Saabas attribution)."""

    booster: lgb.Booster
    features: list[str]

    def __post_init__(self) -> None:
        dump = self.booster.dump_model()
        names = dump["feature_names"]
        position = {name: self.features.index(name) for name in names if name in self.features}
        trees = dump["tree_info"]
        max_leaves = max(tree["num_leaves"] for tree in trees) if trees else 1
        self.table = np.zeros((len(trees), max_leaves, len(self.features)), dtype="float64")
        self.base = 0.0
        for t, tree in enumerate(trees):
            root = tree["tree_structure"]
            expected = _expected_values(root)
            self.base += expected[id(root)]
            _fill_paths(
                root, expected, names, position, self.table[t], np.zeros(len(self.features))
            )

    def contributions(self, matrix: pd.DataFrame) -> np.ndarray:
        """Return contributions (rows, features) for the model matrix."""
        leaves = np.asarray(self.booster.predict(matrix, pred_leaf=True), dtype="int64")
        if leaves.ndim == 1:
            leaves = leaves[:, None]
        out = np.zeros((len(matrix), self.table.shape[2]), dtype="float64")
        for t in range(min(leaves.shape[1], self.table.shape[0])):
            out += self.table[t][leaves[:, t]]
        return out


def _node_count(node: dict) -> float:
    return float(node.get("internal_count", node.get("leaf_count", 0)) or 0)


def _expected_values(root: dict) -> dict[int, float]:
    """Return the cover-weighted mean leaf value under every node (keyed by id(node))."""
    expected: dict[int, float] = {}

    def visit(node: dict) -> float:
        if "leaf_value" in node:
            expected[id(node)] = float(node["leaf_value"])
            return expected[id(node)]
        left, right = node["left_child"], node["right_child"]
        value_left, value_right = visit(left), visit(right)
        count_left, count_right = _node_count(left), _node_count(right)
        total = count_left + count_right
        value = (
            (count_left * value_left + count_right * value_right) / total
            if total > 0
            else (value_left + value_right) / 2
        )
        expected[id(node)] = value
        return value

    visit(root)
    return expected


def _fill_paths(
    node: dict,
    expected: dict[int, float],
    names: list[str],
    position: dict[str, int],
    table: np.ndarray,
    path: np.ndarray,
) -> None:
    if "leaf_value" in node:
        table[int(node.get("leaf_index", 0))] = path
        return
    column = position.get(names[node["split_feature"]])
    for child in (node["left_child"], node["right_child"]):
        step = path.copy()
        if column is not None:
            step[column] += expected[id(child)] - expected[id(node)]
        _fill_paths(child, expected, names, position, table, step)


# --------------------------------------------------------------------------- text
def _finite(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value)


def _count(value: float) -> str:
    return f"{round(value):,}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _plural(n: float, word: str) -> str:
    return f"{_count(n)} {word}{'' if round(n) == 1 else 's'}"


def _show(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "missing"
    if _finite(value):
        number = float(value)  # type: ignore[arg-type]
        return _count(number) if number == round(number) else f"{number:,.2f}"
    return str(value)


Row = Callable[[str], object]


def _generic(members: list[str], get: Row) -> str:
    top = members[0]
    return f"{top.replace('_', ' ')}: {_show(get(top))}"


def _recency(members: list[str], get: Row) -> str | None:
    recency, gap = get(RECENCY_DAYS), get(GAP_MEAN_DAYS)
    if not _finite(recency):
        return None
    text = f"no purchase for {_plural(recency, 'day')}"  # type: ignore[arg-type]
    if _finite(gap) and gap > 0:  # type: ignore[operator]
        text += f"; usually buys every {_plural(gap, 'day')}"  # type: ignore[arg-type]
    return text


def _usual_per_90_days(total: object, recent: object, tenure: object) -> float | None:
    """Return the customer's rate per 90 days before the last 90 days, when there is enough history."""
    if not (_finite(total) and _finite(recent) and _finite(tenure)) or tenure <= 180:  # type: ignore[operator]
        return None
    return (float(total) - float(recent)) / (float(tenure) - 90.0) * 90.0  # type: ignore[arg-type]


def _frequency(members: list[str], get: Row) -> str | None:
    recent, total = get(PURCHASES_90D), get(PURCHASES)
    if _finite(recent):
        usual = _usual_per_90_days(total, recent, get(TENURE_DAYS))
        if recent == 0:
            text = "no purchases in the last 90 days"
        elif usual is not None and recent < usual:  # type: ignore[operator]
            text = f"only {_plural(recent, 'purchase')} in the last 90 days"  # type: ignore[arg-type]
        else:
            text = f"{_plural(recent, 'purchase')} in the last 90 days"  # type: ignore[arg-type]
        if usual is not None and usual >= 0.5:
            text += f" (usually about {_count(usual)})"
        return text
    if _finite(total):
        return f"{_plural(total, 'purchase')} in total"  # type: ignore[arg-type]
    return None


def _spend_trend(members: list[str], get: Row) -> str | None:
    recent = get(SPEND_90D)
    if not _finite(recent):
        return None
    usual = _usual_per_90_days(get(SPEND_TOTAL), recent, get(TENURE_DAYS))
    if usual is not None and usual > 0:
        if recent <= 0:  # type: ignore[operator]
            return f"no spend in the last 90 days (usually about {_money(usual)})"
        change = float(recent) / usual - 1.0  # type: ignore[arg-type]
        if change <= -0.05:
            return f"spend in the last 90 days down {round(-change * 100)}%"
        if change >= 0.05:
            return f"spend in the last 90 days up {round(change * 100)}%"
        return "spend in the last 90 days flat"
    return f"spent {_money(float(recent))} in the last 90 days"  # type: ignore[arg-type]


def _spend(members: list[str], get: Row) -> str | None:
    if _finite(get(AOV)):
        return f"average order of {_money(float(get(AOV)))}"  # type: ignore[arg-type]
    if _finite(get(SPEND_TOTAL)):
        return f"spent {_money(float(get(SPEND_TOTAL)))} in total"  # type: ignore[arg-type]
    return None


def _tenure(members: list[str], get: Row) -> str | None:
    days = get(TENURE_DAYS)
    if not _finite(days):
        return None
    if days < 365:  # type: ignore[operator]
        return f"customer for only {_plural(days, 'day')}"  # type: ignore[arg-type]
    return f"customer for {float(days) / 365.25:.1f} years"  # type: ignore[arg-type]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _nps(members: list[str], get: Row) -> str | None:
    # whichever NPS feature drives the risk, the customer's own answer is what reads best
    scores = [
        name
        for name in members
        if any(word in name.lower() for word in ("latest", "last", "score", "mean", "avg"))
        or name.lower() == "nps"
    ]
    if not scores:
        return None
    name = scores[0]
    value = get(name)
    if _missing(value):
        return "has not answered the NPS survey"
    if not _finite(value) or not 0 <= value <= 10:  # type: ignore[operator]
        return None
    if any(word in name.lower() for word in ("mean", "avg")):
        text = f"average NPS of {float(value):.1f}"  # type: ignore[arg-type]
    else:
        text = f"gave an NPS of {float(value):g}"  # type: ignore[arg-type]
    trend = next((get(m) for m in members if "trend" in m.lower()), None)
    if _finite(trend) and trend <= -1:  # type: ignore[operator]
        text += f" (down {_plural(-float(trend), 'point')} from the answer before)"  # type: ignore[arg-type]
    return text


def _refunds(members: list[str], get: Row) -> str | None:
    top = members[0]
    value, name = get(top), top.lower()
    if not _finite(value):
        return None
    if value == 0:
        return SKIP  # "no refunds" may move the score, but it is not a reason to tell anyone
    if "zero" in name:
        return _plural(value, "zero-amount transaction")  # type: ignore[arg-type]
    if any(word in name for word in ("share", "rate", "ratio", "pct")):
        return f"{float(value):.0%} of spending refunded"  # type: ignore[arg-type]
    if any(word in name for word in ("amount", "total", "value", "sum", "spend")):
        return f"refunds of {_money(abs(float(value)))}"  # type: ignore[arg-type]
    if "days" in name:
        return None
    return f"{_plural(value, 'refund')}"  # type: ignore[arg-type]


def _segment(members: list[str], get: Row) -> str | None:
    top = members[0]
    value = get(top)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if top.startswith("channel"):
        return f"buys via {value}"
    if top.startswith("region"):
        return f"in region {value}"
    return None


TEMPLATES: dict[str, Callable[[list[str], Row], str | None]] = {
    "recency": _recency,
    "frequency": _frequency,
    "spend_trend": _spend_trend,
    "spend": _spend,
    "tenure": _tenure,
    "nps": _nps,
    "refunds": _refunds,
    "segment": _segment,
}


def describe_family(family: str, members: list[str], get: Row) -> str | None:
    """Return the reason text for a family using the customer's own values (generic if unknown).

    `members` are the family's features, strongest contribution first. Returns None when the text
    would describe a non-event (e.g. no refunds at all), which is no reason to give a person.
    """
    template = TEMPLATES.get(family)
    text = template(members, get) if template is not None else None
    if text == SKIP:
        return None
    return text if text else _generic(members, get)


# --------------------------------------------------------------------------- per customer
INACTIVE_DAYS = 90  # no purchase in the last 90 days: the 90-day windows restate recency
MERGED_WHEN_INACTIVE = ("frequency", "spend_trend")


def explain_contributions(
    contributions: np.ndarray,
    features: list[str],
    frame: pd.DataFrame,
    params: ReasonsParams,
) -> tuple[list[str], list[str | None]]:
    """Return (reasons text, main family) per row from feature contributions.

    Contributions are summed within each family (SHAP values are additive, so a family's sum is
    its share of the score); only families that raise the risk are reported, strongest first.
    For a customer with no purchase in the last 90 days, "no purchases / no spend in the last 90
    days" is the same fact as "no purchase for N days", so the frequency and spend-trend families
    are added to recency for that customer. A family whose text would describe a non-event
    (no refunds at all) is skipped in favour of the next one.
    """
    calendar = [i for i, name in enumerate(features) if name in CALENDAR_FEATURES]
    if calendar:
        # the time of year is the same for every customer: it shifts everyone's score, it is
        # nobody's reason
        contributions = np.array(contributions, dtype="float64", copy=True)
        contributions[:, calendar] = 0.0
    families = [family_of(name, params.families) for name in features]
    names = sorted(set(families))
    membership = np.zeros((len(features), len(names)))
    for i, family in enumerate(families):
        membership[i, names.index(family)] = 1.0
    family_sums = contributions @ membership
    _merge_inactive(family_sums, names, frame)
    members = {name: [i for i, f in enumerate(families) if f == name] for name in names}
    columns = {
        name: frame[name].to_numpy(dtype=object) if name in frame.columns else None
        for name in set(features) | set(TEMPLATE_INPUTS)
    }
    reasons: list[str] = []
    main: list[str | None] = []
    for row in range(len(contributions)):

        def get(name: str, row: int = row) -> object:
            column = columns.get(name)
            if column is None:
                return None
            value = column[row]
            return None if value is pd.NA else value

        sums = family_sums[row]
        # strongest first; ties by family name keep the text deterministic
        ranked = sorted((-sums[j], names[j]) for j in range(len(names)) if sums[j] > 0)
        texts: list[str] = []
        shown: list[str] = []
        for _, family in ranked:
            if len(texts) == params.top_k:
                break
            ordered = sorted(members[family], key=lambda i: (-contributions[row, i], i))
            text = describe_family(family, [features[i] for i in ordered], get)
            if text and text not in texts:
                texts.append(text)
                shown.append(family)
        reasons.append(REASON_SEPARATOR.join(texts) if texts else NO_DRIVER)
        main.append(shown[0] if shown else None)  # the action follows the reason people read
    return reasons, main


def _merge_inactive(family_sums: np.ndarray, names: list[str], frame: pd.DataFrame) -> None:
    """Add frequency and spend-trend sums into recency (in place) for customers inactive 90+ days."""
    if "recency" not in names or RECENCY_DAYS not in frame.columns:
        return
    recency = pd.to_numeric(frame[RECENCY_DAYS], errors="coerce").to_numpy(dtype="float64")
    inactive = np.nan_to_num(recency, nan=0.0) >= INACTIVE_DAYS
    target = names.index("recency")
    for family in MERGED_WHEN_INACTIVE:
        if family in names:
            source = names.index(family)
            family_sums[inactive, target] += family_sums[inactive, source]
            family_sums[inactive, source] = 0.0


TEMPLATE_INPUTS = (
    RECENCY_DAYS,
    GAP_MEAN_DAYS,
    PURCHASES,
    PURCHASES_90D,
    SPEND_TOTAL,
    SPEND_90D,
    AOV,
    TENURE_DAYS,
)


def explain_customers(
    model: ChurnModel, frame: pd.DataFrame, params: ReasonsParams
) -> tuple[list[str], list[str | None]]:
    """Return (reasons text, main reason family) for each row of `frame` (a snapshot slice)."""
    contributions = compute_contributions(
        model, frame, choose_method(params, len(frame)), params.batch_rows
    )
    return explain_contributions(contributions, model.spec.names, frame, params)


def choose_method(params: ReasonsParams, rows: int) -> str:
    """Return the contribution method for `rows` flagged customers ('auto' picks by list size)."""
    if params.method != "auto":
        return params.method
    return "treeshap" if rows <= params.exact_max_rows else "path"


def suggest_actions(
    families: list[str | None],
    expected_value: np.ndarray,
    high_value_threshold: float,
    params: ActionsParams,
) -> list[str]:
    """Return the suggested action per customer from the main reason family and the value.

    Lapsed or unhappy customers (families in keep_family_action: recency, NPS, refunds) get their
    family's action whatever their value; other high-value customers (still buying, but less) get
    the loyalty action; the rest follow the family mapping.
    """
    actions = []
    for family, value in zip(families, np.asarray(expected_value, dtype="float64"), strict=True):
        if family is not None and family in params.keep_family_action:
            actions.append(params.by_family.get(family, params.default))
        elif value >= high_value_threshold:
            actions.append(params.high_value_action)
        elif family is None:
            actions.append(params.default)
        else:
            actions.append(params.by_family.get(family, params.default))
    return actions
