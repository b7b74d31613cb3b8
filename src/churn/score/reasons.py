"""Reasons per customer that raise their risk, from tree SHAP grouped into families; actions."""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.columns import CALENDAR_FEATURES, CUSTOMER_ID, REASON_SEPARATOR, RECENCY_DAYS
from churn.config import ActionsParams, ReasonsParams
from churn.cutoffs import customer_share
from churn.model import ChurnModel
from churn.score.phrasing import (
    Customer,
    References,
    build_references,
    phrase_against_everyone,
    phrase_feature,
    phrase_recency,
    states_recency,
)

# a flagged customer with no reason to show: something adds risk but nothing stands out, or
# nothing lifts the risk above the reference's (`contribution_reference`: the average scored
# customer by default; usually a customer flagged for their value)
NO_DRIVER = "no single driver stands out; risk is typical for customers like this"
AVERAGE_RISK = "no driver raises the risk above the average customer's"
NO_REASON_TEXTS = (NO_DRIVER, AVERAGE_RISK)


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
    if method not in ("treeshap", "path"):
        raise ValueError(f"unknown contribution method {method!r}; use 'treeshap' or 'path'")
    path = PathAttribution(model.booster, model.spec.names) if method == "path" else None
    # in batches for both methods: the path method's leaf indices are rows x trees integers
    # (1.5 GB for a quarter million flagged customers), and each row's contributions depend on
    # that row alone, so the result is the same
    out = np.empty((len(matrix), width), dtype="float64")
    for start in range(0, len(matrix), batch_rows):
        part = matrix.iloc[start : start + batch_rows]
        if path is not None:
            out[start : start + len(part)] = path.contributions(part)
        else:
            contributions = model.booster.predict(part, pred_contrib=True)
            out[start : start + len(part)] = np.asarray(contributions, dtype="float64")[:, :width]
    return out


def reference_contributions(
    model: ChurnModel, population: pd.DataFrame, params: ReasonsParams, method: str
) -> np.ndarray:
    """Return the contributions (features,) that "raises the risk" is measured from.

    "scored" (default): the mean contribution of each feature over the scored population
    (at most `reference_rows` customers, those with the smallest stable id hash, so the sample
    does not depend on row order). Subtracting it re-centres every customer's contributions on the
    average scored customer: they sum to the customer's log-odds minus the mean log-odds of the
    customers scored with them, and a feature's relative contribution is > 0 when it adds more
    to this customer's risk than it adds on average. "training": zeros, i.e. raw TreeSHAP, whose
    reference is the booster's expected value over its training rows — on a closed base that
    has aged since training, every customer can sit below it although they are riskier than
    the customers scored with them.
    """
    width = len(model.spec.names)
    if params.contribution_reference == "training" or population.empty:
        return np.zeros(width, dtype="float64")
    sample = population
    if len(population) > params.reference_rows:
        if CUSTOMER_ID not in population.columns:
            raise ValueError(
                f"reasons: the scored population has {len(population):,} rows, more than "
                f"score.reasons.reference_rows ({params.reference_rows:,}), and no "
                f"'{CUSTOMER_ID}' column to sample them by; pass the snapshot with its ids or "
                "raise reference_rows"
            )
        share = customer_share(population[CUSTOMER_ID].reset_index(drop=True), "reasons_reference")
        keep = np.sort(np.argsort(share, kind="stable")[: params.reference_rows])
        sample = population.iloc[keep]
    return compute_contributions(model, sample, method, params.batch_rows).mean(axis=0)


def relative_contributions(
    model: ChurnModel,
    frame: pd.DataFrame,
    params: ReasonsParams,
    population: pd.DataFrame | None = None,
) -> np.ndarray:
    """Return the contributions (rows, features) of `frame` relative to the reasons' reference:
    raw contributions minus `reference_contributions` of `population` (default: `frame`)."""
    method = choose_method(params, len(frame))
    contributions = compute_contributions(model, frame, method, params.batch_rows)
    reference = reference_contributions(
        model, frame if population is None else population, params, method
    )
    return contributions - reference[None, :]


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


# --------------------------------------------------------------------------- per customer


