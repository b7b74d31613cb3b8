"""How many customers does the booster need? Out-of-time quality of `train.sample_customers`.

    python -m benchmarks.experiments.train_sample --features /path/to/data/features --label 10M \
        [--params /path/to/params.yaml] [--samples 250000 100000 50000] [--bootstrap 200]
    python -m benchmarks.experiments.train_sample --customers 60000 [--samples 20000 10000 5000]

The training snapshots are either an existing features folder (the `train.parquet` the features
stage wrote; read only) or, with --customers, the default generated data built once under
benchmarks/data/ by the real CLI (`churn generate`, `churn ingest`, `churn features`).

For every size (all fit customers first, the reference, then each --samples size) a child process
does what the train stage does for the evaluation model: reads the snapshots thinned to the sample
before pandas holds them (`churn.training_rows.read_snapshots`), fits with the params file's train section
(`fit_model`, only `sample_customers` changed; production refit off unless --production-refit:
it does not touch the test metrics) and scores the test cutoff. Only the booster's fit rows are
thinned: early stopping, calibration and test are the same customers for every size, checked here.
Each child runs in its own memory cgroup (benchmarks.scale.run_capped): --cap (default 3 GiB, the
issue's budget) for the samples, --reference-cap for the all-rows reference, which is the yardstick,
not a candidate default. Per size: test ROC AUC, PR AUC and ECE, their differences from the
reference with a paired customer bootstrap (the same resampled test customers for both models),
early-stopping rounds, fit and read seconds, peak RSS. The bound (issue 14): within 0.003 ROC AUC
and 0.005 ECE of training on all rows. Also per size: the kept share of each fit cutoff's
customers (the sample is by customer, so it should be the same share at every cutoff).

Results: benchmarks/results/train_sample_<label>.md and .json (the script writes both).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import DATA, RESULTS, ROOT, generated_interim

AUC_BOUND = 0.003  # issue 14: out-of-time ROC AUC within this of training on all rows
ECE_BOUND = 0.005  # and ECE within this
ALL = "all"


def parse_size(text: str) -> int:
    """Return a byte count from '3G', '512M' or a plain number."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    text = text.strip().upper()
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


