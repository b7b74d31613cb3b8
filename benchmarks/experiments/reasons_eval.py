"""Reasons before and after: which families lead, which templates, and any risk-lowering reason.

    python -m benchmarks.experiments.reasons_eval [--default DIR] [--cdnow FILE]
        [--before-rev f005361] [--out benchmarks/results/reasons.md]

default: the clean tables of `churn generate` + `churn ingest` with the repository's params.yaml
(50,000 customers; made under benchmarks/data/default/ when missing), scored at the last date as
`dvc repro` does. CDNOW: hide the last 90 days (as-of = last date - 90), as a user's first run on
their own export. For each: the features stage builds the snapshots, `churn.train.fit_model`
trains (cached under benchmarks/data/reasons/), and `churn.score.build_scores` scores the as-of
snapshot with params.yaml's `score` section. "before" is src/churn/score/reasons.py at
`--before-rev` (loaded from git), run on the same flagged customers with raw TreeSHAP
contributions (measured from the training rows); "after" measures them from the average scored
customer, as `churn score` now does.

A shown reason "lowers risk" when its family's summed contribution (for a single-feature reason,
its feature's), or the contribution of the feature its text states, is <= 0 (log-odds, each
version under its own reference; TreeSHAP when at most exact_max_rows are flagged).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from benchmarks.common import DATA, HORIZON, RESULTS, ROOT, generated_interim, load_clean
from churn.columns import AT_RISK, CALENDAR_FEATURES, CUSTOMER_ID, DATE, REASON_FAMILY, REASONS
from churn.config import load_params
from churn.features.build import build_snapshots
from churn.model import ChurnModel
from churn.score import build_scores
from churn.score import reasons as after_module
from churn.score.phrasing import states_recency
from churn.train import fit_model

NOTES = """## Reading

- **What "raises the risk" is measured from.** Before, a contribution was raw TreeSHAP: measured
  from the booster's expected value over its *training* rows. After, it is measured from the
  average *scored* customer (`score.reasons.contribution_reference: scored`): each feature's
  TreeSHAP value minus its mean over the customers scored with this one, so a customer's
  contributions add up to their log-odds minus the scored customers' mean log-odds. On CDNOW the
  base has aged since the training cutoffs (everyone old and likely to churn at the as-of date):
  measured from the training rows, half of the flagged customers had no reason (nothing above
  the training average), while they are riskier than the customers scored with them; measured
  from the scored customers, every one has one, and their long silence leads for most.
- **No shown reason lowers risk**, before or after, under each version's own reference: every
  family shown adds to the log-odds, and so does the feature its text states.
- **Every flagged customer gets a reason.** When no family adds risk as a whole (its features
  pull apart: a silence longer than the customer's rhythm while that slow rhythm lowers the
  risk), or none reads worse than its reference, the strongest single feature that adds risk and
  reads worse than its reference is shown alone (`basis: feature`); when neither their own rhythm
  nor customers like them makes any such feature read worse (a new one-purchase customer is like
  the other new customers), the reference is every scored customer ("customers overall", the
  same average the contributions are measured from). The single-feature rows are counted below.
- **Every text has a reference**: the customer's own rhythm (`*_vs_own*`), the median of
  customers in the same tenure band of the scored population (`*_vs_peers`), or all scored
  customers (`*_vs_population` for tenure and segments, `*_vs_everyone` as the last resort);
  a comparison that does not go against the customer is no reason.
- **`descriptive_min_contribution: 0.1`** (about 2.5 probability points at p = 0.5) still keeps
  plain attributes (tenure, average order, region, channel) to those that raise risk materially;
  the sweeps below measure it under the new reference.