@dataclass(frozen=True)
class RiskReason:
    """One shown reason: its family, the feature its text states, and what it adds to the risk."""

    family: str
    feature: str  # its own contribution is > 0 too
    template: str  # which phrase wrote the text (churn.score.phrasing)
    # what the reason adds to the raw score (log-odds, > 0), relative to the reference: the
    # family's summed contribution, or for a "feature" reason the stated feature's own
    contribution: float
    text: str
    # "family": the family adds risk as a whole; "feature": no family gives a reason, and this
    # single feature adds risk and reads worse than its reference (at most one such reason)
    basis: str = "family"


def explain_reasons(
    contributions: np.ndarray,
    features: list[str],
    frame: pd.DataFrame,
    params: ReasonsParams,
    references: References | None = None,
) -> list[list[RiskReason]]:
    """Return, per row, up to top_k reasons that raise this customer's risk, strongest first.

    `contributions` are measured from the reasons' reference (`relative_contributions`: the
    average scored customer by default). They are summed within each family (SHAP values are
    additive, so a family's sum is its share of the score). A family is shown only when its sum is > 0 (descriptive families —
    tenure, spend, segment by default — only from `descriptive_min_contribution`), and its text
    states one of its features that itself raises the risk, compared with a reference (the
    customer's own rhythm or customers like them, churn.score.phrasing) and only when the
    comparison goes against the customer; a family with no such feature is skipped. Trailing
    windows (purchases_Nd, spend_Nd) that are empty because the last purchase is N or more days
    old restate recency, so they count in the recency family. When no family gives a reason
    (none adds risk as a whole, or none reads worse than its reference), the strongest single
    feature that adds risk (plain attributes: at least `descriptive_min_contribution`) and reads
    worse than its reference is shown alone (basis "feature"): the features of a family can pull
    apart — a silence longer than the customer's rhythm while that slow rhythm lowers the risk —
    and the part that adds risk is still this customer's reason; when no feature reads worse than
    the customer's rhythm or customers like them, it is compared with every scored customer
    (`phrase_against_everyone`: "customers overall"). Windows that restate recency are never
    shown alone: they are the recency fact, counted with it. `references` default to the rows
    of `frame` themselves; the score stage passes those of the whole scored population.
    """
    if references is None:
        references = build_references(frame, params.peer_tenure_bands_days)
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
    restated = _restating_recency(features, frame) if "recency" in names else None
    family_sums = contributions @ membership
    if restated is not None:
        # a window that is empty because of the recency says the same thing: one reason, not three
        moved = np.where(restated, contributions, 0.0)
        family_sums -= moved @ membership
        family_sums[:, names.index("recency")] += moved.sum(axis=1)
    members = {name: [i for i, f in enumerate(families) if f == name] for name in names}
    descriptive = set(params.descriptive_families)
    columns = {name: frame[name].to_numpy(dtype=object) for name in frame.columns}
    out: list[list[RiskReason]] = []
    for row in range(len(contributions)):
        customer = Customer(columns, row, references)
        sums, own = family_sums[row], contributions[row]
        # strongest first; ties by family name keep the text deterministic
        ranked = sorted((-sums[j], names[j]) for j in range(len(names)) if sums[j] > 0)
        shown: list[RiskReason] = []
        for negative, family in ranked:
            if len(shown) == params.top_k:
                break
            if family in descriptive and -negative < params.descriptive_min_contribution:
                continue
            merged = [] if restated is None else list(np.flatnonzero(restated[row]))
            if family == "recency":
                pool = members[family] + merged
            else:
                pool = [i for i in members[family] if i not in merged]
            drivers = sorted((i for i in pool if own[i] > 0), key=lambda i: (-own[i], i))
            phrased = None
            stating = [i for i in drivers if i in merged or states_recency(features[i])]
            if family == "recency" and stating:
                # "no purchase for 120 days" says best what recency and the empty windows say
                phrase = phrase_recency(RECENCY_DAYS, customer)
                if phrase is not None:
                    phrased = (stating[0], phrase)
            for i in drivers if phrased is None else []:
                phrase = phrase_feature(features[i], customer)
                if phrase is not None and all(phrase[1] != r.text for r in shown):
                    phrased = (i, phrase)
                    break
            if phrased is not None and all(phrased[1][1] != r.text for r in shown):
                i, (template, text) = phrased
                shown.append(RiskReason(family, features[i], template, float(-negative), text))
        if not shown:
            merged = set() if restated is None else set(np.flatnonzero(restated[row]))
            alone = _strongest_single(
                own, features, families, merged, descriptive, customer, params
            )
            shown = [] if alone is None else [alone]
        out.append(shown)
    return out


