"""Model quality as a user lives it: hide the last H days, run features + train, score the as-of
snapshot, compare with what happened — against every baseline, on CDNOW and generated shapes.

    python -m benchmarks.experiments.model_quality --data cdnow=/work/cdnow/CDNOW_master.txt \
        --shapes --customers 3000 [--variants before bgnbd ...] [--bootstrap 1000] \
        [--out benchmarks/results/model_quality.md]

A --data PATH is a CDNOW_master.txt file or a folder of clean tables (`churn ingest` output).
--shapes adds generated data sets (`churn generate` + `churn ingest` with the shape's `generate:`
params, made once under benchmarks/data/shapes/): short (9 months) and long (3 years) histories,
closed (everyone acquired in the first quarter) and open (customers keep arriving) bases, strong
and no seasonality, in a half-fraction design where each level appears twice. The short ones use
a 30-day horizon; `--only-shapes NAME ...` picks shapes, including the two short ones with the
default 90-day horizon (`short_open_no_season_h90`, `short_closed_strong_season_h90`).
The committed record (benchmarks/results/model_quality.md) names its exact command.

For each data set and variant, everything after as-of = last date - H is hidden; the features
stage's snapshot builder and `churn.train.fit_model` run as `churn features` / `churn train` would,
and the production model (what `churn score` uses) scores the as-of snapshot. The baselines of
`churn evaluate` (`churn.evaluate.baselines.score_baselines`: recency, frequency, RFM logistic
fitted on the training rows, BG/NBD expected purchases and P(no purchase in H), fitted on the
as-of histories) score the same customers. Model minus the best of recency, frequency and the two
BG/NBD scores in ROC AUC comes with a paired customer bootstrap 95% interval.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmarks.common import DATA, RESULTS, ROOT, generated_interim, load_clean, outcome_after
from churn.columns import CUSTOMER_ID, DATE
from churn.columns import CUTOFF as CUTOFF_COLUMN
from churn.config import Params, load_params
from churn.evaluate.baselines import score_baselines
from churn.features.build import build_snapshots
from churn.metrics import bootstrap_differences, score_metrics
from churn.train import fit_model

RIVALS = ("recency", "frequency", "bgnbd", "bgnbd_no_purchase")  # the goal's "best baseline"
SCORERS = ("model", "recency", "frequency", "rfm_logistic", "bgnbd", "bgnbd_no_purchase")


@dataclass(frozen=True)
class Shape:
    """A generated data set: its `generate:` overrides and the churn horizon used on it."""

    name: str
    generate: dict[str, Any]
    horizon: int = 90


LONG, SHORT = 1095, 273
CLOSED = {"pre_period_share": 0.0, "acquisition_days": 90}
SHAPES = (
    Shape("long_open_strong_season", {"days": LONG, "seasonality": 0.6}),
    Shape("long_closed_no_season", {"days": LONG, "seasonality": 0.0, **CLOSED}),
    # 9 months with a 90-day horizon leave one training cutoff; a 30-day horizon leaves six
    Shape("short_open_no_season", {"days": SHORT, "seasonality": 0.0}, horizon=30),
    Shape("short_closed_strong_season", {"days": SHORT, "seasonality": 0.6, **CLOSED}, horizon=30),
)
# the same short shapes with the default 90-day horizon (one training cutoff, in-time holdout);
# not in --shapes, name them with --only-shapes
SHORT_H90 = (
    Shape("short_open_no_season_h90", {"days": SHORT, "seasonality": 0.0}),
    Shape("short_closed_strong_season_h90", {"days": SHORT, "seasonality": 0.6, **CLOSED}),
)


def _features(**update: Any):  # noqa: ANN202
    return lambda params: params.model_copy(
        update={"features": params.features.model_copy(update=update)}
    )


def _train(**update: Any):  # noqa: ANN202
    return lambda params: params.model_copy(
        update={"train": params.train.model_copy(update=update)}
    )


def _cutoffs(**update: Any):  # noqa: ANN202
    return lambda params: params.model_copy(
        update={
            "features": params.features.model_copy(
                update={"cutoffs": params.features.cutoffs.model_copy(update=update)}
            )
        }
    )


def _regularized(params: Params) -> Any:
    """Return train.lightgbm with smaller, more regularized trees (the small-data candidate)."""
    return params.train.lightgbm.model_copy(
        update={"num_leaves": 15, "min_data_in_leaf": 200, "lambda_l2": 10.0}
    )


def _before(params: Params) -> Params:
    """Return params.yaml with the settings this study started from (main before issue 12)."""
    return _features(bgnbd=False)(_train(monotone={"recency_days": 1})(params))


def _on_before(change):  # noqa: ANN001, ANN202
    return lambda params: change(_before(params))


BGNBD_MONOTONE = {
    "bgnbd_p_no_purchase": 1,
    "bgnbd_expected_purchases": -1,
    "bgnbd_p_alive": -1,
}
SILENCE = {"recency_days": 1, "overdue_ratio": 1, "recency_tenure_ratio": 1}
# each variant: params.yaml -> the settings measured; candidates are one change on "before"
VARIANTS = {
    "before": _before,
    "after": lambda params: params,  # params.yaml as it is
    "bgnbd": _on_before(_features(bgnbd=True)),
    "monotone": _on_before(_train(monotone=SILENCE)),
    "monotone_windows": _on_before(
        _train(monotone={**SILENCE, "purchases_30d": -1, "purchases_90d": -1})
    ),
    "cutoffs_24x15": _on_before(_cutoffs(count=24, step_days=15)),
    "cutoffs_6": _on_before(_cutoffs(count=6)),
    "rhythm": _before,  # plus the candidate features of FRAME_VARIANTS
    # round 2 (issue 12, on params.yaml as it is)
    "bgnbd_on": _features(bgnbd=True),
    "bgnbd_monotone": lambda params: _features(bgnbd=True)(
        _train(monotone={**params.train.monotone, **BGNBD_MONOTONE})(params)
    ),
    "regularized": lambda params: _train(lightgbm=_regularized(params))(params),
    "bgnbd_monotone_regularized": lambda params: _features(bgnbd=True)(
        _train(monotone={**params.train.monotone, **BGNBD_MONOTONE}, lightgbm=_regularized(params))(
            params
        )
    ),
    "rhythm2": lambda params: params,  # plus the candidate features of FRAME_VARIANTS
    # round 3 (issue 12, benchmarks/results/model_round3.md; on params.yaml as it is)
    "dense_cutoffs": _cutoffs(count=24, step_days=15),
    "recent_weight": _train(cutoff_half_life_days=180.0),
    "gap_max": _features(rhythm=True),
    "gap_survival": lambda params: params,  # plus the candidate feature of FRAME_VARIANTS
    "cutoff_offset": _train(cutoff_offset=True),
    "monotone_silence": _train(monotone=SILENCE),
    "slow_learning": lambda params: _train(
        lightgbm=params.train.lightgbm.model_copy(update={"learning_rate": 0.01})
    )(params),
    "offset_gap_max": lambda params: _train(cutoff_offset=True)(_features(rhythm=True)(params)),
    "offset_dense": lambda params: _train(cutoff_offset=True)(
        _cutoffs(count=24, step_days=15)(params)
    ),
    "extra_trees": lambda params: _train(
        lightgbm=params.train.lightgbm.model_copy(update={"extra_trees": True})
    )(params),
    # round 4 (issue 12, benchmarks/results/model_round4.md; on params.yaml as it is)
    # "bgnbd_offset" (train.bgnbd_offset, measured worse and removed after 1fc9ebf; run it there)
    "eb_rhythm": lambda params: params,  # plus the candidate features of FRAME_VARIANTS
    "cutoff_ranks": lambda params: _train(
        monotone={**params.train.monotone, "recency_days_pct": 1}
    )(params),
    "cutoff_ranks_only": _train(monotone={"recency_days_pct": 1}),
    "cutoffs_7": _cutoffs(count=7),
}
VARIANT_NOTES = {
    "before": "main before this study: features.bgnbd off, train.monotone {recency_days: 1}",
    "after": "params.yaml as committed (the same as before: no candidate helped everywhere)",
    "bgnbd": "features.bgnbd on (expected purchases, P(alive), P(no purchase in H) per cutoff)",
    "monotone": "train.monotone: recency_days, overdue_ratio, recency_tenure_ratio all +1",
    "monotone_windows": "monotone plus purchases_30d and purchases_90d -1",
    "cutoffs_24x15": "features.cutoffs: 24 cutoffs 15 days apart (twice as many, same span)",
    "cutoffs_6": "features.cutoffs: the newest 6 cutoffs only",
    "rhythm": "two candidate features (prototype in pandas): overdue_expected_purchases = "
    "recency_days x purchase_days / (tenure_days + H) and recency_gap_last_ratio = "
    "recency_days / gap_last_days",
    "bgnbd_on": "features.bgnbd on (on params.yaml as it is)",
    "bgnbd_monotone": "bgnbd_on plus monotone: P(no purchase in H) +1, expected purchases and "
    "P(alive) -1 (the trees refine the BG/NBD probability, they cannot invert it)",
    "regularized": "train.lightgbm num_leaves 15, min_data_in_leaf 200, lambda_l2 10",
    "bgnbd_monotone_regularized": "bgnbd_monotone plus regularized",
    "rhythm2": "candidate rhythm features (prototype in pandas): own_rate_gap_probability = "
    "exp(-recency_days x purchase_days / (tenure_days + 1)) (chance of a silence this long at "
    "the customer's own rate), weighted_recency = recency_days x purchase_days, gap_excess_days "
    "= recency_days - gap_mean_days",
    "dense_cutoffs": "features.cutoffs: 24 cutoffs 15 days apart (twice as many rows, same span)",
    "recent_weight": "train.cutoff_half_life_days 180: rows weighted 0.5 ** (cutoff age / 180 "
    "days) before the newest trained cutoff",
    "gap_max": "features.rhythm: gap_max_days (longest gap so far) and recency_gap_max_ratio "
    "(silence / longest gap)",
    "gap_survival": "candidate feature (prototype in pandas): gap_survival = P(gap >= "
    "recency_days) under a gamma distribution with the customer's gap mean and CV (CV 1 with one "
    "gap)",
    "extra_trees": "train.lightgbm.extra_trees true (random split thresholds)",
    "cutoff_offset": "train.cutoff_offset: each row boosted from its cutoff's churn log-odds "
    "(init_score), so the trees rank within a cutoff and the calibrator sets the level",
    "offset_gap_max": "cutoff_offset plus gap_max",
    "monotone_silence": "train.monotone: recency_days, overdue_ratio, recency_tenure_ratio all +1 "
    "(round 1's `monotone`, now on params.yaml as it is)",
    "slow_learning": "train.lightgbm.learning_rate 0.01 (was 0.03; early stopping picks the rounds)",
    "offset_dense": "cutoff_offset plus dense_cutoffs",
    "eb_rhythm": "candidate features (prototype in pandas): eb_rate, eb_gap_survival, "
    "eb_silence_purchases — the silence against the customer's purchase rate shrunk to an NBD "
    "gamma prior fitted per cutoff (`add_eb_rhythm`)",
    "cutoff_ranks": "candidate features (prototype in pandas): the percentile within the cutoff "
    "of recency_days, tenure_days, purchase_days, purchases and spend_total (`add_cutoff_ranks`; "
    "monotone +1 on the recency percentile)",
    "cutoff_ranks_only": "cutoff_ranks with recency_days and tenure_days left out",
    "cutoffs_7": "features.cutoffs.count 7 (was 12): on CDNOW the earliest cutoff then has 185 "
    "days of data, so the 180-day windows and the 90-day trends are kept (a diagnostic: do "
    "they carry signal there?)",
}


def add_rhythm(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Candidate features relative to the customer's own rhythm (prototype before the SQL)."""
    recency = frame["recency_days"].astype("float64")
    rate = frame["purchase_days"].astype("float64") / (
        frame["tenure_days"].astype("float64") + horizon
    )
    return frame.assign(
        overdue_expected_purchases=recency * rate,
        recency_gap_last_ratio=recency / frame["gap_last_days"].astype("float64"),
    )