"""
BEHAVIOURAL = ("recency", "frequency", "spend_trend", "refunds", "nps")
DESCRIPTIVE = ("tenure", "spend", "segment")


# --------------------------------------------------------------------------- data and model
def prepare(name: str, source: Path, hide_days: int, params_file: Path) -> tuple:
    """Return (as-of snapshot, production model) for a data set, trained once and cached."""
    cache = DATA / "reasons" / name
    snapshot_file, model_folder = cache / "snapshot.parquet", cache / "model"
    if snapshot_file.is_file() and (model_folder / "metadata.json").is_file():
        return pd.read_parquet(snapshot_file), ChurnModel.load(model_folder)
    params = load_params(params_file)
    transactions, customers, nps = load_clean(source)
    as_of = max(transactions[DATE]) - timedelta(days=hide_days)
    known = transactions[transactions[DATE] <= as_of].reset_index(drop=True)
    churn = params.churn.model_copy(update={"horizon_days": HORIZON, "as_of": as_of})
    snapshots = build_snapshots(known, customers, nps, churn, params.features, params.engine)
    result = fit_model(snapshots.train, params.train, HORIZON, name)
    cache.mkdir(parents=True, exist_ok=True)
    result.production_model.save(model_folder)
    snapshots.score.to_parquet(snapshot_file)
    return snapshots.score, ChurnModel.load(model_folder)


def load_before(rev: str) -> ModuleType:
    """Return src/churn/score/reasons.py as it was at git revision `rev`, as a module."""
    source = subprocess.run(
        ["git", "show", f"{rev}:src/churn/score/reasons.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("reasons_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules["reasons_before"] = module  # dataclasses look their module up by name
    exec(compile(source, f"{rev}:reasons.py", "exec"), module.__dict__)  # noqa: S102
    return module


# --------------------------------------------------------------------------- before: parse texts
# the feature each old template states, and its family (old reasons.py had no structure)
BEFORE_TEMPLATES = [
    (r"^no purchase for", "recency_days", "recency"),
    (r"purchases? in the last 90 days", "purchases_90d", "frequency"),
    (r"purchases? in total$", "purchases", "frequency"),
    (r"spend in the last 90 days|spent .* in the last 90 days", "spend_90d", "spend_trend"),
    (r"^average order of", "aov", "spend"),
    (r"^spent .* in total$", "spend_total", "spend"),
    (r"^customer for", "tenure_days", "tenure"),
    (r"NPS", "nps_latest", "nps"),
    (r"refund|zero-amount", "refunds", "refunds"),
    (r"^buys via", "channel", "segment"),
    (r"^in region", "region", "segment"),
]


def template_of(text: str) -> str:
    """Return a text with its numbers and category values replaced: the template it came from."""
    text = re.sub(r"^(in region|buys via) \S+", r"\1 X", text)
    text = re.sub(r"-?\d[\d,]*(\.\d+)?", "N", text)
    return re.sub(r"(?<!no )\b(day|purchase|refund|point|transaction)s?\b", r"\1(s)", text)


def before_rows(module: ModuleType, contributions, features, rows, params) -> list[list[dict]]:
    """Return the old reasons per row as dicts (family, feature, template, contributions)."""
    texts, _ = module.explain_contributions(contributions, features, rows, params)
    family_of = [after_module.family_of(name, params.families) for name in features]
    index = {name: i for i, name in enumerate(features)}
    out = []
    for row, joined in enumerate(texts):
        shown = []
        for text in [] if joined == module.NO_DRIVER else joined.split(" | "):
            feature, family = next(
                ((f, fam) for pattern, f, fam in BEFORE_TEMPLATES if re.search(pattern, text)),
                (text.split(":", 1)[0].replace(" ", "_"), None),
            )
            family = family or after_module.family_of(feature, params.families)
            members = [i for i, f in enumerate(family_of) if f == family]
            stated = contributions[row, index[feature]] if feature in index else np.nan
            if feature == "recency_days":
                # as after the change: "no purchase for N days" also states the forms of recency
                # and the trailing windows it empties
                recency = float(rows["recency_days"].iloc[row])
                same = [
                    i
                    for i, f in enumerate(features)
                    if states_recency(f) or window_days(f) <= recency
                ]
                stated = max(contributions[row, same])
            family_sum = float(contributions[row, members].sum()) if members else np.nan
            if family == "recency" and row_inactive(module, rows, row):
                merged = [i for i, f in enumerate(family_of) if f in module.MERGED_WHEN_INACTIVE]
                family_sum += float(contributions[row, merged].sum())
            shown.append(
                {
                    "family": family,
                    "feature": feature,
                    "template": template_of(text),
                    "contribution": family_sum,
                    "stated": float(stated),
                }
            )
        out.append(shown)
    return out


def window_days(name: str) -> float:
    match = re.fullmatch(r"(?:purchases|spend)_(\d+)d", name)
    return float(match.group(1)) if match else float("inf")


def row_inactive(module: ModuleType, rows: pd.DataFrame, row: int) -> bool:
    return float(rows["recency_days"].iloc[row]) >= module.INACTIVE_DAYS


def after_rows(module: ModuleType, contributions, features, rows, params, references):
    """Return the new reasons per row as dicts, from the structured reasons."""
    reasons = module.explain_reasons(contributions, features, rows, params, references)
    index = {name: i for i, name in enumerate(features)}
    return [
        [
            {
                "family": r.family,
                "feature": r.feature,
                "template": r.template,
                "contribution": r.contribution,
                "stated": float(contributions[row, index[r.feature]]),
                "text": r.text,
                "basis": getattr(r, "basis", "family"),
            }
            for r in shown
        ]
        for row, shown in enumerate(reasons)
    ]


# --------------------------------------------------------------------------- summary
def summarise(rows: list[list[dict]]) -> dict:
    """Return the shares and counts the report shows for one variant."""
    flagged = len(rows)
    first = Counter(shown[0]["family"] if shown else "(no driver)" for shown in rows)
    behavioural = sum(n for family, n in first.items() if family in BEHAVIOURAL)
    descriptive = sum(n for family, n in first.items() if family in DESCRIPTIVE)
    reasons = [reason for shown in rows for reason in shown]
    return {
        "flagged": flagged,
        "first_family": first,
        "behavioural": behavioural / flagged if flagged else float("nan"),
        "behavioural_of_shown": behavioural / max(1, behavioural + descriptive + other(first)),
        "descriptive": descriptive / flagged if flagged else float("nan"),
        "templates": Counter(reason["template"] for reason in reasons),
        "examples": {r["template"]: r.get("text", "") for r in reversed(reasons)},
        "reasons": len(reasons),
        "per_row": len(reasons) / flagged if flagged else float("nan"),
        "family_le_0": sum(reason["contribution"] <= 0 for reason in reasons),
        "stated_le_0": sum(not reason["stated"] > 0 for reason in reasons),
    }


def other(first: Counter) -> int:
    """Return how many first reasons are of neither kind (unknown families)."""
    known = set(BEHAVIOURAL) | set(DESCRIPTIVE) | {"(no driver)"}
    return sum(n for family, n in first.items() if family not in known)


def family_table(before: dict, after: dict) -> str:
    families = sorted(set(before["first_family"]) | set(after["first_family"]))
    lines = ["| first-reason family | before | after |", "|---|---|---|"]
    for family in sorted(families, key=lambda f: -after["first_family"].get(f, 0)):
        counts = [s["first_family"].get(family, 0) for s in (before, after)]
        cells = [
            f"{n:,} ({n / s['flagged']:.1%})" for n, s in zip(counts, (before, after), strict=True)
        ]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def template_table(summary: dict, with_example: bool = False) -> str:
    """Return a table of reason templates by count (with the first text of each, if asked)."""
    lines = (
        ["| template | reasons shown | first example |", "|---|---|---|"]
        if with_example
        else ["| template | reasons shown |", "|---|---|"]
    )
    for template, count in sorted(summary["templates"].items(), key=lambda kv: (-kv[1], kv[0])):
        example = f" {summary['examples'][template]} |" if with_example else ""
        lines.append(f"| {template} | {count:,} |{example}")
    return "\n".join(lines)


def headline(before: dict, after: dict) -> str:
    rows = [
        ("flagged customers", "flagged", "{:,}"),
        ("reasons shown", "reasons", "{:,}"),
        ("reasons per flagged customer", "per_row", "{:.2f}"),
        ("first reason behavioural (of flagged customers)", "behavioural", "{:.1%}"),
        ("first reason behavioural (of customers with a reason)", "behavioural_of_shown", "{:.1%}"),
        (
            "first reason descriptive: tenure / spend / segment (of flagged)",
            "descriptive",
            "{:.1%}",
        ),
        ("shown reasons with family contribution <= 0", "family_le_0", "{:,}"),
        ("shown reasons whose stated feature has contribution <= 0", "stated_le_0", "{:,}"),
    ]
    lines = ["| | before | after |", "|---|---|---|"]
    for label, key, fmt in rows:
        lines.append(f"| {label} | {fmt.format(before[key])} | {fmt.format(after[key])} |")
    return "\n".join(lines)


def examples(scores: pd.DataFrame, count: int = 8) -> str:
    flagged = scores[scores[AT_RISK]].sort_values("priority").head(count)
    return "\n".join(f"- {r[REASONS]} → *{r['suggested_action']}*" for _, r in flagged.iterrows())


def threshold_sweep(contributions, features, rows, reasons, references) -> str:
    """Return a table: descriptive reasons shown against descriptive_min_contribution."""
    lines = [
        "| descriptive_min_contribution | descriptive reasons shown | first reason descriptive |"
        " no reason shown |",
        "|---|---|---|---|",
    ]
    for threshold in (0.0, 0.05, 0.1, 0.2, 0.3):
        params = reasons.model_copy(update={"descriptive_min_contribution": threshold})
        shown = after_module.explain_reasons(contributions, features, rows, params, references)
        plain = set(params.descriptive_families)
        count = sum(r.family in plain for row in shown for r in row)
        first = sum(bool(row) and row[0].family in plain for row in shown)
        empty = sum(not row for row in shown)
        lines.append(
            f"| {threshold:g} | {count:,} | {first / len(shown):.1%} | {empty / len(shown):.1%} |"
        )
    return "\n".join(lines)


def measure(name: str, snapshot: pd.DataFrame, model: ChurnModel, params, before: ModuleType):
    """Return (section text, after summary) for one data set."""
    scores = build_scores(snapshot, model, params.score)
    flagged = scores[AT_RISK].to_numpy(dtype=bool)
    by_id = snapshot.set_index(snapshot[CUSTOMER_ID].astype("string"))
    rows = by_id.loc[scores.loc[flagged, CUSTOMER_ID].to_numpy()].reset_index(drop=True)
    reasons = params.score.reasons
    method = after_module.choose_method(reasons, len(rows))
    raw = after_module.compute_contributions(model, rows, method, reasons.batch_rows)
    # after: measured from the average scored customer, as build_scores does
    contributions = after_module.relative_contributions(model, rows, reasons, snapshot)
    features = model.spec.names
    calendar = [i for i, f in enumerate(features) if f in CALENDAR_FEATURES]
    raw[:, calendar] = contributions[:, calendar] = 0.0  # both versions ignore the time of year
    references = after_module.build_references(
        snapshot, reasons.peer_tenure_bands_days, model.predict_proba(snapshot)
    )
    new = after_rows(after_module, contributions, features, rows, reasons, references)
    shown = scores.loc[flagged, REASONS].tolist()
    structured, _ = after_module.explain_contributions(
        contributions, features, rows, reasons, references
    )
    if structured != shown:
        raise SystemExit(f"{name}: build_scores texts differ from explain_contributions")
    # before: raw TreeSHAP (measured from the training rows), its own explain
    if hasattr(before, "explain_reasons"):
        old = after_rows(before, raw, features, rows, reasons, references)
    else:  # revisions before the structured reasons: read the family from the wording
        old = before_rows(before, raw, features, rows, reasons)
    b, a = summarise(old), summarise(new)
    single = sum(r.get("basis") == "feature" for row in new for r in row)
    no_driver = int(scores.loc[flagged, REASON_FAMILY].isna().sum())
    without = np.array([not shown for shown in new])
    below = int((contributions[without].sum(axis=1) <= 0).sum())
    probability = scores.loc[flagged, "churn_probability"].to_numpy(dtype="float64")
    population_mean = float(scores["churn_probability"].mean())
    sweep = threshold_sweep(contributions, features, rows, reasons, references)
    first = np.array([shown[0]["contribution"] for shown in new if shown])
    nan = float("nan")
    no_reason_note = (
        f"After: {single:,} flagged customers get a single-feature reason (no family adds risk as "
        f"a whole) and {no_driver:,} get none."
    )
    if no_driver:
        no_reason_note += (
            f" Of those, {below:,} have contributions (from the average scored customer) that "
            "sum to <= 0 (mean churn probability "
            f"{probability[without].mean() if without.any() else nan:.3f}, against "
            f"{probability[~without].mean() if (~without).any() else nan:.3f} for flagged "
            f"customers with a reason and {population_mean:.3f} over every scored customer); the "
            "others have features that add risk, but none reads worse than any reference."
        )
    sweep_note = (
        "Plain attributes against `descriptive_min_contribution` (log-odds; everything else as "
        "after). For scale, the first reasons shown add a median "
        f"{np.median(first) if len(first) else nan:.2f} (10th percentile "
        f"{np.quantile(first, 0.1) if len(first) else nan:.2f}):"
    )
    section = f"""## {name}