# --------------------------------------------------------------------------- one size (child)
def fit_one(
    snapshots: Path, params_path: Path, size: str, out: Path, production_refit: bool
) -> dict[str, object]:
    """Fit the evaluation model on one sample size; write its test scores (npz) and record (json)."""
    from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, ROLE
    from churn.config import load_params
    from churn.cutoffs import CALIBRATION, TEST
    from churn.train import fit_model
    from churn.training_rows import read_snapshots

    settings = load_params(params_path)
    sample = None if size == ALL else int(size)
    horizon = settings.churn.horizon_days
    started = time.perf_counter()
    # what the train stage reads (churn.training_rows.read_training_snapshots): fit/gap rows of the sample only; the
    # production refit's own sample is read only when that refit runs
    frame, customers_fit = read_snapshots(snapshots, sample, horizon if production_refit else None)
    read_seconds = time.perf_counter() - started
    params = settings.train.model_copy(
        update={"sample_customers": sample, "production_refit": production_refit}
    )
    started = time.perf_counter()
    result = fit_model(frame, params, horizon, str(snapshots), customers_fit=customers_fit)
    fit_seconds = time.perf_counter() - started
    roles = frame[ROLE].astype("string")
    test = frame[(roles == TEST).to_numpy(bool, na_value=False)]
    if test.empty:
        raise SystemExit(f"{snapshots}: no test-role rows: nothing out of time to measure")
    proba = result.model.predict_proba(test)
    held = frame.loc[(roles == CALIBRATION).to_numpy(bool, na_value=False), [CUSTOMER_ID, CUTOFF]]
    held_keys = np.sort(
        (held[CUSTOMER_ID].astype("string") + "|" + held[CUTOFF].astype("string")).to_numpy(str)
    )
    np.savez(
        out.with_suffix(".npz"),
        customer_id=test[CUSTOMER_ID].astype("string").to_numpy(str),
        churned=test[CHURNED].to_numpy("int8"),
        proba=np.asarray(proba, dtype="float64"),
    )
    diagnostics = result.diagnostics
    record = {
        "size": size,
        "rounds": int(result.rounds),
        "rows_fit": int(diagnostics["rows_fit"]),
        "customers_fit": int(diagnostics["customers_fit"]),
        "customers_fit_available": int(diagnostics["customers_fit_available"]),
        "rows_early_stopping": int(diagnostics["rows_early_stopping"]),
        "rows_calibration": int(diagnostics["rows_calibration"]),
        # the calibration-role rows (early stopping + calibration): the same for every size
        "calibration_rows_sha256": hashlib.sha256("\n".join(held_keys).encode()).hexdigest(),
        "calibrator": result.model.calibrator.kind,
        "rows_read": len(frame),
        "read_seconds": round(read_seconds, 2),
        "fit_seconds": round(fit_seconds, 2),
        "production_refit": production_refit,
        "production_rows": int(diagnostics.get("production_rows", 0)) or None,
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


# --------------------------------------------------------------------------- comparison (parent)
def _groups(score: np.ndarray) -> tuple[np.ndarray, int]:
    unique, inverse = np.unique(-score, return_inverse=True)
    return inverse, unique.size


def _ece(labels: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> float:
    """ECE (churn.metrics.expected_calibration_error's bins) with row weights."""
    from churn.metrics import ECE_BINS

    index = np.minimum((proba * ECE_BINS).astype("int64"), ECE_BINS - 1)
    observed = np.bincount(index, weights=weights * labels, minlength=ECE_BINS)
    predicted = np.bincount(index, weights=weights * proba, minlength=ECE_BINS)
    return float(np.sum(np.abs(observed - predicted)) / weights.sum())


def paired_bootstrap(
    labels: np.ndarray,
    customers: np.ndarray,
    reference: np.ndarray,
    others: dict[str, np.ndarray],
    resamples: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Return each score's ROC AUC, PR AUC and ECE minus the reference's, with 95% percentile CIs
    over customer resamples; both scores are measured on the same resampled customers."""
    from churn.metrics import weighted_auc_ap

    labels = np.asarray(labels, dtype="float64")
    _, customer_index = np.unique(customers, return_inverse=True)
    n_customers = int(customer_index.max()) + 1
    scores = {ALL: reference, **others}
    grouped = {name: _groups(np.asarray(s, dtype="float64")) for name, s in scores.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[tuple[float, float, float]]] = {name: [] for name in scores}
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, n_customers, n_customers), minlength=n_customers)
        weights = counts[customer_index].astype("float64")
        for name, (g, k) in grouped.items():
            auc, ap = weighted_auc_ap(g, k, labels, weights)
            draws[name].append((auc, ap, _ece(labels, scores[name], weights)))
    base = np.asarray(draws[ALL])
    out: dict[str, dict[str, float]] = {}
    for name in others:
        diff = np.asarray(draws[name]) - base
        row: dict[str, float] = {}
        for j, metric in enumerate(("roc_auc", "pr_auc", "ece")):
            lo, hi = np.nanpercentile(diff[:, j], [2.5, 97.5])
            row[f"{metric}_diff_lo"], row[f"{metric}_diff_hi"] = float(lo), float(hi)
        out[name] = row
    return out


def cutoff_shares(snapshots: Path, sizes: list[int]) -> dict[str, dict[str, float]]:
    """Return, per sample size, the kept share of each fit cutoff's customers (min, max, target)."""
    import duckdb

    from churn.columns import CUSTOMER_ID, CUTOFF, ROLE
    from churn.cutoffs import FIT
    from churn.training_rows import sampled_ids

    con = duckdb.connect(config={"threads": "1", "memory_limit": "512MB"})
    try:
        rel = f"read_parquet('{str(snapshots).replace(chr(39), chr(39) * 2)}')"
        fit = con.sql(
            f"SELECT {CUSTOMER_ID}, {CUTOFF} FROM {rel} WHERE {ROLE} = '{FIT}'"
        ).df()  # fmt: skip
    finally:
        con.close()
    ids = fit[CUSTOMER_ID].astype("string")
    customers = ids.nunique()
    out = {}
    for size in sizes:
        chosen = sampled_ids(ids, size)
        kept = np.ones(len(fit), bool) if chosen is None else ids.isin(chosen).to_numpy(bool)
        share = pd.Series(kept).groupby(fit[CUTOFF].to_numpy()).mean()
        out[str(size)] = {
            "target": round(min(1.0, size / customers), 4),
            "min": round(float(share.min()), 4),
            "max": round(float(share.max()), 4),
            "cutoffs": int(share.size),
        }
    return out


def snapshot_summary(snapshots: Path) -> dict[str, object]:
    """Return the training snapshots' rows, and rows and customers per role."""
    import duckdb

    from churn.columns import CUSTOMER_ID, ROLE

    con = duckdb.connect(config={"threads": "1", "memory_limit": "512MB"})
    try:
        rel = f"read_parquet('{str(snapshots).replace(chr(39), chr(39) * 2)}')"
        rows = con.sql(
            f"SELECT {ROLE}, count(*) AS n, count(DISTINCT {CUSTOMER_ID}) AS c, "
            f"count(DISTINCT cutoff) AS k FROM {rel} GROUP BY {ROLE} ORDER BY {ROLE}"
        ).fetchall()
    finally:
        con.close()
    return {
        "rows": int(sum(r[1] for r in rows)),
        "roles": {
            r[0]: {"rows": int(r[1]), "customers": int(r[2]), "cutoffs": int(r[3])} for r in rows
        },
    }


# --------------------------------------------------------------------------- data
def generated_features(customers: int) -> Path:
    """Return a features folder built once from the default generated data (the real CLI)."""
    folder = DATA / f"train_sample_{customers}"
    interim = generated_interim(folder, customers)
    features = folder / "features"
    if not (features / "train.parquet").is_file():
        subprocess.run(
            [sys.executable, "-m", "churn", "features",
             "--transactions", str(interim / "transactions.parquet"),
             "--customers", str(interim / "customers.parquet"),
             "--nps", str(interim / "nps.parquet"), "--out", str(features),
             "--report", str(folder / "features.json"), "--params", str(folder / "params.yaml")],
            check=True,
        )  # fmt: skip
    return features


# --------------------------------------------------------------------------- report
def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


def markdown(results: dict) -> str:
    data, rows = results["data"], results["sizes"]
    roles = data["snapshots"]["roles"]
    fit, test = roles.get("fit", {}), roles.get("test", {})
    lines = [
        f"# Training on a customer sample at {results['label']}: out-of-time quality, time and memory",
        "",
        f"Written by `{results['command']}` at {results['written_at']} on {results['machine']}. "
        f"Snapshots: `{data['snapshots_path']}` ({data['snapshots']['rows']:,} rows; "
        f"{fit.get('customers', 0):,} fit customers in {fit.get('rows', 0):,} fit rows over "
        f"{fit.get('cutoffs', 0)} cutoffs; {test.get('rows', 0):,} test rows at the newest labelled "
        f"cutoff). Params: `{results['params']}`, train section unchanged except "
        f"`sample_customers` (production refit {'on' if results['production_refit'] else 'off'}: "
        "it does not change the test metrics). Early stopping, calibration and test are the same "
        f"customers for every size (checked: {results['same_held_out_rows']}). Bound (issue 14): "
        f"|ΔROC AUC| ≤ {AUC_BOUND} and |ΔECE| ≤ {ECE_BOUND} against all fit customers. "
        f"CIs: 95% paired customer bootstrap ({results['bootstrap']} resamples, seed "
        f"{results['seed']}). Memory cap per child: {results['cap']} for the samples, "
        f"{results['reference_cap']} for the reference ({results['cap_kind']}). Peak RSS: the "
        "child's largest resident set (read + fit + test scoring).",
        "",
        "| sample_customers | customers fit | fit rows | rounds | ROC AUC | Δ AUC [95% CI] | "
        "PR AUC | Δ PR AUC [95% CI] | ECE | Δ ECE [95% CI] | read s | fit s | peak RSS MB | "
        "cgroup peak MB | exit | within bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.get("exit_code") != 0:
            lines.append(
                f"| {row['size']} | - | - | - | - | - | - | - | - | - | - | - | "
                f"{_fmt(row.get('peak_rss_mb'), ',.0f')} | {_fmt(row.get('cgroup_peak_mb'), ',.0f')} "
                f"| {row.get('exit_code')} | failed: {row.get('hint') or row.get('error', '')} |"
            )
            continue
        cis = []
        for metric in ("roc_auc", "pr_auc", "ece"):
            diff = row.get(f"{metric}_diff")
            if row["size"] == ALL:
                cis.append("reference")
            else:
                cis.append(
                    f"{diff:+.4f} [{row[f'{metric}_diff_lo']:+.4f}, {row[f'{metric}_diff_hi']:+.4f}]"
                    if f"{metric}_diff_lo" in row
                    else f"{diff:+.4f}"
                )
        within = "reference" if row["size"] == ALL else ("yes" if row["within_bound"] else "**no**")
        lines.append(
            f"| {row['size']} | {row['customers_fit']:,} | {row['rows_fit']:,} | {row['rounds']} | "
            f"{row['roc_auc']:.4f} | {cis[0]} | {row['pr_auc']:.4f} | {cis[1]} | {row['ece']:.4f} | "
            f"{cis[2]} | {row['read_seconds']:.0f} | {row['fit_seconds']:.0f} | "
            f"{row['peak_rss_mb']:,.0f} | {_fmt(row.get('cgroup_peak_mb'), ',.0f')} | "
            f"{row['exit_code']} | {within} |"
        )
    lines += ["", "Kept share of each fit cutoff's customers (the sample is by customer):", ""]
    for size, share in results["cutoff_shares"].items():
        lines.append(
            f"- {int(size):,}: target {share['target']:.4f}, {share['cutoffs']} cutoffs "
            f"between {share['min']:.4f} and {share['max']:.4f}"
        )
    lines += ["", f"**Verdict.** {results['verdict']}", ""]
    loads = [f"{r['size']}: {r.get('load_before')}→{r.get('load_after')}" for r in rows]
    lines.append(f"1-minute load average before→after each child: {'; '.join(loads)}.")
    return "\n".join(lines) + "\n"


def verdict(rows: list[dict], default: int | None) -> str:
    """Say, from the measured rows, whether the default size meets the bound and which is smallest."""
    measured = [r for r in rows if r["size"] != ALL and r.get("exit_code") == 0]
    meeting = sorted(
        (int(r["size"]) for r in measured if r["within_bound"]),
    )
    parts = []
    by_size = {int(r["size"]): r for r in measured}
    if default is None:
        parts.append("params.yaml trains on every customer (sample_customers: null).")
    elif default in by_size:
        r = by_size[default]
        parts.append(
            f"The default, {default:,}, {'meets' if r['within_bound'] else 'misses'} the bound "
            f"(Δ AUC {r['roc_auc_diff']:+.4f}, Δ ECE {r['ece_diff']:+.4f})."
        )
        if "roc_auc_diff_lo" in r:
            inside = (
                -AUC_BOUND <= r["roc_auc_diff_lo"] <= r["roc_auc_diff_hi"] <= AUC_BOUND
                and -ECE_BOUND <= r["ece_diff_lo"] <= r["ece_diff_hi"] <= ECE_BOUND
            )
            parts.append(
                f"Its 95% CIs {'lie' if inside else 'do not lie'} entirely inside the bound."
            )
    else:
        parts.append(f"The default ({default:,}) was not measured here.")
    if meeting:
        parts.append(f"Smallest measured size within the bound: {meeting[0]:,}.")
    else:
        parts.append("No measured sample size is within the bound.")
    available = next((r["customers_fit_available"] for r in measured), None)
    if available is not None:
        capped = [s for s in by_size if s >= available]
        if capped:
            parts.append(
                f"{', '.join(f'{s:,}' for s in sorted(capped))} ≥ the {available:,} fit customers: "
                "no sampling there (the same model as all rows)."
            )
    return " ".join(parts)


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", type=Path, help="features folder holding train.parquet")
    source.add_argument("--customers", type=int, help="generate default data with N customers")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--samples", type=int, nargs="+", default=None,
                        help="sizes besides all rows (default: params' size, its 2/5 and 1/5)")  # fmt: skip
    parser.add_argument("--label", default=None, help="results name: train_sample_<label>")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap", default="3G", help="memory cap of each sample's child")
    parser.add_argument("--reference-cap", default="16G", help="memory cap of the all-rows child")
    parser.add_argument("--production-refit", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="scores and logs (default: data/)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: one size
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    snapshots = args.features if args.features else generated_features(args.customers)
    snapshots = snapshots / "train.parquet" if snapshots.is_dir() else snapshots
    if args.one is not None:
        from churn.logs import setup_logging

        setup_logging()  # the fit's progress lines go to the child's log
        print(
            json.dumps(fit_one(snapshots, args.params, args.one, args.out, args.production_refit))
        )
        return
    if not snapshots.is_file():
        raise SystemExit(f"{snapshots}: not found; pass the features stage's output folder")

    from benchmarks.scale import MemoryCap, run_capped
    from churn.config import load_params
    from churn.metrics import probability_metrics

    settings = load_params(args.params)
    default = settings.train.sample_customers
    samples = args.samples or ([default, default * 2 // 5, default // 5] if default else [])
    samples = sorted(set(samples), reverse=True)
    label = args.label or f"generated_{args.customers}"
    work = args.work or DATA / f"train_sample_runs_{label}"
    work.mkdir(parents=True, exist_ok=True)
    cap, reference_cap = parse_size(args.cap), parse_size(args.reference_cap)
    probe = MemoryCap(f"churn-train-sample-probe-{os.getpid()}", cap)
    cap_kind = probe.kind
    probe.remove()
    command = " ".join(["python -m benchmarks.experiments.train_sample", *sys.argv[1:]])
    print(f"snapshots {snapshots}; sizes all, {samples}", flush=True)

    results: dict = {
        "label": label,
        "command": command,
        "machine": f"{platform.node()} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})",
        "params": str(args.params),
        "production_refit": args.production_refit,
        "bootstrap": args.bootstrap,
        "seed": args.seed,
        "cap": args.cap,
        "reference_cap": args.reference_cap,
        "cap_kind": cap_kind,
        "bounds": {"roc_auc": AUC_BOUND, "ece": ECE_BOUND},
        "default_sample_customers": default,
        "data": {"snapshots_path": str(snapshots), "snapshots": snapshot_summary(snapshots)},
        "cutoff_shares": cutoff_shares(snapshots, samples),
    }
    out_json = RESULTS / f"train_sample_{label}.json"
    out_md = RESULTS / f"train_sample_{label}.md"

    rows: list[dict] = []
    scores: dict[str, dict[str, np.ndarray]] = {}
    for size in [ALL, *map(str, samples)]:
        out = work / f"size_{size}"
        child = [sys.executable, "-m", "benchmarks.experiments.train_sample", "--features", str(snapshots),
                 "--params", str(args.params), "--one", size, "--out", str(out)]  # fmt: skip
        if args.production_refit:
            child.append("--production-refit")
        limit = reference_cap if size == ALL else cap
        run = run_capped(child, ROOT, limit, f"train-sample-{size}", work / f"size_{size}.log")
        row: dict = {"size": size, **run}
        if run["exit_code"] == 0:
            row.update(json.loads(out.with_suffix(".json").read_text(encoding="utf-8")))
            with np.load(out.with_suffix(".npz")) as saved:
                scores[size] = {key: saved[key] for key in saved.files}
        rows.append(row)
        print(f"  {size}: {row}", flush=True)
        if size == ALL and run["exit_code"] != 0:
            break  # no reference: nothing to compare with

    reference = scores.get(ALL)
    if reference is not None:
        labels, customers = reference["churned"], reference["customer_id"]
        ok = [r for r in rows if r["size"] in scores]
        same_test = all(
            np.array_equal(scores[r["size"]]["customer_id"], customers)
            and np.array_equal(scores[r["size"]]["churned"], labels)
            for r in ok
        )
        same_held = (
            len({r["calibration_rows_sha256"] for r in ok}) == 1
            and len({(r["rows_early_stopping"], r["rows_calibration"]) for r in ok}) == 1
        )
        if not (same_test and same_held):
            raise SystemExit("the sizes were measured on different held-out rows: not comparable")
        results["same_held_out_rows"] = "yes"
        for r in ok:
            r.update(probability_metrics(labels, scores[r["size"]]["proba"]))
        base = ok[0]
        others = {r["size"]: scores[r["size"]]["proba"] for r in ok[1:]}
        started = time.perf_counter()
        cis = (
            paired_bootstrap(
                labels, customers, reference["proba"], others, args.bootstrap, args.seed
            )
            if args.bootstrap and others
            else {}
        )
        results["bootstrap_seconds"] = round(time.perf_counter() - started, 1)
        for r in ok[1:]:
            for metric in ("roc_auc", "pr_auc", "ece"):
                r[f"{metric}_diff"] = r[metric] - base[metric]
            r.update(cis.get(r["size"], {}))
            r["within_bound"] = bool(
                abs(r["roc_auc_diff"]) <= AUC_BOUND and abs(r["ece_diff"]) <= ECE_BOUND
            )
        results["verdict"] = verdict(rows, default)
    else:
        results["same_held_out_rows"] = "no reference"
        results["verdict"] = "The all-rows reference failed: no comparison (see its row)."
    results["sizes"] = rows
    results["written_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    out_md.write_text(markdown(results), encoding="utf-8")
    print(out_md.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