def _strongest_single(
    own: np.ndarray,
    features: list[str],
    families: list[str],
    merged: set[int],
    descriptive: set[str],
    customer: Customer,
    params: ReasonsParams,
) -> RiskReason | None:
    """Return the strongest single feature that adds risk and reads worse than its reference."""
    candidates = [
        i
        for i in sorted(np.flatnonzero(own > 0), key=lambda i: (-own[i], i))
        if i not in merged
        and not (families[i] in descriptive and own[i] < params.descriptive_min_contribution)
    ]
    for i in candidates:
        phrase = phrase_feature(features[i], customer)
        if phrase is not None:
            template, text = phrase
            return RiskReason(families[i], features[i], template, float(own[i]), text, "feature")
    # nothing reads worse than the customer's rhythm or customers like them: compare with every
    # scored customer, the average customer the contributions are measured from
    for i in candidates:
        phrase = phrase_against_everyone(features[i], customer)
        if phrase is not None:
            template, text = phrase
            return RiskReason(families[i], features[i], template, float(own[i]), text, "feature")
    return None


def explain_contributions(
    contributions: np.ndarray,
    features: list[str],
    frame: pd.DataFrame,
    params: ReasonsParams,
    references: References | None = None,
) -> tuple[list[str], list[str | None]]:
    """Return (reasons text, family of the first reason) per row; see `explain_reasons`.

    A row with no reason to show gets no family (so the default action) and NO_DRIVER, or
    AVERAGE_RISK when its contributions sum to <= 0 (risk at or below the reference's).
    """
    reasons = explain_reasons(contributions, features, frame, params, references)
    personal = [i for i, name in enumerate(features) if name not in CALENDAR_FEATURES]
    total = np.asarray(contributions, dtype="float64")[:, personal].sum(axis=1)
    texts = [
        REASON_SEPARATOR.join(r.text for r in shown)
        if shown
        else (NO_DRIVER if total[row] > 0 else AVERAGE_RISK)
        for row, shown in enumerate(reasons)
    ]
    return texts, [shown[0].family if shown else None for shown in reasons]


def _restating_recency(features: list[str], frame: pd.DataFrame) -> np.ndarray | None:
    """Return a (rows, features) mask of the trailing windows (purchases_Nd, spend_Nd) that are
    empty because the customer's last purchase is N or more days old: they restate recency."""
    if RECENCY_DAYS not in frame.columns:
        return None
    days = np.array([_window_days(name) for name in features], dtype="float64")
    if np.isinf(days).all():
        return None
    recency = pd.to_numeric(frame[RECENCY_DAYS], errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )
    return days[None, :] <= np.nan_to_num(recency, nan=-1.0)[:, None]


def _window_days(name: str) -> float:
    match = re.fullmatch(r"(?:purchases|spend)_(\d+)d", name)
    return float(match.group(1)) if match else math.inf


def explain_customers(
    model: ChurnModel,
    frame: pd.DataFrame,
    params: ReasonsParams,
    references: References | None = None,
    population: pd.DataFrame | None = None,
) -> tuple[list[str], list[str | None]]:
    """Return (reasons text, first reason's family) for each row of `frame` (a snapshot slice).

    `population`: the whole scored snapshot, whose average customer the contributions are
    measured from (default: `frame`); `references`: from `build_references` on it.
    """
    contributions = relative_contributions(model, frame, params, population)
    return explain_contributions(contributions, model.spec.names, frame, params, references)


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
    """Return the suggested action per customer from the family of the first reason shown.

    No reason shown (nothing raises the risk enough to name): the default action, whatever the
    value. Lapsed or unhappy customers (families in keep_family_action: recency, NPS, refunds) get
    their family's action whatever their value; other high-value customers (still buying, but
    less) get the loyalty action; the rest follow the family mapping.
    """
    actions = []
    for family, value in zip(families, np.asarray(expected_value, dtype="float64"), strict=True):
        if family is None:
            actions.append(params.default)
        elif family in params.keep_family_action:
            actions.append(params.by_family.get(family, params.default))
        elif value >= high_value_threshold:
            actions.append(params.high_value_action)
        else:
            actions.append(params.by_family.get(family, params.default))
    return actions