{len(snapshot):,} customers scored, {int(flagged.sum()):,} flagged; contributions by `{method}`.

{headline(b, a)}

Share of flagged customers by the family of their first reason ("(no driver)": no reason raises
their risk enough to show; after the change they get `{after_module.NO_DRIVER}`, or
`{after_module.AVERAGE_RISK}` when their contributions sum to <= 0, and the default
action — {no_driver:,} customers here):

{family_table(b, a)}

{no_reason_note}

{sweep_note}

{sweep}

Reason templates, before (numbers replaced by N):

{template_table(b)}

Reason templates, after:

{template_table(a, with_example=True)}

The first flagged customers by priority, after:

{examples(scores)}
"""
    return section, a


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default", type=Path, default=DATA / "default" / "interim")
    parser.add_argument("--cdnow", type=Path, default=Path("/work/cdnow/CDNOW_master.txt"))
    parser.add_argument("--before-rev", default="f005361")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=RESULTS / "reasons.md")
    args = parser.parse_args()
    started = time.perf_counter()
    if not (args.default / "transactions.parquet").is_file():
        generated_interim(args.default.parent, 50_000)
    params = load_params(args.params)
    before = load_before(args.before_rev)
    sections = []
    for name, source, hide in (
        ("default data (as-of = last date)", args.default, 0),
        (f"CDNOW (as-of = last date - {HORIZON} days)", args.cdnow, HORIZON),
    ):
        key = "default" if source == args.default else "cdnow"
        snapshot, model = prepare(key, source, hide, args.params)
        section, _ = measure(name, snapshot, model, params, before)
        print(section, flush=True)
        sections.append(section)
    elapsed = time.perf_counter() - started
    report = f"""# Reasons that explain: before and after

Generated by `python -m benchmarks.experiments.reasons_eval --before-rev {args.before_rev}`
({elapsed:.0f} s on this machine, models cached under benchmarks/data/reasons/).

"before" is `src/churn/score/reasons.py` at {args.before_rev} on raw TreeSHAP contributions
(measured from the training rows); "after" is this commit's on contributions measured from the
average scored customer (`score.reasons.contribution_reference: scored`). Both run on the same
flagged customers; the score section of params.yaml is this commit's. A reason counts as behavioural when its family is one of {", ".join(BEHAVIOURAL)};
descriptive when {", ".join(DESCRIPTIVE)}. "Stated feature" is the feature whose value the text
states (for revisions before the structured reasons, read from the wording); a reason lowers risk when its family's summed
contribution or its stated feature's contribution is <= 0 (log-odds).

{NOTES}
{chr(10).join(sections)}"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