def add_rhythm2(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Round-2 candidate features relative to the customer's own rhythm (prototype)."""
    recency = frame["recency_days"].astype("float64")
    days = frame["purchase_days"].astype("float64")
    return frame.assign(
        own_rate_gap_probability=np.exp(
            -recency * days / (frame["tenure_days"].astype("float64") + 1.0)
        ),
        weighted_recency=recency * days,
        gap_excess_days=recency - frame["gap_mean_days"].astype("float64"),
    )


def add_gap_survival(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Round-3 candidate: the chance of a gap at least this long under the customer's own gap
    distribution (gamma with their mean gap and CV; exponential with a single gap)."""
    from scipy import special

    recency = frame["recency_days"].astype("float64").to_numpy()
    mean = frame["gap_mean_days"].astype("float64").to_numpy()
    cv = frame["gap_cv"].astype("float64").fillna(1.0).to_numpy()
    shape = np.clip(1.0 / np.maximum(cv, 1e-3) ** 2, 0.1, 100.0)
    scale = mean / shape
    survival = special.gammaincc(shape, np.maximum(recency, 0.0) / scale)
    return frame.assign(gap_survival=np.where(np.isfinite(mean) & (mean > 0), survival, np.nan))


def fit_nbd(x: np.ndarray, T: np.ndarray) -> tuple[float, float]:
    """Return the maximum-likelihood gamma prior (r, alpha) of purchase rates per day under the
    NBD: x repeat purchase days in T days of exposure, x ~ NegBin(r, alpha / (alpha + T))."""
    from scipy import optimize, special

    pairs, counts = np.unique(np.column_stack([x, T]), axis=0, return_counts=True)
    ux, uT, w = pairs[:, 0], pairs[:, 1], counts.astype("float64")

    def negative(log_params: np.ndarray) -> float:
        r, alpha = np.exp(log_params)
        ll = (
            special.gammaln(r + ux)
            - special.gammaln(r)
            + r * np.log(alpha / (alpha + uT))
            + ux * np.log(np.where(uT > 0, uT, 1.0) / (alpha + uT))
        )
        return -float(np.dot(w, ll)) / w.sum()

    start = np.log([1.0, max(float(np.mean(T)), 1.0)])
    result = optimize.minimize(negative, start, method="Nelder-Mead", options={"maxiter": 2000})
    r, alpha = np.exp(result.x)
    return float(r), float(alpha)


def add_eb_rhythm(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Round-4 candidate (prototype in pandas): the current silence against the customer's own
    rhythm shrunk to the cohort's — an empirical-Bayes gamma prior of purchase rates (NBD, fitted
    per cutoff on that cutoff's rows, no labels) updated by the customer's purchases:
    eb_rate = (r + x) / (alpha + T) purchase days per day; eb_gap_survival = ((alpha + t_x) /
    (alpha + T)) ** (r + x), the chance of a silence at least this long at the rate their
    purchases up to the last one imply; eb_silence_purchases = recency x (r + x) / (alpha + t_x),
    the purchases that rate expects during the silence."""
    x = (frame["purchase_days"].astype("float64") - 1).clip(lower=0).to_numpy()
    T = frame["tenure_days"].astype("float64").to_numpy()
    recency = frame["recency_days"].astype("float64").to_numpy()
    t_x = np.where(x > 0, np.clip(T - recency, 0.0, T), 0.0)
    rate, survival, silence = (np.full(len(frame), np.nan) for _ in range(3))
    for positions in frame.groupby(CUTOFF_COLUMN, sort=True).indices.values():
        r, alpha = fit_nbd(x[positions], T[positions])
        xs, Ts, ts, rs = x[positions], T[positions], t_x[positions], recency[positions]
        rate[positions] = (r + xs) / (alpha + Ts)
        survival[positions] = ((alpha + ts) / (alpha + Ts)) ** (r + xs)
        silence[positions] = rs * (r + xs) / (alpha + ts)
    return frame.assign(eb_rate=rate, eb_gap_survival=survival, eb_silence_purchases=silence)


AGE_LIKE = ("recency_days", "tenure_days", "purchase_days", "purchases", "spend_total")


def add_cutoff_ranks(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Round-4 candidate (prototype in pandas): each age-like column's percentile among the
    customers of the same cutoff (average ranks / count, in (0, 1]): a scored snapshot older than
    every training cutoff (a short export, an ageing closed base) lands inside the training range
    instead of beyond it, where trees extrapolate flat. Reads no label and no other cutoff."""
    groups = frame.groupby(CUTOFF_COLUMN, sort=False)
    return frame.assign(
        **{
            f"{name}_pct": groups[name].rank(method="average", pct=True).astype("float64")
            for name in AGE_LIKE
        }
    )


def replace_by_cutoff_ranks(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Round-4 candidate: add_cutoff_ranks, with recency_days and tenure_days themselves left out
    (the trees can only rank the silence and the age within the cutoff)."""
    return add_cutoff_ranks(frame, horizon).drop(columns=["recency_days", "tenure_days"])


FRAME_VARIANTS = {
    "cutoff_ranks": add_cutoff_ranks,
    "cutoff_ranks_only": replace_by_cutoff_ranks,
    "eb_rhythm": add_eb_rhythm,
    "rhythm": add_rhythm,
    "rhythm2": add_rhythm2,
    "gap_survival": add_gap_survival,
}


def shape_data(shape: Shape, customers: int) -> Path:
    """Return the clean tables of a generated shape (made once under benchmarks/data/shapes/)."""
    folder = DATA / "shapes" / f"{shape.name}_{customers}"
    settings = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    settings["generate"].update(shape.generate)
    folder.mkdir(parents=True, exist_ok=True)
    params = folder / "shape_params.yaml"
    params.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return generated_interim(folder, customers, params)


def measure(
    name: str, source: Path, horizon: int, variant: str, params: Params, bootstrap: int, seed: int
) -> dict[str, Any]:
    """Return as-of metrics of the model and every baseline, and model minus the best rival."""
    transactions, customers, nps = load_clean(source)
    as_of = max(transactions[DATE]) - timedelta(days=horizon)
    churn = params.churn.model_copy(update={"horizon_days": horizon, "as_of": as_of})
    known = transactions[transactions[DATE] <= as_of].reset_index(drop=True)
    started = time.perf_counter()
    snapshots = build_snapshots(known, customers, nps, churn, params.features, params.engine)
    train, rows = snapshots.train, snapshots.score
    if variant in FRAME_VARIANTS:
        train, rows = (FRAME_VARIANTS[variant](frame, horizon) for frame in (train, rows))
    result = fit_model(train, params.train, horizon, name)
    rows = rows.sort_values(CUSTOMER_ID, ignore_index=True)
    labels = (~rows[CUSTOMER_ID].isin(outcome_after(transactions, as_of, horizon))).to_numpy()
    labels = labels.astype("int64")
    proba = result.production_model.predict_proba(rows)
    # every training row's label window ends by as-of: the RFM logistic may learn from all of them
    # the baselines read the snapshot columns as built (a variant may drop some)
    plain = snapshots.score.sort_values(CUSTOMER_ID, ignore_index=True)
    baselines, _ = score_baselines(plain, snapshots.train, horizon, seed, name)
    scores = {b.name: b for b in baselines}
    metrics = {"model": score_metrics(labels, proba, True)}
    metrics |= {b.name: score_metrics(labels, b.score, b.is_probability) for b in baselines}
    comparison = bootstrap_differences(
        labels,
        proba,
        {n: scores[n].score for n in RIVALS},
        rows[CUSTOMER_ID].astype("string").to_numpy(),
        bootstrap,
        seed,
    )
    best = max(RIVALS, key=lambda n: metrics[n]["roc_auc"])
    return {
        "data": name,
        "as_of": as_of,
        "horizon": horizon,
        "rows": len(rows),
        "churn_rate": float(labels.mean()),
        "plan": snapshots.plan.describe() if snapshots.plan else None,
        "evaluation": result.model.evaluation,
        "seconds": time.perf_counter() - started,
        "metrics": metrics,
        "best": best,
        "diff": comparison[best],
        # for callers that go on to score the list (benchmarks/realdata_shapes.py)
        "production_model": result.production_model,
        "proba": proba,
        "labels": labels,
        "snapshot": rows,
        "first_date": min(known[DATE]),
    }


def _cell(row: dict[str, float], key: str) -> str:
    return f"{row[key]:.4f}" if key in row else "–"


def result_lines(result: dict[str, Any], variant: str) -> list[str]:
    """Return the markdown rows of one (data set, variant): one per scorer."""
    diff = result["diff"]
    lines = []
    for scorer in SCORERS:
        row = result["metrics"][scorer]
        extra = (
            f"{diff['roc_auc_diff']:+.4f} [{diff['roc_auc_diff_lo']:+.4f}, "
            f"{diff['roc_auc_diff_hi']:+.4f}] vs {result['best']}"
            if scorer == "model"
            else ""
        )
        lines.append(
            f"| {result['data']} | {variant} | {scorer} | {_cell(row, 'roc_auc')} | "
            f"{_cell(row, 'pr_auc')} | {_cell(row, 'ece')} | {extra} |"
        )
    return lines


def main() -> None:
    """Measure every data set under every variant and write the markdown record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=[], help="NAME=PATH (CDNOW file or folder)")
    parser.add_argument("--shapes", action="store_true", help="add the generated shapes")
    parser.add_argument("--only-shapes", nargs="*", default=None, help="names of shapes to run")
    parser.add_argument("--customers", type=int, default=3000, help="customers per shape")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=RESULTS / "model_quality.md")
    args = parser.parse_args()

    datasets = [
        (spec.split("=", 1)[0], Path(spec.split("=", 1)[1]), args.horizon) for spec in args.data
    ]
    if args.shapes or args.only_shapes:
        for shape in SHAPES + SHORT_H90:
            chosen = shape in SHAPES if args.only_shapes is None else shape.name in args.only_shapes
            if chosen:
                datasets.append((shape.name, shape_data(shape, args.customers), shape.horizon))
    defaults = load_params(args.params)
    lines = [
        "| data | variant | scorer | ROC AUC | PR AUC | ECE | model − best rival ROC AUC [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    summary = [
        "| data | H | as-of | customers | churn rate | evaluation | variant | model ROC AUC | "
        "PR AUC | ECE | best rival (ROC AUC) | model − best rival [95% CI] | vs before "
        "[95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    started = time.perf_counter()
    for name, source, horizon in datasets:
        reference = None
        for variant in args.variants:
            params = VARIANTS[variant](defaults)
            result = measure(name, source, horizon, variant, params, args.bootstrap, args.seed)
            lines += result_lines(result, variant)
            print("\n".join(lines[-len(SCORERS) :]), f"({result['seconds']:.0f} s)", flush=True)
            model, d, best = result["metrics"]["model"], result["diff"], result["best"]
            if reference is None:
                reference, gain = result, ""
            else:  # paired: the same customers, both models' scores in each resample
                g = bootstrap_differences(
                    result["labels"],
                    result["proba"],
                    {"before": reference["proba"]},
                    result["snapshot"][CUSTOMER_ID].astype("string").to_numpy(),
                    args.bootstrap,
                    args.seed,
                )["before"]
                gain = f" [{g['roc_auc_diff_lo']:+.4f}, {g['roc_auc_diff_hi']:+.4f}]"
            summary.append(
                f"| {name} | {horizon} | {result['as_of']} | {result['rows']} | "
                f"{result['churn_rate']:.3f} | {result['evaluation']} | {variant} | "
                f"{model['roc_auc']:.4f} | {model['pr_auc']:.4f} | {model['ece']:.4f} | "
                f"{best} ({result['metrics'][best]['roc_auc']:.4f}) | "
                f"{d['roc_auc_diff']:+.4f} [{d['roc_auc_diff_lo']:+.4f}, {d['roc_auc_diff_hi']:+.4f}] | "
                f"{model['roc_auc'] - reference['metrics']['model']['roc_auc']:+.4f}{gain} |"
            )
    elapsed = time.perf_counter() - started
    command = " ".join(
        ["python -m benchmarks.experiments.model_quality"]
        + (["--data", *args.data] if args.data else [])
        + (["--shapes"] if args.shapes else [])
        + (["--only-shapes", *args.only_shapes] if args.only_shapes else [])
        + (["--customers", str(args.customers)] if args.shapes or args.only_shapes else [])
        + ["--variants", *args.variants, "--bootstrap", str(args.bootstrap)]
    )
    report = f"""# Model quality at the as-of date: model vs every baseline

Generated by `{command}` ({elapsed:.0f} s on this machine).

Variants (each candidate is one change on "before"):

{chr(10).join(f"- **{v}**: {VARIANT_NOTES[v]}" for v in args.variants)}

Best rival = the best of recency, frequency, BG/NBD expected purchases (`bgnbd`) and BG/NBD
P(no purchase in H) (`bgnbd_no_purchase`) by ROC AUC on the same customers; the interval is a
paired bootstrap ({args.bootstrap} resamples of customers) of model minus that rival. "vs before"
= the variant's model ROC AUC minus the first variant's on the same customers, with a paired
customer bootstrap interval. ECE: 10 equal-width bins.

{chr(10).join(summary)}

All scorers, per data set and variant:

{chr(10).join(lines)}
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
